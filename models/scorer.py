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

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from forewarn.db import connect
from forewarn.settings import Settings
from forewarn.worker import Follower, Worker
from models import repository, telemetry
from models.base import FeatureSet
from models.buckets import Sample
from models.bundle import ModelBundle
from models.state import FleetState

log = logging.getLogger(__name__)

# Re-read this much before the cursor: longer than any batch transaction takes to commit.
OVERLAP = timedelta(seconds=2)
# Rows per read; a backlog is worked off in slices this big.
READ_LIMIT = 20_000
# How often to look for a newly activated model version.
MODEL_CHECK_SECONDS = 15.0
# A rebuilt window starts this much before the look-back, so its oldest bucket still sees
# each reading's predecessor.
REBUILD_EXTRA = timedelta(minutes=30)


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
        # Compact window state of every device (models/state.py: about 4.6 KB a device).
        self._devices = FleetState()
        self._models: dict[str, str] = {}
        self._bundle: ModelBundle | None = None
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
                next_check = time.monotonic() + MODEL_CHECK_SECONDS
                self.ready.set()
            self._drain(conn, follower, score=True)
            # Sleep until the ingester's next commit (or a second at most).
            for _ in listen.notifies(timeout=1.0, stop_after=1):
                pass

    def _check_model(self, conn: repository.Conn) -> None:
        number = repository.active_number(conn)
        if number is not None and (self._bundle is None or self._bundle.version != number):
            self._bundle = repository.load_version(conn, version=number)
            log.info("scoring with model version %s", number)
        elif number is None and self._bundle is None:
            log.warning("no active model yet: run `forewarn train`; readings are still folded")
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
            fresh = 0
            for r in sorted(rows, key=lambda r: (r.device_id, r.ts)):
                if not follower.fresh((r.device_id, r.ts), r.ingested_at):
                    continue  # read before, in the overlap
                fresh += 1
                if not self._devices.add(r.device_id, _sample(r)):
                    late.add(r.device_id)
                touched[r.device_id] = max(r.ts, touched.get(r.device_id, r.ts))
            self.count("readings", fresh)
            follower.advance(r.ingested_at for r in rows)
            if len(rows) < READ_LIMIT:
                break
        for device_id in late:
            self._rebuild(conn, device_id)
        self.count("late", len(late))
        if score and touched:
            self._score(conn, touched)

    def _rebuild(self, conn: repository.Conn, device_id: str) -> None:
        """Refold a device's window from the database, in time order."""
        newest = self._devices.last_ts(device_id)
        assert newest is not None
        since = datetime.fromtimestamp(newest, UTC) - self._warmup - REBUILD_EXTRA
        readings = list(telemetry.device_readings(conn, device_id=device_id, since=since))
        conn.commit()
        self._devices.reset(device_id)
        for r in readings:
            self._devices.add(device_id, _sample(r))

    def _score(self, conn: repository.Conn, touched: dict[str, datetime]) -> None:
        bundle = self._bundle
        if bundle is None:
            return
        missing = [d for d in touched if d not in self._models]
        if missing:
            self._models = repository.device_models(conn)
        ids = list(touched)
        data = FeatureSet(
            self._devices.features(ids),
            np.array(ids),
            np.array([self._models.get(d, "unknown") for d in ids]),
            np.array([self._devices.head(d) for d in ids], dtype=np.int64),
        )
        at = np.array([touched[d].timestamp() for d in ids])
        found = bundle.predictions(data, at=at)
        try:
            with conn.transaction():
                repository.upsert_predictions(conn, predictions=found)
        except psycopg.Error:
            log.exception(
                "writing %d predictions failed; they are recomputed on the next reading", len(found)
            )
            return
        done = time.time()
        with self._lock:
            self._latency.extend(done - float(t) for t in at)
        self.count("scored", len(ids))
        self.count("predictions", len(found))


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
