"""Network outages: many devices falling silent together are one fleet incident with one L3
ticket, never a device incident, guide or ticket each.

The scorer decides that devices fell silent together (``models.detect``: five or more, and
one in fifty of those it heard from lately, within 30 minutes) and writes a prediction of
fault ``outage`` for each of them. Sharing scorers each decide over their own slices, so one
outage can come as several groups; the responder puts every group whose devices fell silent
within ``fleet.window`` of the open outage's first into that outage (one fleet incident per
window), under one lock. A device silence predicted on its own (a scorer whose share of the
outage stayed under its bar) joins the open outage too when the device fell silent within
that window. Each device leaves the outage when it reports again; the last one to leave
closes it and suggests resolving its ticket, as a recovered device incident does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from forewarn.domain import Device, FaultKind, Prediction
from forewarn.settings import Settings
from notifier.tickets import flows as tickets
from rules import outage_repository as outage_repo
from rules import repository as repo
from rules.outage_repository import Member, OpenOutage
from rules.types import RuleSet

Conn = repo.Conn
# One lock for every outage decision: groups from several scorers make one fleet incident.
_LOCK = "outage"
# What a device's silence is predicted as (``models.detect``): a lost link, or the battery or
# the restarts it points to.
SILENCES = frozenset(
    {
        FaultKind.CONNECTIVITY_LOSS.value,
        FaultKind.BATTERY_FAILURE.value,
        FaultKind.REBOOT_LOOP.value,
    }
)


def apply_outage(
    conn: Conn, settings: Settings, rules: RuleSet, *, signals: Sequence[Prediction], now: datetime
) -> tuple[int, bool] | None:
    """Put the devices of these outage predictions into the open outage of their window,
    opening it (and its ticket) if there is none, in one transaction: each scorer's outage
    (its predictions share their time) in turn. A device that has reported since the
    prediction's time is not silent any more and is left out. Returns (the last fleet
    incident joined, whether one was opened), or None when there was none to join."""
    with conn.transaction():
        repo.lock(conn, key=_LOCK)
        last = outage_repo.last_readings(conn, device_ids=[s.device_id for s in signals])
        done: tuple[int, bool] | None = None
        opened = False
        for at in sorted({s.at for s in signals}):
            group = [s for s in signals if s.at == at]
            silent = [
                (s.device_id, last[s.device_id])
                for s in group
                if s.device_id in last and (last[s.device_id] or at) <= at
            ]
            why = next((s.reasons[0] for s in group if s.reasons), "devices fell silent")
            done = _join(conn, settings, rules, silent, trigger=why, now=now) or done
            opened = opened or (done is not None and done[1])
        return None if done is None else (done[0], opened)


def absorb(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    *,
    signal: Prediction,
    device: Device,
    now: datetime,
) -> int | None:
    """Inside a decision's transaction: if `signal` is the device's silence (predicted for a
    time after its last reading) and an outage is open whose devices fell silent within
    ``fleet.window`` of it, the device joins that outage instead of opening an incident.
    Returns the outage's fleet incident (None: decide as usual)."""
    last = device.last_seen
    if signal.fault not in SILENCES or last is None or last >= signal.at:
        return None
    if not any(_near(o, last, rules) for o in outage_repo.open_outages(conn)):
        return None  # no lock taken when no outage is open (the common case)
    repo.lock(conn, key=_LOCK)
    why = signal.reasons[0] if signal.reasons else "the device fell silent"
    done = _join(
        conn, settings, rules, [(device.device_id, last)], trigger=why, now=now, may_open=False
    )
    return None if done is None else done[0]


def recover(conn: Conn, *, now: datetime) -> int:
    """Devices that reported again leave their outage; an outage none of whose devices is
    still silent closes, and its ticket gets a recovery suggestion. Returns outages closed."""
    with conn.transaction():
        repo.lock(conn, key=_LOCK)
        outage_repo.members_back(conn, now=now)
        closed = outage_repo.close_empty(conn, now=now)
        for _, ticket_id in closed:
            if ticket_id is not None:
                why = "every device of the outage reports again"
                tickets.suggest_resolve(conn, ticket_id=ticket_id, now=now, why=why)
    return len(closed)


def describe(members: Sequence[Member], since: datetime | None) -> str:
    """The outage in plain words: how many devices, since when, and what they share."""
    n = len(members)
    when = f" since {since:%Y-%m-%d %H:%M} UTC" if since is not None else ""
    head = (
        f"{n} device{'' if n == 1 else 's'} stopped reporting together{when}, with no offline "
        "status: likely a gateway, network or broker outage, not each device"
    )
    shared = _shared(members)
    tail = "; ".join(shared) if shared else "they share no model, owner or time zone"
    return f"{head}. {tail[0].upper()}{tail[1:]}."


def _shared(members: Sequence[Member]) -> list[str]:
    """What every member has in common, as phrases (the same gateway is not recorded)."""

    def one(of: Callable[[Member], str | None]) -> str | None:
        values = {of(m) for m in members}
        return next(iter(values)) if len(values) == 1 else None

    out: list[str] = []
    model, firmware = one(lambda m: m.model), one(lambda m: m.firmware)
    if model is not None:
        out.append(f"all are {model}" + (f" on firmware {firmware}" if firmware else ""))
    account, owner = one(lambda m: m.account), one(lambda m: m.owner_id)
    if account is not None:
        out.append(f"all belong to the enterprise account {account}")
    elif owner is not None:
        out.append(f"all belong to the owner {owner}")
    zone = one(lambda m: m.time_zone)
    if zone is not None:
        out.append(f"all their owners are in the time zone {zone}")
    return out


def _near(outage: OpenOutage, silent_since: datetime | None, rules: RuleSet) -> bool:
    """Whether a device silent since `silent_since` belongs to `outage`'s window."""
    if outage.since is None or silent_since is None:
        return True
    return abs(silent_since - outage.since) <= rules.fleet.window


def _join(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    silent: Sequence[tuple[str, datetime | None]],
    *,
    trigger: str,
    now: datetime,
    may_open: bool = True,
) -> tuple[int, bool] | None:
    """With the outage lock held: `silent` (device, silent since) join the open outage of
    their window, or (`may_open`) a new one with its ticket. Returns (fleet incident,
    whether it was opened), or None when there is no outage to join."""
    if not silent:
        return None
    known = [t for _, t in silent if t is not None]
    first = min(known) if known else None
    outage = next((o for o in outage_repo.open_outages(conn) if _near(o, first, rules)), None)
    if outage is None and not may_open:
        return None
    if outage is None:
        fleet_id = outage_repo.open_outage(conn, now=now, priority=rules.fleet.priority_for(1))
    else:
        fleet_id = outage.fleet_incident_id
    if not outage_repo.add_members(conn, fleet_incident_id=fleet_id, devices=silent, now=now):
        return fleet_id, False  # all of them were in it already
    members = outage_repo.members(conn, fleet_incident_id=fleet_id)
    known = [m.silent_since for m in members if m.silent_since is not None]
    since = min(known) if known else None
    reason = describe(members, since)
    priority = rules.fleet.priority_for(len(members))
    if outage is None:
        ticket_id = tickets.open_outage_ticket(
            conn,
            settings,
            rules,
            fleet_incident_id=fleet_id,
            device_ids=[m.device_id for m in members],
            since=since or now,
            priority=priority,
            symptom=reason,
            trigger=trigger,
            now=now,
        )
        outage_repo.set_outage(
            conn,
            fleet_incident_id=fleet_id,
            devices=len(members),
            reason=reason,
            ticket_id=ticket_id,
        )
        return fleet_id, True
    if priority.rank > outage.priority.rank and outage.ticket_id is not None:
        tickets.raise_fleet_priority(
            conn,
            rules,
            ticket_id=outage.ticket_id,
            priority=priority,
            devices=len(members),
            now=now,
        )
    outage_repo.set_outage(
        conn,
        fleet_incident_id=fleet_id,
        devices=len(members),
        reason=reason,
        priority=priority if priority.rank > outage.priority.rank else None,
    )
    return fleet_id, False
