"""The outbox and its dispatcher against the real database and a real local HTTP endpoint."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from standardwebhooks import Webhook

from forewarn.clock import FixedClock, SystemClock
from forewarn.settings import Settings
from forewarn.signing import new_secret
from notifier import repository
from notifier.channels import AppriseChannel, WebhookSink
from notifier.dispatcher import Dispatcher, backoff, default_lease
from notifier.types import OutboundMessage
from tests.conftest import env_for, wait_for
from tests.receiver import HttpReceiver

Conn = psycopg.Connection[tuple[Any, ...]]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    """A local HTTP endpoint standing in for owners' services, staff chat and the helpdesk."""
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Settings with short backoff and timeouts, so retries happen within a test."""
    return settings.with_overrides(
        notify_backoff_seconds=0.3, notify_backoff_max_seconds=2.0, notify_timeout_seconds=3.0
    )


def message(key: str, target: str, *, at: datetime | None = None, **kw: Any) -> OutboundMessage:
    """An owner notification via Apprise, due at once; `kw` overrides any field."""
    at = at or datetime.now(UTC)
    fields: dict[str, Any] = {
        "key": key,
        "channel": "apprise",
        "audience": "owner",
        "target": target,
        "title": f"title {key}",
        "body": f"body {key}",
        "created_at": at,
        "not_before": at,
    }
    return OutboundMessage(**(fields | kw))


def enqueue(db: Conn, *messages: OutboundMessage) -> list[int]:
    """Put messages in the outbox (committed, with the wake-up) and return their ids."""
    ids = []
    with db.transaction():
        for m in messages:
            found = repository.enqueue(db, message=m)
            assert found is not None
            ids.append(found)
        repository.notify_outbox(db)
    return ids


def status(db: Conn, key: str) -> str:
    """The row's status."""
    row = repository.get(db, key=key)
    assert row is not None
    return row.status


def json_url(rx: HttpReceiver, path: str, auth: str = "") -> str:
    """An Apprise json:// URL posting to the receiver."""
    return f"json://{auth}127.0.0.1:{rx.port}{path}"


def test_guide_reaches_owner_with_title_and_body(
    settings: Settings, db: Conn, rx: HttpReceiver
) -> None:
    [nid] = enqueue(
        db,
        message(
            "g1",
            json_url(rx, "/owner", "alice:s3cret@"),
            title="Reset it",
            body="Hold the button for 10 s.",
        ),
    )
    dispatcher = Dispatcher(settings, SystemClock())
    try:
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.close()
    [got] = rx.requests("/owner")
    assert (got.json["title"], got.json["message"]) == ("Reset it", "Hold the button for 10 s.")
    assert status(db, "g1") == "sent"
    [attempt] = repository.attempts(db, notification_id=nid)
    assert attempt.ok and attempt.error is None and attempt.finished_at is not None
    assert "s3cret" not in attempt.target and "alice" in attempt.target
    assert dispatcher.stats().sent == 1


STAFF_CONFIG = """\
urls:
  - json://127.0.0.1:{port}/l1:
      tag: support-l1
  - json://127.0.0.1:{port}/leads:
      tag: leads
"""


@pytest.mark.parametrize(
    ("target", "paths"),
    [
        pytest.param("tag:support-l1", ["/l1"], id="one-tag"),
        pytest.param("tag:leads", ["/leads"], id="other-tag"),
        pytest.param("tag:support-l1,leads", ["/l1", "/leads"], id="either-tag"),
    ],
)
def test_staff_tag_resolves_through_apprise_config(
    settings: Settings, db: Conn, rx: HttpReceiver, tmp_path: Path, target: str, paths: list[str]
) -> None:
    config = tmp_path / "staff.yml"
    config.write_text(STAFF_CONFIG.format(port=rx.port))
    staff = settings.with_overrides(notify_config=str(config))
    enqueue(db, message("s1", target, audience="staff"))
    dispatcher = Dispatcher(staff, SystemClock())
    try:
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.close()
    assert sorted(r.path for r in rx.requests()) == paths
    assert status(db, "s1") == "sent"


def test_tag_without_target_fails_clearly(
    settings: Settings, db: Conn, rx: HttpReceiver, tmp_path: Path
) -> None:
    config = tmp_path / "staff.yml"
    config.write_text(STAFF_CONFIG.format(port=rx.port))
    staff = settings.with_overrides(notify_config=str(config))
    [nid] = enqueue(db, message("s3", "tag:support-l3", audience="staff"))
    dispatcher = Dispatcher(staff, SystemClock())
    try:
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.close()
    assert rx.requests() == []
    [attempt] = repository.attempts(db, notification_id=nid)
    assert attempt.ok is False
    assert attempt.error == "no Apprise target has tag support-l3"


def test_failing_target_is_retried_with_backoff_while_others_go_on(
    fast: Settings, db: Conn, rx: HttpReceiver
) -> None:
    rx.fail("/flaky", status=500, times=2)
    [flaky, _] = enqueue(
        db, message("f1", json_url(rx, "/flaky")), message("ok1", json_url(rx, "/good"))
    )
    dispatcher = Dispatcher(fast, SystemClock())
    dispatcher.start()
    try:
        tries = rx.wait_for(3, path="/flaky")
        wait_for(lambda: status(db, "f1") == "sent", what="the flaky row to be sent")
    finally:
        dispatcher.stop()
    assert dispatcher.failure is None
    [good] = rx.requests("/good")
    assert good.at < tries[2].at, "the good row waited for the flaky one"
    rows = repository.attempts(db, notification_id=flaky)
    assert [a.ok for a in rows] == [False, False, True]
    assert all("500" in (a.error or "") for a in rows[:2])
    # Backoff: 0.3 s after the first failure, 0.6 s after the second (jitter only adds).
    for before, after, pause in ((rows[0], rows[1], 0.3), (rows[1], rows[2], 0.6)):
        assert before.finished_at is not None
        assert (after.started_at - before.finished_at).total_seconds() >= pause - 0.01
    stats = dispatcher.stats()
    assert (stats.sent, stats.retried, stats.failed) == (2, 2, 0)


def test_target_that_always_fails_ends_failed(
    settings: Settings, db: Conn, rx: HttpReceiver
) -> None:
    tight = settings.with_overrides(notify_max_attempts=3, notify_backoff_seconds=0.05)
    rx.fail("/down", status=503, times=100)
    [nid] = enqueue(db, message("d1", json_url(rx, "/down")))
    dispatcher = Dispatcher(tight, SystemClock())
    dispatcher.start()
    try:
        wait_for(lambda: status(db, "d1") == "failed", what="the row to fail")
    finally:
        dispatcher.stop()
    assert len(rx.requests("/down")) == 3
    rows = repository.attempts(db, notification_id=nid)
    assert [a.ok for a in rows] == [False] * 3
    assert all("503" in (a.error or "") for a in rows)


def test_not_before_waits_for_business_time(settings: Settings, db: Conn, rx: HttpReceiver) -> None:
    clock = FixedClock(T0)
    enqueue(db, message("q1", json_url(rx, "/owner"), at=T0, not_before=T0 + timedelta(hours=7)))
    with Dispatcher(settings, clock) as dispatcher:
        assert repository.due(db, now=clock.now()) == 0
        assert dispatcher.run_once() == 0
        clock.advance(timedelta(hours=6, minutes=59))
        assert dispatcher.run_once() == 0
        clock.advance(timedelta(minutes=1))
        assert repository.due(db, now=clock.now()) == 1
        assert dispatcher.run_once() == 1
    assert len(rx.requests("/owner")) == 1


def test_same_key_is_one_row(db: Conn) -> None:
    first = message("dup", "json://127.0.0.1:9/x")
    second = message("dup", "json://127.0.0.1:9/y", title="another title")
    assert repository.enqueue(db, message=first) is not None
    assert repository.enqueue(db, message=second) is None
    assert repository.counts(db) == {"pending": 1}


def test_two_dispatchers_send_each_row_once(settings: Settings, db: Conn, rx: HttpReceiver) -> None:
    n = 40
    enqueue(db, *(message(f"m{i}", json_url(rx, f"/n/{i}")) for i in range(n)))
    dispatchers = [Dispatcher(settings, SystemClock(), worker=f"w{i}") for i in range(2)]
    for d in dispatchers:
        d.start()
    try:
        rx.wait_for(n)
        wait_for(lambda: repository.counts(db) == {"sent": n}, what="every row sent")
    finally:
        for d in dispatchers:
            d.stop()
    paths = [r.path for r in rx.requests()]
    assert sorted(paths) == sorted(f"/n/{i}" for i in range(n))
    assert sum(d.stats().sent for d in dispatchers) == n


def test_wakes_on_notify_not_only_on_poll(settings: Settings, db: Conn, rx: HttpReceiver) -> None:
    dispatcher = Dispatcher(settings, SystemClock())
    dispatcher.start()
    delays = []
    try:
        assert dispatcher.ready.wait(20)
        for i in range(3):
            time.sleep(0.2)  # idle: waiting on LISTEN, with a 1 s poll as the fallback
            start = time.monotonic()
            enqueue(db, message(f"w{i}", json_url(rx, f"/wake/{i}")))
            [got] = rx.wait_for(1, path=f"/wake/{i}", timeout=5)
            delays.append(got.at - start)
    finally:
        dispatcher.stop()
    assert max(delays) < 0.5, delays


def test_loop_survives_losing_its_database_connection(
    settings: Settings, db: Conn, rx: HttpReceiver
) -> None:
    dispatcher = Dispatcher(settings, SystemClock())
    dispatcher.start()
    try:
        enqueue(db, message("before", json_url(rx, "/before")))
        wait_for(lambda: status(db, "before") == "sent", what="the first row sent")
        # What a database restart looks like from the dispatcher: its session is cut.
        conn = dispatcher._conn  # the working connection; the LISTEN one is cut on its own
        assert conn is not None
        db.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        enqueue(db, message("after", json_url(rx, "/after")))
        wait_for(lambda: status(db, "after") == "sent", what="a row sent after the cut")
    finally:
        dispatcher.stop()
    assert dispatcher.failure is None
    assert dispatcher.stats().database_errors >= 1


def ticket(key: str, payload: dict[str, Any]) -> OutboundMessage:
    """A ticket for the webhook sink."""
    return message(key, "webhook", channel="ticket_sink", audience="helpdesk", payload=payload)


def test_webhook_sink_posts_ticket_with_idempotency_key(
    settings: Settings, db: Conn, rx: HttpReceiver
) -> None:
    secret = new_secret()
    sink = settings.with_overrides(
        ticket_webhook_url=f"{rx.url}/tickets?token=t0ps3cret",
        ticket_webhook_secret=secret,
        ticket_webhook_allow_http=True,
    )
    body = {"ticket_id": 7, "tier": "L1", "fault": "battery_drain", "evidence": {"pct": 12}}
    [nid] = enqueue(db, ticket("t7", body))
    dispatcher = Dispatcher(sink, SystemClock())
    try:
        assert dispatcher.run_once() == 1
        rx.fail("/tickets", status=422, body="missing field 'symptom'")
        [refused] = enqueue(db, ticket("t8", {"ticket_id": 8}))
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.close()
    got = rx.requests("/tickets")
    assert got[0].json == body
    assert got[0].headers["idempotency-key"] == "t7"
    assert got[0].headers["content-type"] == "application/json"
    # Signed: the helpdesk checks it with the Standard Webhooks library, not with our code.
    Webhook(secret).verify(got[0].body, got[0].headers)
    assert got[0].headers["webhook-id"] == "t7"
    assert status(db, "t7") == "sent"
    # A refusal is not retried: sending the same ticket again would be refused again.
    assert status(db, "t8") == "failed"
    [attempt] = repository.attempts(db, notification_id=refused)
    assert attempt.error is not None
    assert "422" in attempt.error and "missing field 'symptom'" in attempt.error
    assert "t0ps3cret" not in attempt.target
    assert repository.attempts(db, notification_id=nid)[0].ok


def test_ticket_row_without_sink_fails_clearly(settings: Settings, db: Conn) -> None:
    [nid] = enqueue(db, ticket("t9", {"ticket_id": 9}))
    dispatcher = Dispatcher(settings, SystemClock())
    try:
        dispatcher.run_once()
    finally:
        dispatcher.close()
    [attempt] = repository.attempts(db, notification_id=nid)
    assert attempt.error == "no ticket sink configured (set FOREWARN_TICKET_WEBHOOK_URL)"
    assert attempt.target == "webhook (no sink configured)"


def test_channels_can_be_injected(settings: Settings, db: Conn, rx: HttpReceiver) -> None:
    sink = WebhookSink(f"{rx.url}/desk", timeout=2.0)
    enqueue(db, ticket("t10", {"ticket_id": 10}))
    dispatcher = Dispatcher(
        settings, SystemClock(), apprise_channel=AppriseChannel(settings), sink=sink
    )
    try:
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.close()
    assert [r.headers["idempotency-key"] for r in rx.requests("/desk")] == ["t10"]


def test_backoff_doubles_and_is_capped(settings: Settings) -> None:
    s = settings.with_overrides(notify_backoff_seconds=2.0, notify_backoff_max_seconds=300.0)
    pauses = [backoff(s, n).total_seconds() for n in range(1, 12)]
    for n, pause in enumerate(pauses[:5], start=1):
        assert 2.0 * 2 ** (n - 1) <= pause <= 2.0 * 2 ** (n - 1) * 1.1
    assert pauses[-1] == 300.0


@pytest.mark.slow
def test_crash_mid_send_is_never_resent(
    settings: Settings, db: Conn, rx: HttpReceiver, tmp_path: Path
) -> None:
    # A 2 s send timeout makes the lease 9 s: long enough to kill the child mid-send, short
    # enough for the restarted child to give up on the held row within the test.
    child = settings.with_overrides(notify_timeout_seconds=2.0, notify_backoff_seconds=0.2)
    assert default_lease(child) == timedelta(seconds=9)
    env = env_for(child)
    keys = [f"c{i}" for i in range(4)]
    enqueue(db, *(message(k, json_url(rx, f"/crash/{k}")) for k in keys))
    gate = rx.hold("/crash/c0")
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    def spawn(log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "cli", "dispatch"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    first = spawn(logs[0])
    try:
        rx.wait_for(1, path="/crash/c0", timeout=30)
    finally:
        first.kill()  # SIGKILL: no cleanup, the row stays 'sending'
        first.wait(10)
    assert status(db, "c0") == "sending"
    gate.set()  # the held request gets its answer now, to nobody

    second = spawn(logs[1])
    try:
        wait_for(
            lambda: repository.counts(db) == {"interrupted": 1, "sent": 3},
            timeout=40,
            what="the others sent and the held row interrupted",
        )
        # Another lease's worth of recovery passes must not revive it.
        threading.Event().wait(1.5)
    finally:
        second.terminate()
        code = second.wait(15)
    assert code == 0, logs[1].read_text()
    assert sorted(r.path for r in rx.requests()) == [f"/crash/{k}" for k in keys]
    assert status(db, "c0") == "interrupted"
    row = repository.get(db, key="c0")
    assert row is not None
    [attempt] = repository.attempts(db, notification_id=row.notification_id)
    assert attempt.ok is False and attempt.error == repository.INTERRUPTED_ERROR


@pytest.mark.parametrize(
    ("target", "secret", "shown"),
    [
        pytest.param(
            "json://127.0.0.1:9/hook?+X-Token=s3cr3t",
            "s3cr3t",
            "json://127.0.0.1:9/...",
            id="json-header",
        ),
        pytest.param(
            "json://127.0.0.1:9/hooks/s3cr3t",
            "s3cr3t",
            "json://127.0.0.1:9/...",
            id="json-path-token",
        ),
        pytest.param(
            "form://user:s3cr3t@example.com/in",
            "s3cr3t",
            "form://user:****@example.com/...",
            id="form-password",
        ),
        pytest.param(
            "tgram://123456789:s3cr3tTOKENs3cr3tTOKEN/987654",
            "s3cr3tTOKEN",
            "tgram://",
            id="telegram-token",
        ),
    ],
)
def test_stored_targets_hide_tokens(
    settings: Settings, target: str, secret: str, shown: str
) -> None:
    redacted = AppriseChannel(settings).redact(target)
    assert secret not in redacted
    assert redacted.startswith(shown)
