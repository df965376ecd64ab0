"""Routes: /api/v1/keys, who am I, and managing API keys (admin)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import ConnDep, KeysAdmin, Reader
from api.keys import repository
from api.keys.flows import create_key
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


class NewKeyRequest(BaseModel):
    """Who the key is for and what it may do."""

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key")
    role: Role


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
def new_key(body: NewKeyRequest, conn: ConnDep, who: KeysAdmin) -> NewKeyResponse:
    """Create a key."""
    made = create_key(conn, name=body.name, role=body.role)
    info = KeyInfo.model_validate(made.key, from_attributes=True)
    return NewKeyResponse(**info.model_dump(), secret=made.secret)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key",
    description="Admin only. Requests with it get 401 from now on.",
    responses=NOT_FOUND,
)
def revoke(key_id: int, conn: ConnDep, who: KeysAdmin) -> None:
    """Revoke a key."""
    if not repository.revoke(conn, key_id=key_id):
        raise NotFoundError(f"no active key {key_id}")
