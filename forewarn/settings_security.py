"""The security and data-lifecycle part of the one ``Settings`` class (docs/security.md).

``Settings`` (forewarn/settings.py) inherits these fields; this module only declares them, so
the settings stay one class read from the environment in one place, in modules that fit in
one reading. Nothing here reads ``os.environ``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from forewarn.signing import check_secret


class SecuritySettings(BaseModel):
    """API hardening, signed and encrypted notifications, ingest caps, database roles and
    retention of personal data."""

    # API: keys, abuse, what the server shows (docs/api.md, docs/security.md)
    api_docs: bool = Field(
        default=True,
        description="Serve /docs, /redoc and /openapi.json; false hides the API's description.",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description=(
            "How long a checked API key is trusted without asking the database again; a key "
            "revoked or expired elsewhere stops working within this time (0: every request)."
        ),
    )
    api_auth_failures: int = Field(
        default=20,
        ge=1,
        description=(
            "Failed API keys one client address may send within api_auth_window_seconds; "
            "past that its unknown keys get 429 with Retry-After, without a database lookup."
        ),
    )
    api_auth_window_seconds: float = Field(
        default=60.0, gt=0, description="The window over which failed keys are counted."
    )
    api_key_days: int = Field(
        default=90,
        ge=0,
        description="Lifetime of a new API key unless its creator says otherwise (0: no expiry).",
    )
    api_trusted_proxies: str = Field(
        default="127.0.0.1",
        description=(
            "Addresses whose X-Forwarded-For/-Proto headers are believed (the reverse proxy in "
            "front of the API; comma-separated, * for any); the client address counts failed "
            "keys and tells loopback scrapers of /metrics."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token /metrics asks for (Authorization: Bearer ...); unset: /metrics "
            "answers loopback clients only."
        ),
    )
    api_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for a database connection before a 503.",
    )

    # Notifications (docs/notifications.md)
    ticket_webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Signs every call to the ticket webhook (Standard Webhooks, whsec_...; forewarn "
            "secret); required when FOREWARN_TICKET_WEBHOOK_URL is set."
        ),
    )
    ticket_webhook_allow_http: bool = Field(
        default=False,
        description="Accept an http:// ticket webhook (a sink on this host); otherwise https only.",
    )
    guide_link_hosts: str = Field(
        default="",
        description=(
            "Hosts (comma-separated; a leading dot takes subdomains) whose https links guides "
            "may show owners; any other link is removed from what owners receive."
        ),
    )
    target_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Fernet keys (comma-separated, newest first) that encrypt owners' notification "
            "targets and the outbox's targets at rest; unset: stored in clear (a warning)."
        ),
    )

    # Ingest: unknown fields kept in a reading's extra
    extra_max_fields: int = Field(
        default=32, ge=0, description="Unknown fields kept per reading (in extra); more dropped."
    )
    extra_max_bytes: int = Field(
        default=2048, ge=0, description="Largest unknown field kept (its JSON, in bytes)."
    )
    extra_max_depth: int = Field(
        default=3,
        ge=1,
        description="Deepest nesting of objects and lists kept in an unknown field.",
    )

    # Retention of personal and operational data (dead letters: dead_letter_retention_days)
    status_event_retention_days: int = Field(
        default=90, ge=1, description="Device status events older than this are deleted."
    )
    notification_retention_days: int = Field(
        default=180,
        ge=1,
        description="Notifications no longer pending (and their attempts) older than this go.",
    )
    ticket_personal_data_days: int = Field(
        default=365,
        ge=1,
        description=(
            "Tickets closed or resolved longer ago than this lose the owner's contact, "
            "replies and survey comments; the ticket and its figures stay for the KPIs."
        ),
    )

    # Database roles made by `forewarn db migrate --roles` (docs/security.md)
    db_role_prefix: str = Field(
        default="forewarn_",
        pattern=r"^[a-z_][a-z0-9_]{0,40}$",
        description="Prefix of the roles: forewarn_migrator, forewarn_ingester, ...",
    )
    db_migrator_password: SecretStr | None = None
    db_ingester_password: SecretStr | None = None
    db_scorer_password: SecretStr | None = None
    db_responder_password: SecretStr | None = None
    db_api_password: SecretStr | None = None

    @field_validator("ticket_webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        check_secret(value.get_secret_value())
        return value

    @field_validator("target_keys")
    @classmethod
    def _check_target_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from forewarn.vault import check_keys

        check_keys(value.get_secret_value())
        return value

    @property
    def link_hosts(self) -> tuple[str, ...]:
        """The hosts guides may link to, lower-cased."""
        return tuple(h.strip().lower() for h in self.guide_link_hosts.split(",") if h.strip())

    @property
    def owner_link_hosts(self) -> tuple[str, ...]:
        """The hosts links to owners may name: the allow-list, and the public URL's host
        (survey links)."""
        public = getattr(self, "public_url", None)
        host = urlsplit(public).hostname if public else None
        return self.link_hosts + ((host.lower(),) if host else ())

    def role_password(self, role: str) -> str | None:
        """The password configured for one of the service roles, if any."""
        secret: SecretStr | None = getattr(self, f"db_{role}_password")
        return secret.get_secret_value() if secret is not None else None
