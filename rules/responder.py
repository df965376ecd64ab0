"""The responder: follows the predictions table and the clock, and carries out decisions.

Each pass it (1) reads predictions written since its cursor (with an overlap, as the scorer
does with telemetry) and decides on the newest one per device and fault; (2) checks open
incidents whose device looks recovered or whose guide's wait has passed; (3) runs the open
tickets' SLA clocks. The scorer's ``NOTIFY forewarn_predictions`` wakes it at once; otherwise
it passes every ``respond_tick_seconds``. The cursor is stored, so a restart loses nothing;
several responders may run at once (decisions are serialised per device and fault).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import psycopg

from forewarn.clock import Clock
from forewarn.db import connect
from forewarn.settings import Settings
from models.repository import PREDICTIONS_CHANNEL
from notifier.tickets import flows as tickets
from rules import repository as repo
from rules.decide import Verdict
from rules.flows import Outcome, apply_signal, apply_timer
from rules.types import RuleSet, Signal

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
    errors: int = 0


class Responder:
    """Turns predictions into incidents, guides and tickets, in a thread of its own."""

    def __init__(
        self, settings: Settings, rules: RuleSet, clock: Clock, *, name: str = "default"
    ) -> None:
        self._settings = settings
        self._rules = rules
        self._clock = clock
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forewarn-responder", daemon=True)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(ResponderStats.__slots__, 0)
        self._seen: dict[tuple[str, str, datetime], datetime] = {}
        self.failure: BaseException | None = None

    def start(self) -> None:
        """Start following predictions."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._thread.join(timeout)

    def stats(self) -> ResponderStats:
        """A snapshot of the counters."""
        with self._lock:
            return ResponderStats(**self._counts)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    with (
                        connect(self._settings, autocommit=True) as listen,
                        connect(self._settings) as conn,
                    ):
                        listen.execute(f"LISTEN {PREDICTIONS_CHANNEL}")
                        self._follow(listen, conn)
                except psycopg.OperationalError:
                    log.exception("responder lost the database; retrying")
                    self._count("errors")
                    self._stop.wait(RETRY_SECONDS)
        except BaseException as exc:  # surfaced through .failure, as the scorer does
            self.failure = exc
            log.exception("responder stopped")
            raise

    def _follow(self, listen: repo.Conn, conn: repo.Conn) -> None:
        cursor = repo.cursor(conn, name=self._name) or repo.db_now(conn) - OVERLAP
        conn.commit()
        tick = self._settings.respond_tick_seconds
        while not self._stop.is_set():
            cursor = self.run_once(conn, cursor)
            for _ in listen.notifies(timeout=tick, stop_after=1):
                pass

    def run_once(self, conn: repo.Conn, cursor: datetime) -> datetime:
        """One pass: new predictions, then incident timers, then ticket clocks."""
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
                self._count("recovered")
            elif out.decision.verdict is Verdict.TICKET:
                self._count("tickets")
        with conn.transaction():
            report = tickets.run_clocks(conn, self._settings, self._rules, now=now)
        self._count("escalated", report.escalated)
        self._count("warned", report.warned)
        return cursor

    def _signals(self, conn: repo.Conn, cursor: datetime) -> datetime:
        while not self._stop.is_set():
            rows = repo.signals_since(conn, updated_after=cursor - OVERLAP, limit=READ_LIMIT)
            conn.commit()
            newest: dict[tuple[str, str], Signal] = {}
            for signal, written in rows:
                key = (signal.device_id, signal.fault, written)
                if key in self._seen:
                    continue  # read before, in the overlap
                self._seen[key] = written
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
                self._count("signals")
                if out is None:
                    continue
                if out.decision.verdict is Verdict.OPEN:
                    self._count("opened")
                    if out.ticket_id is not None:
                        self._count("tickets")
            if rows:
                cursor = max(cursor, max(w for _, w in rows))
                with conn.transaction():
                    repo.save_cursor(conn, name=self._name, updated_after=cursor)
            horizon = cursor - 2 * OVERLAP
            self._seen = {k: v for k, v in self._seen.items() if v > horizon}
            if len(rows) < READ_LIMIT:
                break
        return cursor

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
            self._count("errors")
            return None

    def _count(self, key: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._counts[key] += n
