"""The one settings class. Built once in the entry point and passed down.

Every value can be set from the environment with the ``FOREWARN_`` prefix
(``FOREWARN_DATABASE_URL``, ``FOREWARN_MQTT_URL``...) or from a ``.env`` file.
Nothing else in Forewarn reads ``os.environ``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from forewarn.errors import ConfigError
from forewarn.settings_security import SecuritySettings
from forewarn.signing import check_secret


class Settings(BaseSettings, SecuritySettings):
    """All of Forewarn's configuration, validated at start-up (the security and retention
    fields are declared in forewarn/settings_security.py)."""

    model_config = SettingsConfigDict(
        env_prefix="FOREWARN_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # Errors name the setting and the problem, never its value: some hold secrets.
        hide_input_in_errors=True,
    )

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB URL; unset means an embedded PostgreSQL is started.",
    )
    mqtt_url: str | None = Field(
        default=None,
        description=(
            "mqtt://[user@]host[:port], or mqtts:// for TLS (port 8883 by default); unset "
            "means an embedded broker is started."
        ),
    )
    mqtt_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password of the broker user in FOREWARN_MQTT_URL (kept out of the URL, so any "
            "character works and it is not printed with the URL)."
        ),
    )
    mqtt_ca_file: Path | None = Field(
        default=None,
        description="mqtts://: CA certificate(s) to verify the broker with; unset: the system's.",
    )
    mqtt_cert_file: Path | None = Field(
        default=None, description="mqtts://: client certificate, for brokers that require one."
    )
    mqtt_key_file: Path | None = Field(
        default=None, description="mqtts://: the client certificate's private key."
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description=(
            "MQTT version. 5 gives shared subscriptions (several ingesters) and Receive "
            "Maximum; 3.1.1 is for brokers without v5, such as the embedded one."
        ),
    )
    data_dir: Path = Field(
        default=Path(".forewarn"),
        description="Where embedded services keep their data.",
    )

    # Topics
    topic_prefix: str = "forewarn/v1"
    zigbee2mqtt_base: str | None = Field(
        default="zigbee2mqtt", description="Base topic of a Zigbee2MQTT bridge; empty disables it."
    )
    mapping_files: str | None = Field(
        default=None,
        description=(
            "Payload mapping files (YAML, docs/telemetry.md) for other firmware, comma-separated "
            "and read in order; examples ship in ingest/mappings/examples. Unset: none."
        ),
    )
    mapping_reload_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the ingester checks the mapping files for changes (also: SIGHUP).",
    )

    # Ingester
    ingest_client_id: str = "forewarn-ingest"
    ingest_share_group: str = Field(
        default="forewarn",
        description="MQTT shared-subscription group; instances in one group split the load.",
    )
    ingest_connections: int = Field(
        default=4,
        ge=1,
        le=64,
        description=(
            "MQTT connections per ingester process. Each connection has its own in-flight "
            "window, so more connections let more unacknowledged messages wait for a commit."
        ),
    )
    ingest_receive_maximum: int = Field(
        default=10_000,
        ge=1,
        le=65535,
        description=(
            "MQTT v5 Receive Maximum: unacknowledged QoS 1 messages per connection. Large, "
            "so a burst waits in flight rather than in the broker's queue, which Mosquitto "
            "caps at 1,000 messages per client by default and then drops."
        ),
    )
    ingest_batch_size: int = Field(default=2000, ge=1, description="Rows per COPY batch.")
    ingest_batch_seconds: float = Field(
        default=0.2, gt=0, description="Longest a message waits before its batch is written."
    )
    ingest_session_expiry_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long the broker keeps an ingester's session (and queued messages).",
    )
    ingest_retry_max_seconds: float = Field(
        default=10.0, gt=0, description="Longest pause between database retries."
    )
    max_clock_skew_seconds: float = Field(
        default=300.0,
        gt=0,
        description=(
            "Readings and status messages stamped further than this ahead of the time the "
            "ingester received them are dead-lettered (a device's clock is never trusted to "
            "move last_seen or status into the future)."
        ),
    )
    auto_register: bool = Field(
        default=False,
        description=(
            "Create a device the first time a message names it. Off: messages from devices "
            "not in the registry are dead-lettered ('unknown device'). On for the demo."
        ),
    )
    device_rate_per_minute: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Sustained messages a minute one device may send (token bucket); messages over "
            "the limit are dead-lettered with the reason."
        ),
    )
    device_rate_burst: int = Field(
        default=1000,
        ge=1,
        description=(
            "Messages one device may send at once before the limit: room for a device that "
            "uploads a backlog of readings kept while it was offline."
        ),
    )
    max_payload_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description=(
            "Larger messages are dead-lettered, keeping only their first 4 KiB, length and "
            "SHA-256; set the broker's max_packet_size a little above it."
        ),
    )
    dead_letter_retention_days: int = Field(
        default=14, ge=1, description="Dead letters older than this are deleted."
    )

    # Broker credentials Forewarn keeps for devices (docs/operations.md#securing-the-broker)
    broker_password_file: Path | None = Field(
        default=None,
        description=(
            "Mosquitto password file of the device listener, rewritten by `forewarn devices "
            "provision|revoke`; unset: credentials are kept in the database only."
        ),
    )
    broker_acl_file: Path | None = Field(
        default=None,
        description="Mosquitto ACL file of the device listener, rewritten with the password file.",
    )
    broker_pid_file: Path | None = Field(
        default=None,
        description=(
            "Mosquitto's pid file: sent SIGHUP after a change, so a revoked device is cut off "
            "at once. Unset: the broker's watcher reloads (the compose stack) or reload by hand."
        ),
    )
    metrics_port: int | None = Field(
        default=None, description="Serve Prometheus metrics on this port while ingesting."
    )

    # Storage
    storage: Literal["auto", "timescaledb", "partitioned"] = Field(
        default="auto",
        description=(
            "Telemetry storage path on first migrate: TimescaleDB when the extension is "
            "available (auto), or native PostgreSQL partitioning. Fixed once chosen."
        ),
    )
    telemetry_retention_days: int = Field(default=90, ge=1)
    compress_after_days: int = Field(default=7, ge=1)
    partitions_ahead_days: int = Field(default=3, ge=1)

    # Acting on predictions
    rules_path: Path | None = Field(
        default=None,
        description="YAML rule set; unset means the shipped rules/default.yaml.",
    )
    guides_dir: Path | None = Field(
        default=None,
        description="Folder of Markdown guides loaded into the knowledge base; unset: guides/.",
    )
    notify_config: str | None = Field(
        default=None,
        description=(
            "Apprise configuration (a file path or URL, YAML or text) naming the staff's "
            "targets with tags such as support-l1, lead-l1, enterprise-<account>."
        ),
    )
    ticket_webhook_url: str | None = Field(
        default=None,
        description="Generic webhook ticket sink: each ticket is POSTed here as JSON.",
    )
    notify_max_attempts: int = Field(
        default=6, ge=1, le=50, description="Attempts per notification before it is failed."
    )
    notify_backoff_seconds: float = Field(
        default=2.0, gt=0, description="Pause after the first failed attempt; doubles after each."
    )
    notify_backoff_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest pause between attempts."
    )
    notify_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one send may take before it counts as failed."
    )
    respond_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the responder checks clocks (waits, SLA dues, recoveries).",
    )

    # API and console
    api_host: str = Field(default="127.0.0.1", description="Address the API and console bind to.")
    api_port: int = Field(default=8000, ge=0, le=65535, description="Port of the API and console.")
    api_pool_size: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Database connections the API keeps; one per request being served.",
    )

    # Talking with owners: their replies, surveys and call-backs (docs/owners.md)
    public_url: str | None = Field(
        default=None,
        description=(
            "Base URL owners reach the API at, for survey links (https://support.example.com); "
            "unset: the address a request came to, else http://API_HOST:API_PORT."
        ),
    )
    inbound_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            'Relays that may post owners\' replies, as JSON {"wecom": "whsec_...", ...}: the '
            "channel name in POST /api/v1/inbound/{channel} and its Standard Webhooks signing "
            "secret (forewarn secret). A channel not listed is refused."
        ),
    )
    inbound_tolerance_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="How far a reply's webhook-timestamp may be from now before it is refused.",
    )
    survey_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Signs survey links (whsec_..., forewarn secret); unset: resolved tickets get no "
            "link, and the call-back after survey_answer_hours asks the owner instead."
        ),
    )
    survey_valid_days: float = Field(
        default=7.0, gt=0, le=90, description="How long a survey link works."
    )
    survey_answer_hours: float = Field(
        default=24.0,
        gt=0,
        description=(
            "A survey not answered this long after the resolution becomes a call-back task in "
            "the agents' queue (the standard: satisfaction by survey or call-back in 24 h)."
        ),
    )
    battery_chemistry: dict[str, str] = Field(
        default_factory=dict,
        description=(
            'Device model -> battery pack, JSON such as {"th-sensor": "cr2032"}: li-ion, '
            "1xaa, 2xaa, 4xaa, cr2032 or cr123a; a device reporting only volts is read "
            "through its pack's discharge curve (unset: guessed from the first voltage)."
        ),
    )
    temperature_limits: dict[str, float] = Field(
        default_factory=dict,
        description='Device model -> highest safe temperature °C, JSON such as {"hub": 70}.',
    )
    false_alarm_budget: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Detector alerts per 1,000 device-days that `forewarn calibrate` allows on the "
            "fleet's healthy history when it sets the detectors' thresholds."
        ),
    )

    @field_validator("battery_chemistry", "temperature_limits", mode="before")
    @classmethod
    def _parse_model_map(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ValueError('expected JSON such as {"model": "value"}: ' + str(exc)) from exc
        return value

    @field_validator("battery_chemistry")
    @classmethod
    def _check_chemistry(cls, value: dict[str, str]) -> dict[str, str]:
        known = ("li-ion", "1xaa", "2xaa", "4xaa", "cr2032", "cr123a")
        for model, name in value.items():
            if name.lower() not in known:
                raise ValueError(f"{model}: unknown battery {name!r} (known: {', '.join(known)})")
        return value

    @field_validator("inbound_secrets", mode="before")
    @classmethod
    def _parse_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ValueError(
                    'expected JSON such as {"wecom": "whsec_..."}: ' + str(exc)
                ) from exc
        return value

    @field_validator("inbound_secrets")
    @classmethod
    def _check_channels(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for channel, secret in value.items():
            if not channel or len(channel) > 32 or not channel.replace("-", "").isalnum():
                raise ValueError(
                    f"channel {channel!r}: letters, digits and -, at most 32 characters"
                )
            try:
                check_secret(secret.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"channel {channel!r}: {exc}") from exc
        return value

    @field_validator("survey_secret")
    @classmethod
    def _check_survey_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        check_secret(value.get_secret_value())
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {value!r}")
        return value

    @field_validator(
        "database_url",
        "zigbee2mqtt_base",
        "notify_config",
        "ticket_webhook_url",
        "mapping_files",
        "public_url",
    )
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _check_windows(self) -> Settings:
        if self.compress_after_days >= self.telemetry_retention_days:
            raise ValueError("compress_after_days must be shorter than telemetry_retention_days")
        if self.ticket_webhook_url is not None:
            scheme = urlsplit(self.ticket_webhook_url).scheme
            if scheme != "https" and not (scheme == "http" and self.ticket_webhook_allow_http):
                raise ValueError(
                    "ticket_webhook_url must be https:// (http:// only with "
                    "FOREWARN_TICKET_WEBHOOK_ALLOW_HTTP=true, for a sink on this host)"
                )
            if self.ticket_webhook_secret is None:
                raise ValueError(
                    "ticket_webhook_url needs FOREWARN_TICKET_WEBHOOK_SECRET (whsec_..., "
                    "forewarn secret): every ticket sent is signed"
                )
        return self

    @property
    def mapping_paths(self) -> tuple[Path, ...]:
        """The active mapping files, in order."""
        if not self.mapping_files:
            return ()
        return tuple(Path(p.strip()) for p in self.mapping_files.split(",") if p.strip())

    @property
    def mqtt_host(self) -> str:
        """Host of the configured broker."""
        return urlsplit(self._require_mqtt()).hostname or "127.0.0.1"

    @property
    def mqtt_tls(self) -> bool:
        """Whether the broker URL asks for TLS (mqtts:// or ssl://)."""
        return urlsplit(self._require_mqtt()).scheme in ("mqtts", "ssl")

    @property
    def mqtt_port(self) -> int:
        """Port of the configured broker (1883, or 8883 with TLS, unless the URL says)."""
        return urlsplit(self._require_mqtt()).port or (8883 if self.mqtt_tls else 1883)

    @property
    def mqtt_credentials(self) -> tuple[str, str | None] | None:
        """Username from the broker URL, and the password from FOREWARN_MQTT_PASSWORD or the
        URL, if any."""
        parts = urlsplit(self._require_mqtt())
        if not parts.username:
            return None
        secret = self.mqtt_password.get_secret_value() if self.mqtt_password else None
        return parts.username, secret if secret is not None else parts.password

    def _require_mqtt(self) -> str:
        if self.mqtt_url is None:
            raise ConfigError("no MQTT broker configured (set FOREWARN_MQTT_URL)")
        return self.mqtt_url

    def as_environment(self) -> dict[str, str]:
        """These settings as ``FOREWARN_*`` variables, to hand to a child process."""
        return {
            f"FOREWARN_{name.upper()}": _environment_value(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    def with_overrides(self, **changes: object) -> Settings:
        """A validated copy with some values changed (used once embedded services are up)."""
        return type(self).model_validate(self.model_dump() | changes)


def _environment_value(value: object) -> str:
    """A setting as its environment variable holds it: secrets revealed (a child process
    needs them), mappings as JSON."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return json.dumps({k: _environment_value(v) for k, v in value.items()})
    return str(value)
