"""Routes: /api/v1/keys, who am I, and managing API keys (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from api.deps import ConnDep, KeysAdmin, Reader, SettingsDep
from api.keys import repository
from api.keys.flows import create_key, expiry
from api.keys.guard import KeyGuard
from api.keys.types import GRANTS, Role
from api.responses import AUTH, NOT_FOUND
from forewarn.errors import NotFoundError

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=AUTH)


class Me(BaseModel):
    """The caller, as its key says."""

    name: str
    role: Role
    permissions: list[str] = Field(description="What this role may do")


class KeyInfo(BaseModel):
    """A stored key (never its secret)."""

    key_id: int
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = Field(description="When it stops working (null: never)")
    created_by: str | None = Field(description="The key (or the command line) that made it")
    revoked_by: str | None
    last_used_from: str | None = Field(description="The client address of its latest use")


class KeyEventOut(BaseModel):
    """One line of the keys' audit."""

    key_id: int
    at: datetime
    event: str = Field(description="created, used (once an hour per address) or revoked")
    actor: str | None = Field(description="Who created or revoked it")
    address: str | None = Field(description="Where a use came from")


class NewKeyRequest(BaseModel):
    """Who the key is for and what it may do."""

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key")
    role: Role
    expires_in_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="Days until it stops working (0: never); default FOREWARN_API_KEY_DAYS (90)",
    )


class NewKeyResponse(KeyInfo):
    """A new key; `secret` is shown this once and never again."""

    secret: str


@router.get(
    "/me",
    response_model=Me,
    summary="Who am I",
    description="The name, role and permissions of the key sent; the console signs in with it.",
)
def me(who: Reader) -> Me:
    """The caller."""
    return Me(name=who.name, role=who.role, permissions=sorted(p.value for p in GRANTS[who.role]))


@router.get("", response_model=list[KeyInfo], summary="List keys", description="Admin only.")
def list_keys(conn: ConnDep, who: KeysAdmin) -> list[KeyInfo]:
    """Every key."""
    return [KeyInfo.model_validate(k, from_attributes=True) for k in repository.list_keys(conn)]


@router.post(
    "",
    response_model=NewKeyResponse,
    status_code=status.HTTP_201_CREATED,
    summary="Create a key",
    description="Admin only. The secret is in this response only; store it now.",
)
def new_key(
    body: NewKeyRequest, conn: ConnDep, settings: SettingsDep, who: KeysAdmin
) -> NewKeyResponse:
    """Create a key."""
    days = settings.api_key_days if body.expires_in_days is None else body.expires_in_days
    made = create_key(
        conn,
        name=body.name,
        role=body.role,
        expires_at=expiry(days),
        created_by=f"key {who.key_id} ({who.name})",
    )
    info = KeyInfo.model_validate(made.key, from_attributes=True)
    return NewKeyResponse(**info.model_dump(), secret=made.secret)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key",
    description=(
        "Admin only. Requests with it get 401 from now on (other API processes trust their "
        "cache of it for FOREWARN_API_KEY_CACHE_SECONDS at most)."
    ),
    responses=NOT_FOUND,
)
def revoke(key_id: int, request: Request, conn: ConnDep, who: KeysAdmin) -> None:
    """Revoke a key."""
    if not repository.revoke(conn, key_id=key_id, actor=f"key {who.key_id} ({who.name})"):
        raise NotFoundError(f"no active key {key_id}")
    guard: KeyGuard = request.app.state.guard
    guard.forget(key_id)


@router.get(
    "/audit",
    response_model=list[KeyEventOut],
    summary="The keys' audit",
    description="Admin only. Creations, uses (once an hour per key and address) and "
    "revocations, newest first.",
)
def audit(
    conn: ConnDep,
    who: KeysAdmin,
    key_id: Annotated[int | None, Query(description="One key's events")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[KeyEventOut]:
    """The audit."""
    events = repository.events(conn, key_id=key_id, limit=limit)
    return [KeyEventOut.model_validate(e, from_attributes=True) for e in events]
