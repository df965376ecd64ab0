"""The responder: follows the predictions table and the clock, and carries out decisions.

Each pass it (1) reads predictions written since its cursor (with an overlap, as the scorer
does with telemetry) and decides on the newest one per device and fault; (2) checks open
incidents whose device looks recovered or whose guide's wait has passed; (3) runs the open
tickets' SLA clocks and turns unanswered surveys into call-back tasks; (4) sends novices
whose device has reported their product's onboarding guide. The scorer's ``NOTIFY forewarn_predictions`` wakes it at once; otherwise
it passes every ``respond_tick_seconds``. The cursor is stored, so a restart loses nothing;
several responders may run at once (decisions are serialised per device and fault).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import psycopg

from forewarn.clock import Clock
from forewarn.db import PREDICTIONS_CHANNEL, connect
from forewarn.domain import Prediction
from forewarn.settings import Settings
from forewarn.worker import Follower, Worker
from notifier.tickets import clocks
from rules import predictions
from rules import repository as repo
from rules.decide import Verdict
from rules.flows import Outcome, apply_signal, apply_timer
from rules.onboarding import welcome_new_devices
from rules.types import RuleSet

log = logging.getLogger(__name__)

# Re-read this much before the cursor: longer than a scorer's write takes to commit.
OVERLAP = timedelta(seconds=2)
READ_LIMIT = 5000
# A failed pass (database gone) is retried after this pause.
RETRY_SECONDS = 2.0


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
        self, settings: Settings, rules: RuleSet, clock: Clock, *, name: str = "default"
    ) -> None:
        super().__init__(counters=ResponderStats.__slots__)
        self._settings = settings
        self._rules = rules
        self._clock = clock
        self._cursor_name = name
        self._follower: Follower[tuple[str, str, datetime]] | None = None

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
                self.stopping.wait(RETRY_SECONDS)

    def _follow(self, listen: repo.Conn, conn: repo.Conn) -> None:
        cursor = repo.cursor(conn, name=self._cursor_name) or repo.db_now(conn) - OVERLAP
        conn.commit()
        tick = self._settings.respond_tick_seconds
        while not self.stopping.is_set():
            cursor = self.run_once(conn, cursor)
            for _ in listen.notifies(timeout=tick, stop_after=1):
                pass

    def run_once(self, conn: repo.Conn, cursor: datetime) -> datetime:
        """One pass: new predictions, incident timers, ticket and survey clocks, onboarding."""
        cursor = self._signals(conn, cursor)
        now = self._clock.now()
        due = repo.due_incidents(conn, now=now, clear_after=self._rules.timing.clear_after)
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
        with conn.transaction():
            report = clocks.run_clocks(conn, self._settings, self._rules, now=now)
        self.count("escalated", report.escalated)
        self.count("warned", report.warned)
        self.count("callbacks", report.callbacks)
        links = self._settings.owner_link_hosts
        self.count("onboarded", welcome_new_devices(conn, self._rules, now=now, links=links))
        return cursor

    def _signals(self, conn: repo.Conn, cursor: datetime) -> datetime:
        if self._follower is None:
            self._follower = Follower(cursor, OVERLAP)
        follower = self._follower
        follower.cursor = cursor
        while not self.stopping.is_set():
            rows = predictions.signals_since(conn, updated_after=follower.after, limit=READ_LIMIT)
            conn.commit()
            newest: dict[tuple[str, str], Prediction] = {}
            for signal, written in rows:
                if follower.fresh((signal.device_id, signal.fault, written), written):
                    newest[(signal.device_id, signal.fault)] = signal
            for signal in newest.values():
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
                self.count("signals")
                if out is None:
                    continue
                if out.decision.verdict is Verdict.OPEN:
                    self.count("opened")
                    if out.ticket_id is not None:
                        self.count("tickets")
            follower.advance(w for _, w in rows)
            if rows:
                with conn.transaction():
                    repo.save_cursor(conn, name=self._cursor_name, updated_after=follower.cursor)
            if len(rows) < READ_LIMIT:
                break
        return follower.cursor

    def _guarded(self, decide: Callable[[], Outcome]) -> Outcome | None:
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
