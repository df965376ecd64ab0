"""API keys: roles, what each role may do, and who is asking."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Role(enum.StrEnum):
    """What an API key is for."""

    VIEWER = "viewer"  # team leads, dashboards: read everything
    FIRST_LINE = "first_line"  # L1 support: work tickets, view the knowledge base
    AGENT = "agent"  # L2/L3 support: work tickets, edit the knowledge base (drafts)
    REVIEWER = "reviewer"  # R&D: check guides' accuracy and publish them
    INTEGRATION = "integration"  # a helpdesk or CRM: read, and work tickets
    ADMIN = "admin"  # everything, including keys and rule sets


class Permission(enum.StrEnum):
    """One kind of thing an API call does."""

    READ = "read"
    ACT_TICKETS = "act_tickets"
    EDIT_GUIDES = "edit_guides"  # write drafts and send them for review
    REVIEW_GUIDES = "review_guides"  # publish or reject a guide in review
    MANAGE_RULES = "manage_rules"
    MANAGE_KEYS = "manage_keys"
    MANAGE_REGISTRY = "manage_registry"  # owners (personal data), devices, dead letters
    SEE_CONTACTS = "see_contacts"  # owners' phone, e-mail and contact person, in clear


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.FIRST_LINE: frozenset({Permission.READ, Permission.ACT_TICKETS, Permission.SEE_CONTACTS}),
    Role.AGENT: frozenset(
        {Permission.READ, Permission.ACT_TICKETS, Permission.EDIT_GUIDES, Permission.SEE_CONTACTS}
    ),
    Role.REVIEWER: frozenset({Permission.READ, Permission.EDIT_GUIDES, Permission.REVIEW_GUIDES}),
    Role.INTEGRATION: frozenset(
        {Permission.READ, Permission.ACT_TICKETS, Permission.MANAGE_REGISTRY}
    ),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid API key."""

    key_id: int
    name: str
    role: Role
    expires_at: datetime | None = None

    def may(self, permission: Permission) -> bool:
        """Whether this key's role grants `permission`."""
        return permission in GRANTS[self.role]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key as lists show it (never its secret)."""

    key_id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = None
    created_by: str | None = None
    revoked_by: str | None = None
    last_used_from: str | None = None


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """One line of a key's audit: made, used (from an address, at most hourly), revoked."""

    key_id: int
    at: datetime
    event: str
    actor: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the only time its secret is known."""

    key: ApiKey
    secret: str
