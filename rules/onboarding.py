"""Every novice onboarded: the onboarding guide for a product kind goes to a novice owner once,
when their device of that kind first reports (the responder's pass), or with their first fault
guide, whichever comes first (the service improvement plan: 新手用户入门指导率 100%)."""

from __future__ import annotations

from datetime import datetime, timedelta

from forewarn.domain import Device, Segment
from notifier import repository as outbox
from notifier.guides.flows import onboarding_for
from notifier.guides.select import render
from notifier.guides.types import GuideFacts
from notifier.quiet import quiet_until
from notifier.types import OutboundMessage, target_key
from rules import facts
from rules import repository as repo
from rules.decide import segment_of
from rules.types import RuleSet

Conn = repo.Conn


def welcome_new_devices(
    conn: Conn, rules: RuleSet, *, now: datetime, links: tuple[str, ...] = ()
) -> int:
    """Onboard the novice owners whose devices have reported and who have not had their
    kind's onboarding guide; each in its own transaction. Returns how many were queued."""
    since = now - timedelta(days=rules.timing.novice_days)
    queued = 0
    with conn.transaction():
        candidates = repo.not_onboarded(conn, activated_since=since)
    for device_id in candidates:
        with conn.transaction():
            device = facts.device(conn, device_id=device_id)
            if device is None or device.owner is None:
                continue
            if segment_of(device, now, rules.timing) is not Segment.NOVICE:
                continue
            held = quiet_until(device.owner, now)
            queued += welcome(conn, device, now=now, send_at=held or now, links=links)
            outbox.notify_outbox(conn)
    return queued


def welcome(
    conn: Conn,
    device: Device,
    *,
    now: datetime,
    send_at: datetime,
    links: tuple[str, ...] = (),
) -> int:
    """Queue the onboarding guide of the device's kind to each of its owner's targets, unless
    the owner already got it for that kind; returns how many were queued (only links to
    `links` hosts reach the owner)."""
    owner = device.owner
    if owner is None or not owner.targets or device.kind is None:
        return 0
    guide = onboarding_for(conn, kind=device.kind, locale=owner.locale)
    marked = repo.mark_onboarded(
        conn,
        owner_id=owner.owner_id,
        kind=device.kind,
        device_id=device.device_id,
        guide_id=guide.guide_id if guide is not None else "",
        at=now,
    )
    if not marked or guide is None:
        return 0  # onboarded before; or no guide in a language they read (marked: not retried)
    facts_ = GuideFacts(kind=device.kind, model=device.model, owner_name=owner.name)
    text = render(guide, facts_, links=links)
    queued = 0
    for target in owner.targets:
        made = outbox.enqueue(
            conn,
            message=OutboundMessage(
                # Keyed by owner and product kind: a novice is welcomed once, not per device.
                key=f"onboarding:{owner.owner_id}:{device.kind}:{target_key(target)}",
                channel="apprise",
                audience="owner",
                target=target,
                title=text.title,
                body=text.body,
                created_at=now,
                not_before=send_at,
                owner_id=owner.owner_id,
                device_id=device.device_id,
                guide_id=guide.guide_id,
                locale=guide.locale,
            ),
        )
        queued += made is not None
    return queued
