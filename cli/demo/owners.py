"""The demo's owners read their guides: each second the demo looks in the outbox for fault
guides that reached an owner since it last looked and hands them to the running simulator,
whose owners fix some of those faults (``simulators.owners``). The simulator imports nothing
of the notifier: this glue is the demo's."""

from __future__ import annotations

import threading
from collections import deque

from cli.demo import repository as demo_repo
from forewarn.db import Conn
from simulators.owners import GuideRead


class GuideFeed:
    """Delivered fault guides, from the demo's watcher thread to the simulator's."""

    def __init__(self, after: int) -> None:
        self._after = after  # this run's notifications have higher ids
        # Guides are sent out of id order (quiet hours hold some), so remember each one.
        self._seen: set[int] = set()
        self._waiting: deque[GuideRead] = deque()
        self._lock = threading.Lock()
        self.delivered = 0

    def poll(self, conn: Conn) -> int:
        """Pick up the fault guides sent since the last poll; returns how many."""
        found = [
            (nid, read)
            for nid, read in demo_repo.guides_delivered(conn, after=self._after)
            if nid not in self._seen
        ]
        with self._lock:
            for notification_id, read in found:
                self._seen.add(notification_id)
                self._waiting.append(read)
            self.delivered += len(found)
        return len(found)

    def drain(self) -> list[GuideRead]:
        """What arrived since the simulator last asked."""
        with self._lock:
            out = list(self._waiting)
            self._waiting.clear()
        return out
