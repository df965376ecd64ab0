"""The buffer between paho's network threads and the writer.

``queue.Queue`` wakes the waiting writer on every ``put``, so at full rate the
GIL changed hands once per message. The inbox wakes the writer twice per batch
at most: when the first message of a batch arrives (to start its deadline) and
when the batch is full.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ingest.mqtt import Inbound


class Inbox:
    """Many producers (paho threads), one consumer (the writer)."""

    def __init__(self, *, batch_size: int, capacity: int) -> None:
        self._items: deque[Inbound] = deque()
        self._batch_size = batch_size
        self._capacity = capacity
        self._nonempty = threading.Event()
        self._full = threading.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Inbound) -> None:
        """Add a message; blocks (so paho stops reading the socket) only past capacity.

        The broker's flow control (Receive Maximum, in-flight limits) keeps the inbox
        far below capacity; the check guards against a broker that ignores it.
        """
        while len(self._items) >= self._capacity:
            time.sleep(0.01)
        self._items.append(item)  # deque.append is atomic
        n = len(self._items)
        if n == 1:
            self._nonempty.set()
        if n >= self._batch_size:
            self._full.set()

    def take(self, *, wait: float, linger: float) -> list[Inbound]:
        """The next batch: up to batch_size messages, once full or ``linger`` after its first.

        Returns an empty list if nothing arrives within ``wait`` seconds.
        """
        if not self._nonempty.wait(wait):
            return []
        if not self._items:  # a stale signal from the previous batch
            self._nonempty.clear()
            return []
        remaining = self._items[0].arrived + linger - time.monotonic()
        if remaining > 0 and len(self._items) < self._batch_size:
            self._full.wait(remaining)
        self._full.clear()
        self._nonempty.clear()
        batch: list[Inbound] = []
        while self._items and len(batch) < self._batch_size:
            batch.append(self._items.popleft())
        if self._items:  # more than one batch waiting: signal for the next round ourselves
            self._nonempty.set()
            if len(self._items) >= self._batch_size:
                self._full.set()
        return batch
