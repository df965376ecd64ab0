"""Owners' contact details as each key may see them: in clear for agents and admins (who call
and write to owners), hidden from viewers (dashboards) and integrations (a CRM writes owners;
it does not need them read back). Notification targets hold tokens: everyone sees them as
Apprise prints them with privacy on."""

from __future__ import annotations

from typing import Any

from api.keys.types import Permission, Principal
from forewarn import vault
from notifier.channels import redact_target

HIDDEN = "(hidden: first-line, agent or admin keys only)"
CONTACT_FIELDS = ("contact", "contact_person", "department")


def contact(value: str | None, who: Principal) -> str | None:
    """A contact detail as `who` may see it."""
    if value is None or who.may(Permission.SEE_CONTACTS):
        return value
    return HIDDEN


def owner(fields: dict[str, Any], who: Principal) -> dict[str, Any]:
    """An owner's fields as `who` may see them (targets decrypted, then redacted)."""
    shown = dict(fields)
    for name in CONTACT_FIELDS:
        if name in shown:
            shown[name] = contact(shown[name], who)
    if "targets" in shown:
        shown["targets"] = [redact_target(t) for t in vault.open_all(shown["targets"])]
    return shown
