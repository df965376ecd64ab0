"""The label-free detectors in the streaming scorer: ``Live`` folds stored readings into a
``models.detect.Fleet``, sweeps it for silences on the fleet's clock and the wall's, and says
what it found as predictions. Its devices' rows can be exported and restored (a slice's
checkpoint, ``models.checkpoints``)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from forewarn.domain import OUTAGE, Prediction
from forewarn.settings import Settings
from models import detector_repository as detector_repo
from models import repository, telemetry
from models.detect import (
    DEFAULT_THRESHOLD,
    FAULTS,
    THRESHOLD_KEYS,
    Alert,
    Flags,
    Fleet,
    FleetSilence,
    observations,
    profiles,
)

log = logging.getLogger(__name__)

# How often, in the fleet's own time, the live sweep looks for silent devices.
LIVE_SWEEP_S = 60.0
# Hours a detector's prediction looks ahead when it has no estimate of its own.
_HORIZON_H = 24.0
# A device is silent only when it has also sent nothing for this many seconds of wall time.
_WALL_QUIET_S = 60.0
# Seconds between reads of the device models when unknown devices keep appearing.
_MODELS_EVERY_S = 30.0


class Live:
    """The detectors inside the streaming scorer: readings in, predictions out.

    Time is the fleet's own (the newest reading's), so a simulated fleet in fast time and a
    whole fleet falling quiet (the broker, not the devices) raise no silences by the clock.
    """

    def __init__(
        self,
        settings: Settings,
        thresholds: Mapping[str, float] | None = None,
        *,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall  # the wall's clock, seconds (tests pass their own)
        self.fleet = Fleet(
            {}, profiles(settings.battery_chemistry, settings.temperature_limits), thresholds
        )
        self.outages: list[FleetSilence] = []
        self._found: list[Alert] = []
        self._held: list[tuple[float, Alert]] = []  # silences said after a wait (_say_held)
        self._clock = -math.inf
        self._swept = -math.inf
        self._models_read = -math.inf  # monotonic time the device models were last read
        # The slices (and how many there are) whose devices' models to read; None: every
        # device's. A sliced scorer holds the models of its own devices only.
        self.scope: tuple[tuple[int, ...], int] | None = None
        self.supervised: frozenset[str] = frozenset()  # faults the trained model does better

    def refresh(self, conn: repository.Conn) -> None:
        """Read the calibrated thresholds, and which faults the active model does better."""
        stored = detector_repo.thresholds(conn)
        self.fleet.thresholds = dict.fromkeys(THRESHOLD_KEYS, DEFAULT_THRESHOLD) | stored
        info = repository.active_version(conn)
        self.supervised = supervised_faults(info.evaluation if info is not None else {})

    def supervised_only(self, found: list[Prediction]) -> list[Prediction]:
        """The trained model's predictions for the faults it does better (and its anomaly)."""
        return [p for p in found if p.fault not in FAULTS or p.fault in self.supervised]

    def read_models(self, conn: repository.Conn) -> None:
        """Read the product model of every device in scope (the scorer reads the same map:
        one per process)."""
        if self.scope is None:
            self.fleet.models = repository.device_models(conn)
        else:
            slices, partitions = self.scope
            self.fleet.models = telemetry.device_models_in(
                conn, slices=slices, partitions=partitions
            )
        self._models_read = time.monotonic()

    def models_of(self, conn: repository.Conn, device_ids: Iterable[str]) -> Mapping[str, str]:
        """The model map, read again first when one of `device_ids` is missing from it and it
        was read more than ``_MODELS_EVERY_S`` ago (a device with no model is not looked up
        again on every pass)."""
        models = self.fleet.models
        stale = time.monotonic() - self._models_read > _MODELS_EVERY_S
        if stale and any(d not in models for d in device_ids):
            self.read_models(conn)
        return self.fleet.models

    def forget(self, device_ids: Iterable[str]) -> None:
        """Drop these devices' detectors (another scorer now holds them)."""
        for device_id in device_ids:
            self.fleet.forget(device_id)

    def export(self, device_ids: Sequence[str]) -> tuple[npt.NDArray[np.float64], Flags]:
        """These devices' detector rows, and which were found silent (``Fleet.export``)."""
        return self.fleet.export(device_ids)

    def restore(
        self, device_ids: Sequence[str], rows: npt.NDArray[np.float64], silent: Flags
    ) -> None:
        """Give these devices the rows another scorer exported; they count as heard now (the
        wall time in a row is the other process's clock)."""
        self.fleet.restore(device_ids, rows, silent)
        wall = self._wall()
        for device_id in device_ids:
            self.fleet.hear(device_id, wall)

    def fold(self, conn: repository.Conn, reading: telemetry.NewReading, *, score: bool) -> None:
        """Judge and learn one stored reading; a reading older than the device's newest is
        skipped (the detectors' state is built in time order and has no way back)."""
        device_id = reading.device_id
        stale = time.monotonic() - self._models_read > _MODELS_EVERY_S
        if device_id not in self.fleet.rows and device_id not in self.fleet.models and stale:
            # A device not seen before: its model picks its battery pack and limit.
            self.read_models(conn)
        (x,) = observations([reading])
        if x.ts <= self.fleet.last_reading(device_id):  # False for NaN: a first reading
            self.fleet.late(device_id, x)
            return
        self._found.extend(self.fleet.observe(device_id, x, score=score))
        self._clock = max(self._clock, x.ts)
        self.fleet.hear(device_id, self._wall())

    def _say_held(self) -> None:
        """Say the silences that have waited ``_WALL_QUIET_S`` on the wall since the sweep
        released them, unless their device spoke meanwhile: after a stall, a backlog catching
        up unevenly (one connection's messages before another's) can make a device look
        silent for a sweep; its readings come within seconds, and then it is no silence."""
        wall = self._wall()
        waiting: list[tuple[float, Alert]] = []
        for since, a in self._held:
            if not self.fleet.silent(a.device_id):
                continue
            if wall - since < _WALL_QUIET_S:
                waiting.append((since, a))
            else:
                self._found.append(a)
        self._held = waiting

    def take(self) -> list[Prediction]:
        """The predictions found since the last call, newest per device and fault, leaving
        out faults the trained model does better. Silences are looked for here, once every
        reading read so far is folded in (a device later in a batch is not silent)."""
        if self._clock - self._swept >= LIVE_SWEEP_S:
            self._swept = self._clock
            # Silent by the fleet's clock and by the wall's: a backlog or a flood replayed in
            # fast time reaches devices out of step, which is no silence of theirs.
            wall = self._wall()
            released, outages = self.fleet.sweep(
                self._clock, lambda d: wall - self.fleet.heard(d) >= _WALL_QUIET_S
            )
            self.outages.extend(outages)
            for o in outages:
                log.warning("fleet silence at %s: %s", datetime.fromtimestamp(o.ts, UTC), o.reason)
                # One prediction per member, all at the outage's time: the rules make them
                # one fleet incident (rules.outages), not a device incident each.
                released.extend(Alert(d, OUTAGE, o.ts, 1.0, o.reason) for d in o.devices)
            self._held.extend((wall, a) for a in released)
        self._say_held()
        newest: dict[tuple[str, str], Alert] = {}
        for a in self._found:
            if a.fault not in self.supervised:
                newest[(a.device_id, a.fault)] = a
        self._found = []
        return [
            Prediction(
                device_id=a.device_id,
                fault=a.fault,
                at=datetime.fromtimestamp(a.ts, UTC),
                probability=round(a.score, 4),
                horizon_h=_horizon(a),
                reasons=(a.reason,),
                hours_to_empty=a.hours_left,
            )
            for a in newest.values()
        ]


def _horizon(a: Alert) -> float:
    """Hours a detector's prediction looks ahead: an outage is now."""
    if a.fault == OUTAGE:
        return 0.0
    return min(a.hours_left, _HORIZON_H * 7) if a.hours_left else _HORIZON_H


def supervised_faults(evaluation: Mapping[str, Any]) -> frozenset[str]:
    """Faults whose trained predictor beat the detectors (F1) on the same evaluation fleet.

    A version evaluated before the detectors existed carries no comparison: its predictors
    keep their faults.
    """
    trained = evaluation.get("faults", {})
    detectors = evaluation.get("detectors")
    if not isinstance(detectors, dict):
        return frozenset(f for f in trained if f in FAULTS)
    return frozenset(
        f
        for f, q in trained.items()
        if f in detectors and float(q.get("f1", 0.0)) > float(detectors[f].get("f1", 0.0))
    )
