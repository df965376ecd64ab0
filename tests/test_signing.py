"""Signed messages and links (forewarn.signing): the Standard Webhooks scheme, checked against
the spec's own library for what a relay in another language would send, and every way a
request or a link can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from forewarn.errors import ConfigError, ExpiredError, SignatureError
from forewarn.signing import Signer, check_secret, new_secret

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BODY = (
    b'{"sender": "li.wei@example.cn", "text": "\xe8\xbf\x98\xe6\x98\xaf\xe6\x8e\x89\xe7\xba\xbf"}'
)


@pytest.fixture
def secret() -> str:
    return new_secret()


def test_a_relay_signing_with_the_spec_library_is_accepted(secret: str) -> None:
    """What any Standard Webhooks library signs, the service verifies (and the reverse)."""
    theirs = Webhook(secret).sign("msg-1", NOW, BODY.decode())
    headers = {"Webhook-Id": "msg-1", "Webhook-Timestamp": str(int(NOW.timestamp()))}
    verified = Signer(secret).verify(
        body=BODY, headers=headers | {"Webhook-Signature": theirs}, now=NOW
    )
    assert (verified.message_id, verified.timestamp) == ("msg-1", NOW)
    # The library checks the timestamp against the wall clock, with its own 5 minutes.
    ours = Signer(secret).headers(message_id="msg-2", body=BODY, at=datetime.now(UTC))
    assert Webhook(secret).verify(BODY, ours) == {
        "sender": "li.wei@example.cn",
        "text": "还是掉线",
    }


def test_a_rotated_secret_may_send_two_signatures(secret: str) -> None:
    old = Signer(new_secret()).headers(message_id="m", body=BODY, at=NOW)["webhook-signature"]
    new = Signer(secret).headers(message_id="m", body=BODY, at=NOW)
    new["webhook-signature"] = f"{old} {new['webhook-signature']}"
    assert Signer(secret).verify(body=BODY, headers=new, now=NOW).message_id == "m"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda h, b: (h, b + b" "), "no signature matches", id="body-changed"),
        pytest.param(
            lambda h, b: (h | {"webhook-id": "other"}, b), "no signature matches", id="id-changed"
        ),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
            "missing header(s) webhook-id",
            id="no-id",
        ),
        pytest.param(
            lambda h, b: (h | {"webhook-signature": ""}, b),
            "missing header(s) webhook-signature",
            id="no-signature",
        ),
        pytest.param(
            lambda h, b: (h | {"webhook-timestamp": "yesterday"}, b),
            "not Unix seconds",
            id="bad-timestamp",
        ),
        pytest.param(
            lambda h, b: (h | {"webhook-id": "x" * 201}, b), "longer than 200", id="long-id"
        ),
    ],
)
def test_a_tampered_request_is_refused_saying_why(
    secret: str, change: object, message: str
) -> None:
    headers, body = change(Signer(secret).headers(message_id="m", body=BODY, at=NOW), BODY)  # type: ignore[operator]
    with pytest.raises(SignatureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Signer(secret).verify(body=body, headers=headers, now=NOW)


def test_another_secret_is_forged(secret: str) -> None:
    headers = Signer(new_secret()).headers(message_id="m", body=BODY, at=NOW)
    with pytest.raises(SignatureError, match="wrong secret"):
        Signer(secret).verify(body=BODY, headers=headers, now=NOW)


@pytest.mark.parametrize(
    "skew", [timedelta(minutes=-6), timedelta(minutes=6)], ids=["old", "ahead"]
)
def test_a_timestamp_outside_the_tolerance_is_refused(secret: str, skew: timedelta) -> None:
    headers = Signer(secret).headers(message_id="m", body=BODY, at=NOW + skew)
    with pytest.raises(SignatureError, match="360 s from now; at most 300 s"):
        Signer(secret).verify(body=BODY, headers=headers, now=NOW)
    wider = Signer(secret).verify(
        body=BODY, headers=headers, now=NOW, tolerance=timedelta(minutes=10)
    )
    assert wider.message_id == "m"


def test_link_tokens_name_their_subject_until_they_expire(secret: str) -> None:
    signer = Signer(secret)
    token = signer.token(subject="s42", expires=NOW + timedelta(days=7))
    assert signer.read_token(token, now=NOW) == "s42"
    with pytest.raises(ExpiredError, match="expired at 2026-11-30 12:00 UTC"):
        signer.read_token(token, now=NOW + timedelta(days=7))
    subject, expiry, mac = token.split(".")
    forged = [
        f"s43.{expiry}.{mac}",  # another survey
        f"{subject}.{int(expiry) + 86400}.{mac}",  # a longer life
        Signer(new_secret()).token(subject="s42", expires=NOW + timedelta(days=7)),
        "not-a-token",
        f"{subject}.later.{mac}",
    ]
    for bad in forged:
        with pytest.raises(SignatureError):
            signer.read_token(bad, now=NOW)
    with pytest.raises(ValueError, match="letters, digits"):
        signer.token(subject="s.1", expires=NOW)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        pytest.param("hunter2hunter2hunter2hunter2hunter2", "starts with whsec_", id="no-prefix"),
        pytest.param("whsec_not base64!", "base64", id="not-base64"),
        pytest.param("whsec_c2hvcnQ=", "at least 24 random bytes", id="short"),
    ],
)
def test_weak_or_malformed_secrets_are_refused(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_secret(secret)
    with pytest.raises(ConfigError, match=message):
        Signer(secret)
