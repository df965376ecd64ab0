"""Scorers that share the devices: each process scores only the devices whose slice of the
device hash it holds (``forewarn.leases``: PostgreSQL advisory locks, no cluster manager).

Each slice has a cursor in ``scorer_cursors``: every reading of the slice written up to it
has been scored. A pass reads the held slices' readings written after their cursors and up to
a horizon ``lag`` behind the database's clock (a transaction's rows become visible at its
commit, a little after the time they carry; ``lag`` is longer than an ingester's batch takes
to commit), scores the devices they touch, and in ONE transaction writes the predictions and
moves the cursors to the horizon, each only if it still holds the value this scorer read. So
a reading is scored once: a scorer killed mid-pass committed nothing of that pass, and the
next holder of its slices starts from the cursors it left. A slice taken from this scorer
while it still works (its lock connection lost) makes the compare fail, the pass roll back
and the scorer stop, for its supervisor to restart it.

A slice gained (at start, or from a member that left or died) is warmed up first, without
scoring: from its checkpoint when one is stored (``models.checkpoints``: its devices' state
at a cursor, saved by its holder every ``checkpoint_seconds``, one slice a pass) and the
readings written since, otherwise from its readings of the last ``warmup_hours`` up to its
cursor. Slices gained together are warmed up for about ``WARM_SECONDS`` between two passes,
so the slices already held go on being scored while a dead member's are taken over (about
0.9 s a slice of a 100,000-device fleet from its checkpoint, bench/takeover.py). A slice lost
is forgotten. Rebalancing happens between passes, never during one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import psycopg

from forewarn.db import connect
from forewarn.errors import ServiceError
from forewarn.leases import Leases
from forewarn.settings import Settings
from models import checkpoint_repository, cursors, repository, telemetry
from models.checkpoints import CHECKPOINT_SECONDS, LAYOUT, CheckpointError, SliceState, pack, unpack
from models.scorer import MODEL_CHECK_SECONDS, READ_LIMIT, Scorer, release_free_memory

log = logging.getLogger(__name__)

# How many slices the device hash is cut into unless told: several per process, so a
# departing member's share spreads over the others.
DEFAULT_SLICES = 64
# Time between looks at the group's members (a dead member's slices move within this).
REBALANCE_SECONDS = 2.0
# Time between passes: readings wait `lag` anyway, so waking on every commit gains nothing.
PASS_SECONDS = 0.25
# Slices taken over are warmed up (from their checkpoints, or rebuilt) for about this long
# between two passes, not all at once: the slices already held are scored meanwhile.
WARM_SECONDS = 1.0


class SlicedScorer(Scorer):
    """A scorer that scores only the slices of the devices it holds."""

    def __init__(
        self,
        settings: Settings,
        *,
        slices: int = DEFAULT_SLICES,
        lag_seconds: float = 2.0,
        warmup_hours: float = 24.5,
        rebalance_seconds: float = REBALANCE_SECONDS,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        super().__init__(settings, warmup_hours=warmup_hours)
        self._checkpoint_every = checkpoint_seconds  # 0: never save one
        self._saved: dict[int, float] = {}  # monotonic time each held slice was last saved
        self.leases = Leases(settings, "scorers", partitions=slices)
        self._lag = timedelta(seconds=lag_seconds)
        self._rebalance_every = rebalance_seconds
        self._cursors: dict[int, datetime] = {}
        # Slices leased and claimed, not warmed up yet: each with the cursor it was claimed at.
        self._warming: dict[int, datetime] = {}

    @property
    def held(self) -> frozenset[int]:
        """The slices this scorer holds and scores now (warmed up)."""
        return frozenset(self._cursors)

    @property
    def _leased(self) -> frozenset[int]:
        """The slices held and those still warming up."""
        return self.held | set(self._warming)

    def run(self) -> None:
        """Hold slices and score them until stopped; let them go on the way out."""
        try:
            with connect(self._settings) as conn:
                self._loop(conn)
        finally:
            self.leases.leave()

    def _loop(self, conn: repository.Conn) -> None:
        next_check = next_rebalance = 0.0
        while not self.stopping.is_set():
            if time.monotonic() >= next_rebalance:
                self._rebalance(conn)
                next_rebalance = time.monotonic() + self._rebalance_every
            if time.monotonic() >= next_check:
                self._check_model(conn)
                release_free_memory()
                next_check = time.monotonic() + MODEL_CHECK_SECONDS
                self.ready.set()
            self._warm(conn)
            self._pass(conn)
            self._checkpoint(conn)
            self.stopping.wait(PASS_SECONDS)

    def _rebalance(self, conn: repository.Conn) -> None:
        gained, lost = self.leases.rebalance()
        if lost:
            for s in lost:
                self._cursors.pop(s, None)
                self._warming.pop(s, None)
                self._saved.pop(s, None)
            self._forget(telemetry.devices_in(conn, slices=sorted(lost), partitions=self._p))
            self._scope(conn, self._leased)
            conn.commit()
            log.info("let go of slices %s", sorted(lost))
        if not gained:
            return
        with conn.transaction():
            start = cursors.oldest(conn) or telemetry.now(conn) - self._lag
            claimed = cursors.claim(conn, partitions=self._p, slices=sorted(gained), start=start)
        # Their devices' windows are rebuilt from the database, up to each slice's cursor,
        # their models known first (a detector row takes its battery pack from its model).
        self._forget(telemetry.devices_in(conn, slices=sorted(gained), partitions=self._p))
        self._scope(conn, self._leased | set(claimed))
        conn.commit()
        self._warming.update(claimed)
        log.info("took slices %s; warming them up", sorted(gained))

    def _warm(self, conn: repository.Conn) -> None:
        """Warm up slices taken over, for about ``WARM_SECONDS`` (at least one slice): each
        from its checkpoint, or rebuilt from its readings, up to the cursor it was claimed
        at; then it is scored with the others from there."""
        deadline = time.monotonic() + WARM_SECONDS
        while self._warming and not self.stopping.is_set():
            s, cursor = next(iter(self._warming.items()))
            if not self._restore(conn, s, cursor):
                warm = [r for _, r in self._read(conn, {s: cursor - self._warmup}, cursor)]
                self._fold(conn, warm, {}, set(), score=False)
                self.count("readings", len(warm))
            conn.commit()
            del self._warming[s]
            self._cursors[s] = cursor
            if time.monotonic() >= deadline:
                break

    def _restore(self, conn: repository.Conn, s: int, cursor: datetime) -> bool:
        """Warm slice `s` up from its checkpoint and the readings written after it up to its
        `cursor`; False (nothing changed) without a usable checkpoint."""
        stored = checkpoint_repository.load(conn, partitions=self._p, slice_=s)
        conn.commit()
        if stored is None:
            return False
        at = stored.ingested_after
        if stored.layout != LAYOUT or not cursor - self._warmup <= at <= cursor:
            log.info("slice %s: its checkpoint is of another layout or time; rebuilding", s)
            return False
        try:
            state = unpack(stored.state)
        except CheckpointError as e:
            log.warning("slice %s: %s; rebuilding it from its readings", s, e)
            return False
        self._devices.restore(state.device_ids, state.window)
        self._detect.restore(state.device_ids, state.detectors, state.silent)
        since = [r for _, r in self._read(conn, {s: at}, cursor)]
        self._fold(conn, since, {}, set(), score=False)
        self.count("readings", len(since))
        self.count("restored")
        log.info(
            "slice %s: %d devices from its checkpoint at %s and %d readings since",
            s,
            len(state.device_ids),
            at.isoformat(),
            len(since),
        )
        return True

    def _checkpoint(self, conn: repository.Conn) -> None:
        """Save the held slice saved longest ago, if that is ``checkpoint_seconds`` ago: its
        devices' state now, at its cursor (every reading of it up to there is folded in). A
        failure is logged: the slice is saved again later, and a taker can always rebuild."""
        if self._checkpoint_every <= 0 or not self._cursors:
            return
        s = min(self._cursors, key=lambda s: self._saved.get(s, -math.inf))
        now = time.monotonic()
        if now - self._saved.get(s, -math.inf) < self._checkpoint_every:
            return
        self._saved[s] = now
        rows = self._detect.fleet.rows
        members = telemetry.devices_in(conn, slices=[s], partitions=self._p)
        ids = [d for d in members if d in self._devices and d in rows]
        state = SliceState(tuple(ids), tuple(self._devices.export(ids)), *self._detect.export(ids))
        conn.commit()
        try:
            with conn.transaction():
                checkpoint_repository.save(
                    conn,
                    partitions=self._p,
                    slice_=s,
                    ingested_after=self._cursors[s],
                    layout=LAYOUT,
                    devices=len(ids),
                    state=pack(state),
                )
        except psycopg.Error:
            log.exception("saving slice %s's checkpoint failed; it is saved again later", s)
            return
        self.count("checkpoints")

    def _scope(self, conn: repository.Conn, slices: Iterable[int]) -> None:
        """Hold the product models of these slices' devices only, read now."""
        self._detect.scope = (tuple(sorted(slices)), self._p)
        self._detect.read_models(conn)

    def _pass(self, conn: repository.Conn) -> None:
        """Score the held slices' readings up to the horizon and move their cursors with the
        predictions, in one transaction."""
        held = dict(self._cursors)
        if not held:
            return
        horizon = telemetry.now(conn) - self._lag
        rows = [r for s, r in self._read(conn, held, horizon) if r.ingested_at > held[s]]
        touched: dict[str, datetime] = {}
        late: set[str] = set()
        self._fold(conn, rows, touched, late, score=True)
        for device_id in late:
            self._rebuild(conn, device_id, until=horizon)
        self.count("late", len(late))
        made = self._predict(conn, touched) if touched else None
        detected = self._detect.take()
        moves = {s: (c, horizon) for s, c in held.items() if horizon > c}
        # End any read transaction first: inside one, transaction() would be a savepoint and
        # the predictions would wait for the next commit.
        conn.commit()
        with conn.transaction():
            if made is not None:
                repository.upsert_predictions(conn, predictions=made[0])
            repository.upsert_predictions(conn, predictions=detected)
            taken = cursors.advance(conn, partitions=self._p, moves=moves)
            if taken:
                raise ServiceError(
                    f"slices {sorted(taken)} were taken by another scorer while this one "
                    "scored them; nothing of this pass was written"
                )
        for s in moves:
            self._cursors[s] = horizon
        self.count("readings", len(rows))
        if made is not None:
            self._scored(len(touched), len(made[0]), made[1])
        self.count("predictions", len(detected))

    def _read(
        self, conn: repository.Conn, after: dict[int, datetime], until: datetime
    ) -> Iterator[tuple[int, telemetry.NewReading]]:
        """The readings of these slices written after the earliest of `after` and up to
        `until`, in write order, a bounded batch at a time."""
        start = min(after.values())
        limit = READ_LIMIT
        while start < until:
            rows = telemetry.slice_readings(
                conn, after=start, until=until, slices=list(after), partitions=self._p, limit=limit
            )
            conn.commit()
            if len(rows) < limit:
                yield from rows
                return
            # A full batch may end inside a run of rows written at the same instant: keep
            # that instant for the next batch (and read more at once if it is all there is).
            last = rows[-1][1].ingested_at
            whole = [row for row in rows if row[1].ingested_at < last]
            if not whole:
                limit *= 2
                continue
            yield from whole
            start = whole[-1][1].ingested_at

    @property
    def _p(self) -> int:
        return self.leases.partitions
