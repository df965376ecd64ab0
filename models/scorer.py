"""The streaming scorer: follows new telemetry, keeps each device's features current, and
writes predictions for devices that are about to fail.

It follows the database rather than the broker, so it scores exactly what was stored, however
many ingesters share the load, and loses nothing while it is down: on start it replays the
last ``warmup_hours`` of writes to rebuild every device's window state. The ingester's
``NOTIFY forewarn_telemetry`` at each commit wakes it at once; a poll every second covers a
missed notification. Rows are read by ``ingested_at`` with a small overlap, because a
transaction's rows become visible at commit, a little after the time they carry; rows already
folded in are skipped. A reading older than its device's newest is late (several ingesters, or
a device uploading a backlog, commit out of order): the window columns depend on order, so
that device's window is rebuilt from the database in time order before it is scored again.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from forewarn.db import connect
from forewarn.domain import Prediction
from forewarn.settings import Settings
from forewarn.worker import Follower, Worker
from models import live, repository, telemetry
from models.base import FeatureSet, Scoring
from models.buckets import Sample
from models.state import FleetState

log = logging.getLogger(__name__)

# Re-read this much before the cursor: longer than any batch transaction takes to commit.
OVERLAP = timedelta(seconds=2)
# Rows per read; a backlog is worked off in slices this big.
READ_LIMIT = 20_000
# Devices whose rows are built and scored together: a pass touching more (a backlog, a whole
# fleet at once) is cut, so the peak of its gathered state and feature arrays stays bounded
# (bench/memory.py --scorer-process reports the peak, VmHWM). As large as the compiled trees' two-thread batches
# (models/forest.py PARALLEL_ROWS), which a smaller cut would never reach.
SCORE_CHUNK = 8192
# How often to look for a newly activated model version.
MODEL_CHECK_SECONDS = 15.0
# A rebuilt window starts this much before the look-back, so its oldest bucket still sees
# each reading's predecessor.
REBUILD_EXTRA = timedelta(minutes=30)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None where the C library has none)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the C allocator's free pages back to the system.

    A pass that touches many devices (a backlog, a warm-up) gathers their state and builds
    their rows and predictions at once; freed, that memory stays with the allocator in pieces
    between live blocks (and in each thread's arena), counted in the resident set, until
    ``malloc_trim`` returns every free page: measured in bench/memory.py --scorer-process.
    """
    if _TRIM is not None:
        _TRIM(0)


@dataclass(frozen=True, slots=True)
class ScorerStats:
    """Counters of a running scorer."""

    readings: int
    late: int  # devices whose window was rebuilt because a reading came out of order
    scored: int
    predictions: int
    model_version: int | None
    latency_p50_s: float | None
    latency_p99_s: float | None


class Scorer(Worker):
    """Scores every device whose telemetry changed, in a thread of its own."""

    name = "scorer"

    def __init__(self, settings: Settings, *, warmup_hours: float = 25.0) -> None:
        super().__init__(counters=("readings", "late", "scored", "predictions"))
        self._settings = settings
        self._warmup = timedelta(hours=warmup_hours)
        # Compact window state of every device (models/state.py: about 3.5 KB a device).
        self._devices = FleetState()
        # The active version: its serving form (models/serving.py), or the bundle itself for a
        # version stored without one.
        self._bundle: Scoring | None = None
        self._detect = live.Live(settings)  # label-free detectors: they need no model
        # Reading time to scored time, seconds: meaningful when readings carry real time.
        self._latency: deque[float] = deque(maxlen=20_000)
        self.ready = threading.Event()

    def stats(self) -> ScorerStats:
        """A snapshot of the counters."""
        counts = self.counts()
        with self._lock:
            lat = np.array(self._latency) if self._latency else None
        return ScorerStats(
            readings=counts["readings"],
            late=counts["late"],
            scored=counts["scored"],
            predictions=counts["predictions"],
            model_version=None if self._bundle is None else self._bundle.version,
            latency_p50_s=None if lat is None else float(np.percentile(lat, 50)),
            latency_p99_s=None if lat is None else float(np.percentile(lat, 99)),
        )

    def run(self) -> None:
        """Warm up, then follow the telemetry table until stopped."""
        with (
            connect(self._settings, autocommit=True) as listen,
            connect(self._settings) as conn,
        ):
            telemetry.notify_listen(listen)
            self._follow(listen, conn)

    def _follow(self, listen: repository.Conn, conn: repository.Conn) -> None:
        follower: Follower[tuple[str, datetime]] = Follower(
            telemetry.now(conn) - self._warmup, OVERLAP
        )
        conn.commit()
        self._drain(conn, follower, score=False)  # warm-up: rebuild the windows
        next_check = 0.0
        while not self.stopping.is_set():
            if time.monotonic() >= next_check:
                self._check_model(conn)
                release_free_memory()
                next_check = time.monotonic() + MODEL_CHECK_SECONDS
                self.ready.set()
            self._drain(conn, follower, score=True)
            # Sleep until the ingester's next commit (or a second at most).
            for _ in listen.notifies(timeout=1.0, stop_after=1):
                pass

    def _check_model(self, conn: repository.Conn) -> None:
        self._detect.refresh(conn)
        number = repository.active_number(conn)
        if number is not None and (self._bundle is None or self._bundle.version != number):
            self._bundle = repository.load_serving(conn, version=number)
            if self._bundle is None:
                log.warning(
                    "model version %s has no serving form (stored before it existed): scoring "
                    "from its bundle, which loads scikit-learn; retraining stores one",
                    number,
                )
                self._bundle = repository.load_version(conn, version=number)
            log.info("scoring with model version %s", number)
        elif number is None and self._bundle is None:
            log.info("no active model: the label-free detectors score alone")
        conn.commit()

    def _drain(
        self, conn: repository.Conn, follower: Follower[tuple[str, datetime]], *, score: bool
    ) -> None:
        """Fold in everything written since the follower's cursor."""
        touched: dict[str, datetime] = {}
        late: set[str] = set()
        while not self.stopping.is_set():
            rows = telemetry.readings_since(conn, ingested_after=follower.after, limit=READ_LIMIT)
            conn.commit()
            # Rows read before, in the overlap, are skipped.
            fresh = [r for r in rows if follower.fresh((r.device_id, r.ts), r.ingested_at)]
            self._fold(conn, fresh, touched, late, score=score)
            self.count("readings", len(fresh))
            follower.advance(r.ingested_at for r in rows)
            if len(rows) < READ_LIMIT:
                break
        for device_id in late:
            self._rebuild(conn, device_id)
        self.count("late", len(late))
        if score and touched:
            self._score(conn, touched)
            self._write(conn, self._detect.take())

    def _fold(
        self,
        conn: repository.Conn,
        rows: list[telemetry.NewReading],
        touched: dict[str, datetime],
        late: set[str],
        *,
        score: bool,
    ) -> None:
        """Fold new readings into their devices' windows and detectors, in time order per
        device (the detectors judge them first when `score`); note each device's newest reading
        in `touched` and the devices that got a late one in `late`."""
        for r in sorted(rows, key=lambda r: (r.device_id, r.ts)):
            if not self._devices.add(r.device_id, _sample(r)):
                late.add(r.device_id)
            touched[r.device_id] = max(r.ts, touched.get(r.device_id, r.ts))
            self._detect.fold(conn, r, score=score)

    def _forget(self, device_ids: list[str]) -> None:
        """Drop these devices' windows (another scorer now holds them)."""
        for device_id in device_ids:
            self._devices.discard(device_id)
        self._detect.forget(device_ids)

    def _rebuild(
        self, conn: repository.Conn, device_id: str, *, until: datetime | None = None
    ) -> None:
        """Refold a device's window from the database, in time order (only rows written up
        to `until`, when given: the rest are read later)."""
        newest = self._devices.last_ts(device_id)
        assert newest is not None
        since = datetime.fromtimestamp(newest, UTC) - self._warmup - REBUILD_EXTRA
        readings = list(
            telemetry.device_readings(conn, device_id=device_id, since=since, until=until)
        )
        conn.commit()
        self._devices.reset(device_id)
        for r in readings:
            self._devices.add(device_id, _sample(r))

    def _score(self, conn: repository.Conn, touched: dict[str, datetime]) -> None:
        made = self._predict(conn, touched)
        if made is None:
            return
        found, at = made
        if self._upsert(conn, found, "predictions"):
            self._scored(len(touched), len(found), at)

    def _write(self, conn: repository.Conn, found: list[Prediction]) -> None:
        """Write the detectors' predictions (a failure is logged: they come again)."""
        if self._upsert(conn, found, "detector predictions"):
            self.count("predictions", len(found))

    def _upsert(self, conn: repository.Conn, found: list[Prediction], what: str) -> bool:
        """Write predictions in a transaction of their own; False (logged) if it failed."""
        try:
            with conn.transaction():
                repository.upsert_predictions(conn, predictions=found)
        except psycopg.Error:
            log.exception(
                "writing %d %s failed; they are recomputed on the next reading", len(found), what
            )
            return False
        return True

    def _scored(self, devices: int, found: int, at: np.ndarray) -> None:
        """Count a written batch and its latencies (reading time to now)."""
        done = time.time()
        with self._lock:
            self._latency.extend(done - float(t) for t in at)
        self.count("scored", devices)
        self.count("predictions", found)

    def _predict(
        self, conn: repository.Conn, touched: dict[str, datetime]
    ) -> tuple[list[Prediction], np.ndarray] | None:
        """The predictions for the touched devices and each device's reading time (None
        without an active model); nothing is written."""
        bundle = self._bundle
        if bundle is None:
            return None
        # Each device's product model: the detectors' map (one map a process).
        models = self._detect.models_of(conn, touched)
        every = list(touched)
        found: list[Prediction] = []
        for lo in range(0, len(every), SCORE_CHUNK):
            ids = every[lo : lo + SCORE_CHUNK]
            data = FeatureSet(
                self._devices.features(ids),
                np.array(ids),
                np.array([models.get(d, "unknown") for d in ids]),
                np.array([self._devices.head(d) for d in ids], dtype=np.int64),
            )
            at = np.array([touched[d].timestamp() for d in ids])
            found.extend(bundle.predictions(data, at=at))
        at = np.array([touched[d].timestamp() for d in every])
        return self._detect.supervised_only(found), at


def _sample(r: telemetry.NewReading) -> Sample:
    return Sample(
        r.ts.timestamp(),
        r.signal,
        r.battery,
        r.volts,
        r.temp,
        r.uptime,
        r.reconnects,
        frozenset(r.codes),
    )
