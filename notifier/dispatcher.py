"""The outbox dispatcher: claims due notifications one at a time, sends them, records why.

Each row goes through two commits: the claim ('sending', an attempt row with its start) is
committed before the request leaves, the result after it returns. A dispatcher that dies in
between leaves the row 'sending'; once its lease has passed, any dispatcher marks it
'interrupted' and nobody sends it again, because the request may already have arrived. That
is the outbox's promise: at most once after a crash, retried with backoff otherwise.

Enqueuers call ``repository.notify_outbox`` in their transaction; the dispatcher LISTENs on
that channel and also polls every second, so a missed wake-up costs at most a second.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from forewarn.clock import Clock
from forewarn.db import connect
from forewarn.errors import StorageError
from forewarn.settings import Settings
from forewarn.worker import Worker
from notifier import repository
from notifier.channels import AppriseChannel, Channel, Redactor, TicketSink, webhook_sink
from notifier.types import ClaimedNotification, DispatchStats, SendResult

log = logging.getLogger(__name__)

# Longest wait for a wake-up before looking at the outbox anyway (retries come due silently).
POLL_SECONDS = 1.0
# Rows one run_once pass may send before it returns (the thread then checks for stop).
PASS_LIMIT = 100
# Backoff grows by up to this fraction at random, so a burst of failures does not retry in step.
JITTER = 0.1
# The commits around a send and the gap between them; part of the lease, see default_lease.
LEASE_MARGIN_SECONDS = 5.0
# Pauses after a database error, doubling up to the longest; the loop outlives a restart.
DB_RETRY_FIRST_SECONDS = 0.5
DB_RETRY_MAX_SECONDS = 10.0


def default_lease(settings: Settings) -> timedelta:
    """How long a row may stay 'sending' before its dispatcher is presumed dead.

    A send is bounded by the timeout twice over (a webhook's connect and read each get the
    full timeout), plus a margin for the commits around it. A lease that is too short cannot
    cause a second send: it only marks a slow row 'interrupted', and its result still lands.
    """
    return timedelta(seconds=2 * settings.notify_timeout_seconds + LEASE_MARGIN_SECONDS)


def backoff(settings: Settings, attempt: int) -> timedelta:
    """The pause after failed attempt number `attempt`: doubling, capped, a little jitter."""
    base = settings.notify_backoff_seconds * 2 ** min(attempt - 1, 32)
    seconds = min(base * (1 + random.uniform(0, JITTER)), settings.notify_backoff_max_seconds)
    return timedelta(seconds=seconds)


@dataclass(slots=True)
class _Pending:
    """A result whose commit failed: written first once the database is back."""

    claimed: ClaimedNotification
    result: SendResult
    at: datetime  # business time the send finished: the row's sent_at


class Dispatcher(Worker):
    """Sends the outbox's due notifications, in a thread of its own or pass by pass."""

    name = "dispatcher"

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        worker: str | None = None,
        apprise_channel: Channel | None = None,
        sink: TicketSink | None = None,
        lease: timedelta | None = None,
    ) -> None:
        super().__init__(counters=DispatchStats.__slots__)
        self._settings = settings
        self._clock = clock
        self.worker = worker or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._apprise = apprise_channel or AppriseChannel(settings)
        self._sink = sink if sink is not None else webhook_sink(settings)
        self._redact = Redactor(self._apprise, self._sink)
        self.lease = lease if lease is not None else default_lease(settings)
        self._conn: repository.Conn | None = None
        self._unrecorded: list[_Pending] = []
        self._next_retry = 0.0  # monotonic time of the soonest retry this dispatcher scheduled
        self.ready = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current send and close the connection (also when never started)."""
        super().stop(timeout)
        self.close()

    def close(self) -> None:
        """Close the database connection (run_once opens it again if called)."""
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> DispatchStats:
        """A snapshot of the counters."""
        return DispatchStats(**self.counts())

    def _recover(self) -> int:
        """Mark rows abandoned mid-send (older than the lease) 'interrupted'; returns how many."""
        conn = self._connection()
        with conn.transaction():
            found = repository.mark_interrupted(conn, lease=self.lease)
        if found:
            log.warning(
                "%d notification(s) were interrupted mid-send by a crash; they are "
                "not sent again (at most once)",
                found,
            )
            self.count("interrupted", found)
        return found

    def run_once(self) -> int:
        """Send every due row, one at a time; returns the number of attempts made.

        For tests and one-shot tools: it opens a connection and closes it before returning.
        Do not call it while the thread started by ``start`` runs. Database errors propagate;
        a failing target does not.
        """
        try:
            return self._pass()
        finally:
            self.close()

    def _pass(self) -> int:
        """One claim-send-finish pass on the kept connection (the thread's unit of work)."""
        conn = self._connection()
        self._record_unrecorded(conn)
        done = 0
        while done < PASS_LIMIT and not self.stopping.is_set():
            with conn.transaction():
                claimed = repository.claim(
                    conn,
                    worker=self.worker,
                    now=self._clock.now(),
                    limit=1,
                    redact=self._redact,
                )
            if not claimed:
                break
            for row in claimed:
                result = self._send(row)
                self._unrecorded.append(_Pending(row, result, self._clock.now()))
                self._record_unrecorded(conn)
                done += 1
        return done

    def _send(self, row: ClaimedNotification) -> SendResult:
        message = row.message
        self.count("attempts")
        try:
            if message.channel == "apprise":
                return self._apprise.send(message)
            if self._sink is None:
                return SendResult(
                    False,
                    "no ticket sink configured (set FOREWARN_TICKET_WEBHOOK_URL)",
                    self._redact(message.target),
                )
            return self._sink.send(message.payload, message.key)
        except Exception as exc:  # channels return failures; this guards a buggy one
            error = self._redact.error(f"channel raised {exc!r}")
            log.error("%s while sending %s", error, message.key)
            return SendResult(False, error, self._redact(message.target))

    def _record_unrecorded(self, conn: repository.Conn) -> None:
        """Commit the results of finished sends (kept in memory if the database is away)."""
        while self._unrecorded:
            pending = self._unrecorded[0]
            row = pending.claimed
            # Whatever a channel said, what is stored and logged goes through the redactor.
            result = dataclasses.replace(
                pending.result, error=self._redact.error(pending.result.error)
            )
            retry_in = None
            if not result.ok and not result.permanent and row.attempt < self._max_attempts:
                retry_in = backoff(self._settings, row.attempt)
            with conn.transaction():
                status = repository.finish(
                    conn,
                    notification_id=row.notification_id,
                    attempt=row.attempt,
                    result=result,
                    retry_in=retry_in,
                    at=pending.at,
                )
            self._unrecorded.pop(0)
            if status == "sent":
                self.count("sent")
            elif status == "pending":
                self.count("retried")
                assert retry_in is not None
                due = time.monotonic() + retry_in.total_seconds()
                self._next_retry = (
                    due if self._next_retry <= time.monotonic() else min(self._next_retry, due)
                )
            else:
                self.count("failed")
                log.error(
                    "notification %s failed for good after %d attempt(s): %s",
                    row.message.key,
                    row.attempt,
                    result.error,
                )

    @property
    def _max_attempts(self) -> int:
        return self._settings.notify_max_attempts

    def _connection(self) -> repository.Conn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._settings)
        return self._conn

    def run(self) -> None:
        """Send what is due, woken by the outbox's NOTIFY or every second, until stopped."""
        try:
            self._loop()
        finally:
            self.close()

    def _loop(self) -> None:
        listen: repository.Conn | None = None
        pause = DB_RETRY_FIRST_SECONDS
        next_recovery = 0.0
        recovery_every = max(1.0, self.lease.total_seconds() / 4)
        while not self.stopping.is_set():
            try:
                if listen is None or listen.closed:
                    listen = connect(self._settings, autocommit=True)
                    repository.listen(listen)
                if time.monotonic() >= next_recovery:
                    self._recover()
                    next_recovery = time.monotonic() + recovery_every
                self.ready.set()
                if self._pass() >= PASS_LIMIT:
                    continue  # more are due: no sleep
                pause = DB_RETRY_FIRST_SECONDS
                wait = POLL_SECONDS
                if self._next_retry > time.monotonic():
                    wait = min(wait, self._next_retry - time.monotonic())
                for _ in listen.notifies(timeout=max(wait, 0.01), stop_after=1):
                    pass
            except (psycopg.Error, StorageError) as exc:
                self.count("database_errors")
                log.warning(
                    "database error in the dispatcher (%s); retrying in %.1f s",
                    str(exc).strip() or type(exc).__name__,
                    pause,
                )
                for conn in (listen, self._conn):
                    if conn is not None:
                        with suppress(psycopg.Error):
                            conn.close()
                listen, self._conn = None, None
                self.stopping.wait(pause)
                pause = min(pause * 2, DB_RETRY_MAX_SECONDS)
        if listen is not None:
            with suppress(psycopg.Error):
                listen.close()
