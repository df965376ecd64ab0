"""Routes: /api/v1/owners, registering devices and moving them through their states, and
/api/v1/dead-letters. For integration and admin keys: owners are personal data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api import privacy
from api.deps import ConnDep, Registrar, SettingsDep
from api.keys.types import Principal
from api.registry import repository as dead
from api.registry.schemas import (
    DeadLetterItem,
    DeadLetterPage,
    DeviceCreate,
    DeviceRegistration,
    DeviceUpdate,
    OwnerCreate,
    OwnerOut,
    OwnerPage,
    OwnerUpdate,
)
from api.responses import AUTH, CONFLICT, NOT_FOUND
from forewarn.errors import NotFoundError
from registry import flows
from registry import repository as registry
from registry.types import AccountType, DeviceRecord, DeviceState, OwnerRecord

router = APIRouter(tags=["registry"], responses=AUTH)
Text = Annotated[str | None, Query(max_length=200)]


def _owner(record: OwnerRecord, who: Principal, devices: int | None = None) -> OwnerOut:
    return OwnerOut.model_validate(privacy.owner(asdict(record) | {"devices": devices}, who))


def _device(record: DeviceRecord) -> DeviceRegistration:
    return DeviceRegistration.model_validate(asdict(record))


@router.get(
    "/api/v1/owners",
    response_model=OwnerPage,
    summary="List owners",
    description="Owners by id, narrowed by account type or a search in id, name, contact or "
    "enterprise account (q), with how many devices each has. Contact, contact person and "
    "department are shown to admin keys only (integrations write them, they do not read them "
    "back); targets are always redacted.",
)
def list_owners(
    conn: ConnDep,
    who: Registrar,
    q: Text = None,
    account_type: Annotated[AccountType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> OwnerPage:
    """Owners."""
    total, rows = registry.owners_page(
        conn, q=q, account_type=account_type, limit=limit, offset=offset
    )
    items = [OwnerOut.model_validate(privacy.owner(r, who)) for r in rows]
    return OwnerPage(total=total, limit=limit, offset=offset, items=items)


@router.get(
    "/api/v1/owners/{owner_id}",
    response_model=OwnerOut,
    summary="One owner",
    responses=NOT_FOUND,
)
def get_owner(owner_id: str, conn: ConnDep, who: Registrar) -> OwnerOut:
    """One owner."""
    record = registry.owner(conn, owner_id=owner_id)
    if record is None:
        raise NotFoundError(f"no owner {owner_id!r}")
    return _owner(record, who)


@router.post(
    "/api/v1/owners",
    response_model=OwnerOut,
    status_code=201,
    summary="Register an owner",
    description="Every field is checked as `forewarn registry import` checks it (time zone, "
    "locale, Apprise URLs, quiet hours, enterprise account); 409 if the id exists.",
    responses=CONFLICT,
)
def create_owner(body: OwnerCreate, conn: ConnDep, who: Registrar) -> OwnerOut:
    """Create an owner."""
    return _owner(flows.create_owner(conn, body.model_dump()), who)


@router.patch(
    "/api/v1/owners/{owner_id}",
    response_model=OwnerOut,
    summary="Change an owner",
    description="Only the fields given change; the whole record is checked again.",
    responses=NOT_FOUND,
)
def update_owner(owner_id: str, body: OwnerUpdate, conn: ConnDep, who: Registrar) -> OwnerOut:
    """Update an owner."""
    return _owner(flows.update_owner(conn, owner_id, body.model_dump(exclude_unset=True)), who)


@router.post(
    "/api/v1/devices",
    response_model=DeviceRegistration,
    status_code=201,
    summary="Register a device",
    description="A device Forewarn will listen to (state active, or provisioned until it "
    "first reports). Its owner must be registered; 409 if the id exists. Broker credentials "
    "are made with `forewarn devices provision`.",
    responses=CONFLICT,
)
def create_device(body: DeviceCreate, conn: ConnDep, who: Registrar) -> DeviceRegistration:
    """Create a device."""
    return _device(flows.create_device(conn, body.model_dump(), registered_by=f"api:{who.name}"))


@router.patch(
    "/api/v1/devices/{device_id}",
    response_model=DeviceRegistration,
    summary="Change a device's registration",
    description="Model, kind, serial, firmware, owner, installation time. The state moves "
    "with suspend, resume and decommission.",
    responses=NOT_FOUND,
)
def update_device(
    device_id: str, body: DeviceUpdate, conn: ConnDep, who: Registrar
) -> DeviceRegistration:
    """Update a device."""
    changes = body.model_dump(exclude_unset=True)
    return _device(flows.update_device(conn, device_id, changes))


_MOVES: dict[str, tuple[DeviceState, str]] = {
    "suspend": (
        DeviceState.SUSPENDED,
        "Its messages and broker connections are refused "
        "until it is resumed (from provisioned or active).",
    ),
    "resume": (DeviceState.ACTIVE, "A suspended device is listened to again."),
    "decommission": (
        DeviceState.DECOMMISSIONED,
        "Retired for good: its broker credentials are revoked and its messages refused.",
    ),
}


def _move_route(action: Literal["suspend", "resume", "decommission"]) -> None:
    to, description = _MOVES[action]

    @router.post(
        f"/api/v1/devices/{{device_id}}/{action}",
        response_model=DeviceRegistration,
        summary=f"{action.capitalize()} a device",
        description=description + " 409 if its state does not allow it.",
        responses=NOT_FOUND | CONFLICT,
        name=f"{action}_device",
    )
    def move(
        device_id: str, conn: ConnDep, settings: SettingsDep, who: Registrar
    ) -> DeviceRegistration:
        return _device(flows.move(conn, settings, device_id, to))


for _action in ("suspend", "resume", "decommission"):
    _move_route(_action)


@router.get(
    "/api/v1/dead-letters",
    response_model=DeadLetterPage,
    summary="Dead letters",
    description="Messages the ingester could not read or refused (unknown device, clock "
    "skew, rate limit, oversized...), newest first, with counts by kind of reason. `reason` "
    "keeps those whose reason starts with it, e.g. `unknown device`.",
)
def dead_letters(
    conn: ConnDep,
    who: Registrar,
    reason: Text = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DeadLetterPage:
    """Dead letters."""
    total, kinds, rows = dead.dead_letters(conn, reason=reason, limit=limit, offset=offset)
    items = [DeadLetterItem.model_validate(_preview(r)) for r in rows]
    return DeadLetterPage(total=total, by_reason=kinds, limit=limit, offset=offset, items=items)


def _preview(row: dict[str, Any]) -> dict[str, Any]:
    head = bytes(row.pop("head") or b"")
    return row | {"preview": head.decode("utf-8", errors="backslashreplace")}
