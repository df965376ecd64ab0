"""Registering owners and devices one at a time (the API, ``forewarn devices``), moving a
device through its states, and giving it broker credentials. Each function runs inside the
caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from forewarn.errors import ConflictError, NotFoundError, RecordError
from forewarn.settings import Settings
from registry import credentials, repository, validate
from registry.repository import Conn
from registry.types import DeviceRecord, DeviceState, OwnerRecord

# Which states each state change may start from.
_MOVES: dict[DeviceState, frozenset[DeviceState]] = {
    DeviceState.SUSPENDED: frozenset({DeviceState.PROVISIONED, DeviceState.ACTIVE}),
    DeviceState.ACTIVE: frozenset({DeviceState.SUSPENDED}),
    DeviceState.DECOMMISSIONED: frozenset(
        {DeviceState.PROVISIONED, DeviceState.ACTIVE, DeviceState.SUSPENDED}
    ),
}


def create_owner(conn: Conn, values: Mapping[str, Any]) -> OwnerRecord:
    """Register a new owner; ConflictError if the id is taken."""
    record = validate.owner(values)
    if repository.owner(conn, owner_id=record.owner_id) is not None:
        raise ConflictError(f"owner {record.owner_id} already exists")
    repository.upsert_owners(conn, owners=[record])
    return record


def update_owner(conn: Conn, owner_id: str, changes: Mapping[str, Any]) -> OwnerRecord:
    """Change some of an owner's fields (the whole record is checked again)."""
    stored = repository.owner(conn, owner_id=owner_id)
    if stored is None:
        raise NotFoundError(f"no owner {owner_id}")
    record = validate.owner(asdict(stored) | dict(changes) | {"owner_id": owner_id})
    repository.upsert_owners(conn, owners=[record])
    return record


def create_device(
    conn: Conn, values: Mapping[str, Any], *, registered_by: str = "api"
) -> DeviceRecord:
    """Register a new device; ConflictError if the id is taken."""
    record = validate.device(values)
    if repository.device(conn, device_id=record.device_id) is not None:
        raise ConflictError(f"device {record.device_id} already exists")
    _check_owner(conn, record)
    repository.upsert_devices(conn, devices=[record], registered_by=registered_by)
    return record


def update_device(conn: Conn, device_id: str, changes: Mapping[str, Any]) -> DeviceRecord:
    """Change some of a device's registration (its state moves only by `move`)."""
    stored = _stored(conn, device_id)
    if "state" in changes:
        raise RecordError(
            "change a device's state with suspend, resume or decommission", field="state"
        )
    record = validate.device(asdict(stored) | dict(changes) | {"device_id": device_id})
    _check_owner(conn, record)
    repository.upsert_devices(conn, devices=[record], registered_by="api")
    return record


def move(conn: Conn, settings: Settings, device_id: str, to: DeviceState) -> DeviceRecord:
    """Suspend, resume (to active) or decommission a device, and bring the broker's store in
    line: a suspended device's credential stops working, a decommissioned one's is revoked."""
    stored = _stored(conn, device_id)
    if stored.state not in _MOVES[to]:
        raise ConflictError(
            f"device {device_id} is {stored.state.value}: it cannot become {to.value}"
        )
    repository.set_state(conn, device_id=device_id, state=to)
    if to is DeviceState.DECOMMISSIONED:
        repository.revoke_credentials(conn, device_id=device_id)
    credentials.sync(conn, settings)
    return repository.device(conn, device_id=device_id) or stored


def provision(
    conn: Conn,
    settings: Settings,
    *,
    device_id: str,
    model: str | None = None,
    kind: str | None = None,
    owner_id: str | None = None,
    bridge_base: str | None = None,
) -> credentials.NewCredential:
    """Register the device if it is new (state provisioned) and give it a new broker
    credential, revoking any it had; the broker's store is updated."""
    stored = repository.device(conn, device_id=device_id)
    if stored is None:
        record = validate.device(
            {
                "device_id": device_id,
                "model": model,
                "kind": kind,
                "owner_id": owner_id,
                "state": DeviceState.PROVISIONED,
            }
        )
        _check_owner(conn, record)
        repository.upsert_devices(conn, devices=[record], registered_by="provision")
    elif not stored.state.listened:
        raise ConflictError(f"device {device_id} is {stored.state.value}: resume it first")
    made = credentials.provision(conn, settings, device_id=device_id, bridge_base=bridge_base)
    credentials.sync(conn, settings)
    return made


def revoke(conn: Conn, settings: Settings, device_id: str) -> int:
    """Revoke a device's broker credentials at once; returns how many were active."""
    _stored(conn, device_id)
    revoked = repository.revoke_credentials(conn, device_id=device_id)
    credentials.sync(conn, settings)
    return revoked


def _stored(conn: Conn, device_id: str) -> DeviceRecord:
    stored = repository.device(conn, device_id=device_id)
    if stored is None:
        raise NotFoundError(f"no device {device_id}")
    return stored


def _check_owner(conn: Conn, record: DeviceRecord) -> None:
    if record.owner_id is not None and not repository.owner_ids(conn, among=[record.owner_id]):
        raise RecordError(f"no owner {record.owner_id!r}", field="owner_id")
