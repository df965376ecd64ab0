"""Owners' quiet hours: when a message that can wait should go out. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from forewarn.domain import Owner


def quiet_until(owner: Owner, now: datetime) -> datetime | None:
    """When the owner's quiet hours end, if `now` falls inside them (None otherwise)."""
    if owner.quiet_start is None or owner.quiet_end is None or owner.quiet_start == owner.quiet_end:
        return None
    local = now.astimezone(zone_of(owner))
    start, end, clock = owner.quiet_start, owner.quiet_end, local.time()
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    end_day = local.date() if clock < end else local.date() + timedelta(days=1)
    # combine's tzinfo replaces any the stored time carries.
    return datetime.combine(end_day, end, tzinfo=zone_of(owner)).astimezone(now.tzinfo)


def zone_of(owner: Owner) -> ZoneInfo:
    """The owner's time zone (UTC when the stored name is unknown)."""
    try:
        return ZoneInfo(owner.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
