"""Signed messages and links, in the Standard Webhooks scheme (https://www.standardwebhooks.com).

A message carries three headers: ``webhook-id`` (the sender's id for the message, unique:
the receiver's replay guard), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, several separated by spaces while
a secret is rotated). Secrets are ``whsec_`` + base64 of at least 24 random bytes. Senders in
any language sign with that spec's own libraries; ``standardwebhooks`` computes the HMAC here.

``Signer.verify`` checks an incoming message against a timestamp tolerance and the caller's
"now" (the library's own check is fixed at 5 minutes on the wall clock); ``Signer.headers``
signs an outgoing one. A survey link's token is the same HMAC over its subject and expiry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from forewarn.errors import ConfigError, ExpiredError, SignatureError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec's minimum; new_secret() makes 32
MAX_ID_CHARS = 200


def new_secret() -> str:
    """A fresh secret in the spec's format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """The secret if it is ``whsec_`` + base64 of at least 24 bytes; ValueError otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX} (make one: {_HOW})")
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a signing secret is {SECRET_PREFIX} + base64 ({_HOW})") from exc
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(
            f"a signing secret needs at least {MIN_SECRET_BYTES} random bytes ({_HOW})"
        )
    return secret


_HOW = "forewarn secret new"


@dataclass(frozen=True, slots=True)
class Verified:
    """A message whose signature and timestamp passed."""

    message_id: str
    timestamp: datetime


class Signer:
    """Signs and verifies with one secret."""

    def __init__(self, secret: str) -> None:
        try:
            self._hook = Webhook(check_secret(secret))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def signature(self, *, message_id: str, timestamp: datetime, body: bytes) -> str:
        """``v1,<base64>`` for a message."""
        return self._hook.sign(message_id, timestamp, body.decode("utf-8"))

    def headers(self, *, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
        """The three headers that sign `body` as message `message_id`, sent at `at`."""
        return {
            ID_HEADER: message_id,
            TIMESTAMP_HEADER: str(int(at.timestamp())),
            SIGNATURE_HEADER: self.signature(message_id=message_id, timestamp=at, body=body),
        }

    def verify(
        self,
        *,
        body: bytes,
        headers: Mapping[str, str],
        now: datetime,
        tolerance: timedelta = DEFAULT_TOLERANCE,
    ) -> Verified:
        """The message's id and time if it is signed with this secret within `tolerance` of
        `now` (either way: a clock ahead of ours is as suspect as one behind); SignatureError
        saying what failed otherwise. Replays inside the tolerance are the caller's to refuse,
        by the id."""
        lower = {k.lower(): v for k, v in headers.items()}
        message_id = lower.get(ID_HEADER, "").strip()
        stamp = lower.get(TIMESTAMP_HEADER, "").strip()
        given = lower.get(SIGNATURE_HEADER, "").strip()
        missing = [h for h, v in ((ID_HEADER, message_id), (TIMESTAMP_HEADER, stamp)) if not v]
        if not given:
            missing.append(SIGNATURE_HEADER)
        if missing:
            raise SignatureError(f"missing header(s) {', '.join(missing)}")
        if len(message_id) > MAX_ID_CHARS:
            raise SignatureError(f"{ID_HEADER} is longer than {MAX_ID_CHARS} characters")
        try:
            at = datetime.fromtimestamp(int(stamp), tz=UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise SignatureError(f"{TIMESTAMP_HEADER} is not Unix seconds: {stamp[:40]!r}") from exc
        if abs(now - at) > tolerance:
            raise SignatureError(
                f"{TIMESTAMP_HEADER} {stamp} is {abs(now - at).total_seconds():.0f} s from now; "
                f"at most {tolerance.total_seconds():.0f} s is accepted (a replay, or a clock "
                "that is off)"
            )
        try:
            expected = self.signature(message_id=message_id, timestamp=at, body=body)
        except UnicodeDecodeError as exc:
            raise SignatureError("the body is not UTF-8") from exc
        if not any(hmac.compare_digest(expected, s) for s in given.split(" ") if s):
            raise SignatureError("no signature matches (wrong secret, or the body was changed)")
        return Verified(message_id, at)

    def token(self, *, subject: str, expires: datetime) -> str:
        """A link token: `subject` (letters, digits, - and _), its expiry and their signature."""
        if not subject or not subject.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"a token subject is letters, digits, - and _: {subject!r}")
        seconds = int(expires.timestamp())
        mac = self._mac(subject, seconds)
        return f"{subject}.{seconds}.{mac}"

    def read_token(self, token: str, *, now: datetime) -> str:
        """The subject of a token this secret signed; SignatureError if it was not,
        ExpiredError if its time is up."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            raise SignatureError("not a Forewarn link")
        subject, seconds, mac = parts[0], int(parts[1]), parts[2]
        if not hmac.compare_digest(self._mac(subject, seconds), mac):
            raise SignatureError("the link's signature does not match")
        if now.timestamp() >= seconds:
            expired = datetime.fromtimestamp(seconds, tz=UTC)
            raise ExpiredError(f"the link expired at {expired:%Y-%m-%d %H:%M} UTC")
        return subject

    def _mac(self, subject: str, seconds: int) -> str:
        at = datetime.fromtimestamp(seconds, tz=UTC)
        signed = self.signature(message_id=f"link:{subject}", timestamp=at, body=b"")
        raw = base64.b64decode(signed.split(",", 1)[1])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
