"""Route a raw MQTT message to the adapter that reads it; failures become dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from forewarn.domain import DeadLetter, Parsed
from forewarn.errors import PayloadError
from forewarn.settings import Settings
from ingest.payloads import ForewarnV1Adapter, PayloadAdapter, TimeWindow
from ingest.zigbee2mqtt import Zigbee2MqttAdapter

MAX_PAYLOAD_BYTES = 64 * 1024  # a health reading is a few hundred bytes; more is a mistake


def adapters_from(settings: Settings) -> tuple[PayloadAdapter, ...]:
    """The adapters the settings enable, native first."""
    window = TimeWindow(
        max_age=timedelta(days=settings.telemetry_retention_days),
        max_skew=timedelta(days=settings.max_clock_skew_days),
    )
    found: list[PayloadAdapter] = [ForewarnV1Adapter(settings.topic_prefix, window)]
    if settings.zigbee2mqtt_base:
        found.append(Zigbee2MqttAdapter(settings.zigbee2mqtt_base, window))
    return tuple(found)


def route(
    adapters: Sequence[PayloadAdapter], topic: str, payload: bytes, *, received_at: datetime
) -> Parsed | DeadLetter:
    """Parse one message; never raises for bad input."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return DeadLetter(
            topic, payload, f"payload of {len(payload)} bytes exceeds 64 KiB", received_at
        )
    for adapter in adapters:
        if adapter.accepts(topic):
            try:
                return adapter.parse(topic, payload, received_at=received_at)
            except PayloadError as exc:
                return DeadLetter(topic, payload, f"{adapter.name}: {exc.reason}", received_at)
            except Exception as exc:  # a bug in an adapter must not stop ingestion
                reason = f"{adapter.name}: unexpected {type(exc).__name__}: {exc}"
                return DeadLetter(topic, payload, reason, received_at)
    return DeadLetter(topic, payload, "unknown topic", received_at)
