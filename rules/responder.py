"""The responder: follows the predictions table and the clock, and carries out decisions.

Each pass it (1) reads predictions written since its cursor (with an overlap, as the scorer
does with telemetry) and decides on the newest one per device and fault (a page's ``outage``
predictions together: one fleet incident, ``rules.outages``); (2) checks open incidents
whose device looks recovered or whose guide's wait has passed; (3) lets devices that report
again leave their outage and closes an outage left empty; runs the open tickets' SLA clocks
and turns unanswered surveys into call-back tasks; (4) sends novices whose device has
reported their product's onboarding guide. The scorer's ``NOTIFY forewarn_predictions`` wakes it at once; otherwise
it passes every ``respond_tick_seconds``. The cursor is stored, so a restart loses nothing;
several responders may run at once (decisions are serialised per device and fault).
Predictions no rule acts on (the default rule set's ignored "anomaly" hints) are skipped with
one query for the whole page, unless their device has an incident open for the fault (then
they are decided and tracked as any other): the same decisions, without a transaction each.
A page is read without its reasons first (the overlap reads each row again, and at 100,000
devices building every hint whole took most of the responder's time); only the rows worth
deciding are read whole.

Given ``slices``, responders share the work instead of repeating it: each holds slices of the
device hash (``forewarn.leases``, as the scorers do) and acts only on its devices'
predictions and incident timers, with a stored cursor per slice, so the next holder of a
dead responder's slices starts where it stopped. A prediction read again in the overlap
after a hand-over changes nothing (the incident is open: it is tracked, under the same lock
per device and fault). Fleet incidents need no split of their own: each decision joins or
opens its cohort's fleet incident under a lock per cohort, whichever responder makes it.
The ticket and survey clocks and onboarding are not per device: the holder of slice 0 runs
them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

import psycopg

from forewarn.clock import Clock
from forewarn.db import PREDICTIONS_CHANNEL, connect
from forewarn.domain import OUTAGE, Prediction
from forewarn.leases import Leases
from forewarn.settings import Settings
from forewarn.worker import Follower, Worker
from notifier.tickets import clocks
from rules import decide, facts, outages, predictions
from rules import repository as repo
from rules.decide import Verdict
from rules.flows import apply_signal, apply_timer
from rules.onboarding import welcome_new_devices
from rules.types import RuleSet

log = logging.getLogger(__name__)
T = TypeVar("T")

# Re-read this much before the cursor: longer than a scorer's write takes to commit.
OVERLAP = timedelta(seconds=2)
# Predictions read a page: many times what the overlap holds, as every page re-reads it. At
# 100,000 devices the scorers write about 1,700 a second, 3,400 in an overlap: with pages of
# 5,000 a responder that fell behind spent two thirds of each page on rows it had already
# seen (71 % of its time reading pages, py-spy, bench/README.md) and never caught up.
READ_LIMIT = 50_000
# Passes start at most this often (notifications in between are one pass).
MIN_PASS_SECONDS = 0.5
# A failed pass (database gone) is retried after this pause.
RETRY_SECONDS = 2.0
# Time between looks at the sharing responders (a dead one's slices move within this).
REBALANCE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ResponderStats:
    """Counters of a running responder."""

    signals: int = 0
    opened: int = 0
    tickets: int = 0
    recovered: int = 0
    escalated: int = 0
    warned: int = 0
    callbacks: int = 0
    onboarded: int = 0
    errors: int = 0


class Responder(Worker):
    """Turns predictions into incidents, guides and tickets, in a thread of its own."""

    name = "responder"

    def __init__(
        self,
        settings: Settings,
        rules: RuleSet,
        clock: Clock,
        *,
        name: str = "default",
        slices: int | None = None,
    ) -> None:
        super().__init__(counters=ResponderStats.__slots__)
        self._settings = settings
        self._rules = rules
        self._clock = clock
        self._cursor_name = name
        self._follower: Follower[tuple[str, str, datetime]] | None = None
        self.leases = None if slices is None else Leases(settings, "responders", partitions=slices)
        self._slice_cursors: dict[int, datetime] = {}

    def stats(self) -> ResponderStats:
        """A snapshot of the counters."""
        return ResponderStats(**self.counts())

    def run(self) -> None:
        """Follow predictions and the clock until stopped; reconnect when the database goes."""
        while not self.stopping.is_set():
            try:
                with (
                    connect(self._settings, autocommit=True) as listen,
                    connect(self._settings) as conn,
                ):
                    listen.execute(f"LISTEN {PREDICTIONS_CHANNEL}")
                    self._follow(listen, conn)
            except psycopg.OperationalError:
                log.exception("responder lost the database; retrying")
                self.count("errors")
                if self.leases is not None:  # its slices may have moved meanwhile
                    self.leases.leave()
                    self._slice_cursors.clear()
                self.stopping.wait(RETRY_SECONDS)
        if self.leases is not None:
            self.leases.leave()

    @property
    def held(self) -> frozenset[int]:
        """The slices this responder holds now (empty when it does not share)."""
        return frozenset(self._slice_cursors)

    def _follow(self, listen: repo.Conn, conn: repo.Conn) -> None:
        cursor = repo.cursor(conn, name=self._cursor_name) or repo.db_now(conn) - OVERLAP
        conn.commit()
        tick = self._settings.respond_tick_seconds
        next_rebalance = next_timers = 0.0
        while not self.stopping.is_set():
            if self.leases is not None:
                if time.monotonic() >= next_rebalance:
                    self._rebalance(conn)
                    next_rebalance = time.monotonic() + REBALANCE_SECONDS
                tick = min(tick, REBALANCE_SECONDS)
                cursor = min(self._slice_cursors.values(), default=repo.db_now(conn))
                conn.commit()
            started = time.monotonic()
            timers = started >= next_timers
            cursor = self.run_once(conn, cursor, timers=timers)
            if timers:
                next_timers = started + self._settings.respond_tick_seconds
            for _ in listen.notifies(timeout=tick, stop_after=1):
                pass
            # Scorers notify many times a second; each pass reads the overlap again, so the
            # notifications of half a second make one pass.
            self.stopping.wait(max(0.0, MIN_PASS_SECONDS - (time.monotonic() - started)))

    def _slice_name(self, s: int) -> str:
        assert self.leases is not None
        return f"{self._cursor_name}/{self.leases.partitions}.{s}"

    def _rebalance(self, conn: repo.Conn) -> None:
        """Move toward a fair share of the slices; a gained slice starts at its stored cursor."""
        assert self.leases is not None
        gained, lost = self.leases.rebalance()
        for s in lost:
            self._slice_cursors.pop(s, None)
        if gained:
            names = {self._slice_name(s): s for s in gained}
            stored = repo.cursors(conn, names=list(names))
            start = repo.db_now(conn) - OVERLAP
            conn.commit()
            for name, s in names.items():
                self._slice_cursors[s] = stored.get(name, start)
            log.info("took slices %s", sorted(gained))
        if lost:
            log.info("let go of slices %s", sorted(lost))

    def run_once(self, conn: repo.Conn, cursor: datetime, *, timers: bool = True) -> datetime:
        """One pass: new predictions, then (with `timers`) incident timers, ticket and survey
        clocks, outages' recoveries and onboarding. The loop runs the timers once a
        ``respond_tick_seconds`` however many predictions come: their queries read the open
        incidents and the fleet's devices, not the new rows."""
        cursor = self.run_signals(conn, cursor)
        if not timers:
            return cursor
        now = self._clock.now()
        mine = None if self.leases is None else sorted(self._slice_cursors)
        due = repo.due_incidents(
            conn,
            now=now,
            clear_after=self._rules.timing.clear_after,
            slices=mine,
            partitions=1 if self.leases is None else self.leases.partitions,
        )
        conn.commit()
        for w in due:
            out = self._guarded(
                partial(
                    apply_timer,
                    conn,
                    self._settings,
                    self._rules,
                    incident_id=w.incident.incident_id,
                    device_id=w.device_id,
                    fault=w.fault,
                    now=now,
                )
            )
            if out is None:
                continue
            if out.decision.verdict is Verdict.RECOVERED:
                self.count("recovered")
            elif out.decision.verdict is Verdict.TICKET:
                self.count("tickets")
        if mine is not None and 0 not in mine:
            return cursor  # the clocks, outages and onboarding are slice 0's holder's
        self.count("recovered", self._guarded(partial(outages.recover, conn, now=now)) or 0)
        with conn.transaction():
            report = clocks.run_clocks(conn, self._settings, self._rules, now=now)
        self.count("escalated", report.escalated)
        self.count("warned", report.warned)
        self.count("callbacks", report.callbacks)
        links = self._settings.owner_link_hosts
        self.count("onboarded", welcome_new_devices(conn, self._rules, now=now, links=links))
        return cursor

    def run_signals(self, conn: repo.Conn, cursor: datetime) -> datetime:
        """Decide on the predictions written since `cursor` until caught up; the new cursor."""
        if self._follower is None:
            self._follower = Follower(cursor, OVERLAP)
        follower = self._follower
        follower.cursor = cursor
        while not self.stopping.is_set():
            rows = self._read(conn, follower.after)
            newest: dict[tuple[str, str], predictions.Written] = {}
            for row in rows:
                if follower.fresh((row.device_id, row.fault, row.written), row.written):
                    newest[(row.device_id, row.fault)] = row
            outage = [r for r in newest.values() if r.fault == OUTAGE]
            rest = {k: r for k, r in newest.items() if r.fault != OUTAGE}
            worth = predictions.signals_of(conn, rows=self._worth_deciding(conn, rest))
            silent = [p for p, _ in predictions.signals_of(conn, rows=outage)]
            conn.commit()
            if silent:
                self._outage(conn, silent)
            for signal, written in worth:
                # Updated since the first read: decided now, so not again when read.
                follower.fresh((signal.device_id, signal.fault, written), written)
                out = self._guarded(
                    partial(
                        apply_signal,
                        conn,
                        self._settings,
                        self._rules,
                        signal=signal,
                        now=self._clock.now(),
                    )
                )
                if out is None:
                    continue
                if out.decision.verdict is Verdict.OPEN:
                    self.count("opened")
                    if out.ticket_id is not None:
                        self.count("tickets")
            follower.advance(r.written for r in rows)
            if rows:
                self._save(conn, follower.cursor)
            if len(rows) < READ_LIMIT:
                break
        return follower.cursor

    def _outage(self, conn: repo.Conn, signals: list[Prediction]) -> None:
        """The devices of a page's outage predictions join one fleet incident together."""
        self.count("signals", len(signals))
        now = self._clock.now()
        done = self._guarded(
            partial(
                outages.apply_outage, conn, self._settings, self._rules, signals=signals, now=now
            )
        )
        if done is not None and done[1]:
            self.count("tickets")  # the outage's fleet ticket (no device incident opened)

    def _worth_deciding(
        self, conn: repo.Conn, newest: dict[tuple[str, str], predictions.Written]
    ) -> list[predictions.Written]:
        """The rows of `newest` but those whose decision is NOTHING without a look at their
        device: no rule acts on their fault (an ignored hint) and their device has no
        incident open for it (else it is tracked). One query for the page instead of a
        transaction each, with the same decisions: such a decision writes nothing, and an
        incident opened meanwhile tracks the next prediction as it would have after this one.
        Only these are then read whole (reasons and all)."""
        self.count("signals", len(newest))
        quiet = [
            k for k, r in newest.items() if not decide.acts_on(self._rules, r.fault, r.probability)
        ]
        if not quiet:
            return list(newest.values())
        skip = set(quiet) - facts.open_keys(conn, keys=quiet)
        return [r for k, r in newest.items() if k not in skip]

    def _read(self, conn: repo.Conn, after: datetime) -> list[predictions.Written]:
        """Predictions written after `after` (of the held slices' devices, when sharing,
        each read from its own slice's cursor), without their reasons."""
        if self.leases is None:
            return predictions.written_since(conn, updated_after=after, limit=READ_LIMIT)
        held = dict(self._slice_cursors)
        if not held:
            return []
        rows = predictions.written_since(
            conn,
            updated_after=after,
            slices=list(held),
            partitions=self.leases.partitions,
            limit=READ_LIMIT,
        )
        return [r for r in rows if r.written > held[r.slice] - OVERLAP]

    def _save(self, conn: repo.Conn, cursor: datetime) -> None:
        """Store how far predictions were read: every held slice has been read up to it."""
        with conn.transaction():
            if self.leases is None:
                repo.save_cursor(conn, name=self._cursor_name, updated_after=cursor)
                return
            for s, old in list(self._slice_cursors.items()):
                if cursor > old:
                    repo.save_cursor(conn, name=self._slice_name(s), updated_after=cursor)
                    self._slice_cursors[s] = cursor

    def _guarded(self, decide: Callable[[], T]) -> T | None:
        """Run one decision; a decision the database refuses is logged and skipped (its
        transaction rolled back), so one bad row cannot stop the responder. Losing the
        connection is not skipped: the loop reconnects."""
        try:
            return decide()
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            log.exception(
                "a decision failed and was rolled back; it is retried when the "
                "prediction or the clock brings it up again"
            )
            self.count("errors")
            return None
