"""Long-running work in one shape: the ingester, the scorer, the responder and the
dispatcher are each a ``Worker``; a command runs them under one ``supervise``; the scorer and
the responder read their tables through one ``Follower``.

A worker runs ``run`` in a thread of its own until ``stopping`` is set. A failure ends the
thread and is kept in ``failure``, where ``supervise`` finds it and stops the command with a
clear error (the process supervisor, systemd or Compose, then restarts it). Counters are
thread-safe; each worker turns them into its own typed stats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from forewarn.errors import ServiceError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# How often supervise looks at its workers and the stop event.
SUPERVISE_POLL_SECONDS = 0.5


class Worker:
    """A piece of work that runs in a thread of its own until stopped."""

    name = "worker"  # what logs and errors call it

    def __init__(self, *, counters: Iterable[str] = ()) -> None:
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"forewarn-{self.name}", daemon=True
        )
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(counters, 0)

    def run(self) -> None:
        """The work: loop until ``stopping`` is set. Subclasses implement it."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the work to stop and wait for the thread (also when it never started)."""
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def count(self, key: str, n: int = 1) -> None:
        """Add `n` to a counter."""
        if n:
            with self._lock:
                self._counts[key] = self._counts.get(key, 0) + n

    def counts(self) -> dict[str, int]:
        """A snapshot of the counters."""
        with self._lock:
            return dict(self._counts)

    def _main(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # kept for supervise; the thread ends here
            self.failure = exc
            log.exception("%s stopped", self.name)
            raise


def supervise(
    workers: Sequence[Worker],
    stop: threading.Event,
    *,
    report: Callable[[], None] | None = None,
    every: float = 10.0,
) -> None:
    """Wait until `stop` is set, calling `report` every `every` seconds; stop every worker on
    the way out (the last started first). A worker that fails raises ServiceError."""
    last = time.monotonic()
    try:
        while not stop.wait(SUPERVISE_POLL_SECONDS):
            for worker in workers:
                if worker.failure is not None:
                    raise ServiceError(f"the {worker.name} failed: {worker.failure}") from (
                        worker.failure
                    )
            if report is not None and time.monotonic() - last >= every:
                report()
                last = time.monotonic()
    finally:
        for worker in reversed(workers):
            worker.stop()


@dataclass(slots=True)
class Follower(Generic[K]):
    """Follows a table by the time its rows were written (``ingested_at``, ``updated_at``).

    A transaction's rows become visible at its commit, a little after the time they carry,
    so each read starts `overlap` before the cursor; rows already seen in that overlap are
    skipped by their key. The cursor only moves forward.
    """

    cursor: datetime
    overlap: timedelta
    _seen: dict[K, datetime] = field(default_factory=dict)

    @property
    def after(self) -> datetime:
        """Read rows written after this."""
        return self.cursor - self.overlap

    def fresh(self, key: K, written: datetime) -> bool:
        """Whether the row is new (and remember it)."""
        if key in self._seen:
            return False
        self._seen[key] = written
        return True

    def advance(self, written: Iterable[datetime]) -> None:
        """Move the cursor to the newest write time read, and forget what is past the overlap."""
        newest = max(written, default=None)
        if newest is not None and newest > self.cursor:
            self.cursor = newest
        horizon = self.cursor - 2 * self.overlap
        self._seen = {k: v for k, v in self._seen.items() if v > horizon}
