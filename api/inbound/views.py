"""Route: POST /api/v1/inbound/{channel}, an owner's reply relayed from WeCom, DingTalk, an
e-mail gateway or the app's backend. No API key: the relay signs each request with its
channel's secret (Standard Webhooks), within a timestamp tolerance; its webhook-id is the
replay guard. docs/owners.md says what a relay sends and how it signs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError as BodyError

from api.deps import ClockDep, ConnDep, RulesDep, SettingsDep
from api.inbound.schemas import InboundMessage, InboundResult
from api.responses import Responses, error
from forewarn.errors import NotFoundError
from forewarn.signing import Signer
from notifier.replies.types import OwnerReply
from rules.replies import take_reply

router = APIRouter(prefix="/api/v1/inbound", tags=["inbound"])

SIGNED: Responses = {
    401: error("The signature is missing, forged, or outside the timestamp tolerance"),
    404: error("No relay is configured for this channel"),
}
_CHANNEL = Path(
    pattern=r"^[A-Za-z0-9-]{1,32}$",
    description="The relay's channel, as named in FOREWARN_INBOUND_SECRETS (wecom, dingtalk...)",
)


async def raw_body(request: Request) -> bytes:
    """The request's bytes, exactly as signed."""
    return await request.body()


@router.post(
    "/{channel}",
    response_model=InboundResult,
    summary="An owner's reply, from a relay",
    description=(
        "A relay (WeCom, DingTalk, an e-mail gateway, the app's backend) posts one owner's "
        "message as JSON, signed with its channel's secret in the Standard Webhooks scheme: "
        "headers webhook-id (unique per message), webhook-timestamp (Unix seconds, within "
        "FOREWARN_INBOUND_TOLERANCE_SECONDS of now) and webhook-signature (v1,<base64 "
        "HMAC-SHA256 of '<id>.<timestamp>.<body>'>). The message is matched to its owner and "
        "to the ticket it answers (a number in the text, else their latest conversation): "
        "added to an open ticket, reopening one resolved within the recurrence window, or "
        "opening one. A webhook-id received before is answered 'duplicate' and not recorded "
        "again. No API key: the signature is the authentication."
    ),
    responses=SIGNED,
)
def receive(
    channel: Annotated[str, _CHANNEL],
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    settings: SettingsDep,
) -> InboundResult:
    """Take an owner's reply."""
    secret = settings.inbound_secrets.get(channel)
    if secret is None:
        raise NotFoundError(f"no relay is configured for channel {channel!r}")
    # Signatures are stamped on the wall clock, whatever business time the service runs on.
    signed = Signer(secret.get_secret_value()).verify(
        body=body,
        headers=dict(request.headers),
        now=datetime.now(UTC),
        tolerance=timedelta(seconds=settings.inbound_tolerance_seconds),
    )
    try:
        message = InboundMessage.model_validate_json(body)
    except BodyError as exc:
        # FastAPI's own 422, listing each bad field; nothing was recorded.
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    result = take_reply(
        conn,
        settings,
        rules,
        reply=OwnerReply(
            channel=channel,
            message_id=signed.message_id,
            signed_at=signed.timestamp,
            text=message.text.strip(),
            owner_id=message.owner_id,
            sender=message.sender,
            ticket_id=message.ticket_id,
        ),
        now=clock.now(),
    )
    return InboundResult(
        message_id=signed.message_id,
        outcome=result.outcome.value,
        owner_id=result.owner_id,
        ticket_id=result.ticket_id,
        incident_id=result.incident_id,
    )
