"""Route a raw MQTT message to the adapter that reads it; failures become dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from forewarn.domain import DeadLetter, Ignored, Parsed
from forewarn.errors import PayloadError
from forewarn.settings import Settings
from ingest.mappings.adapter import MappingAdapter
from ingest.payloads import ForewarnV1Adapter, PayloadAdapter, TimeWindow
from ingest.zigbee2mqtt import Zigbee2MqttAdapter

MAX_PAYLOAD_BYTES = 64 * 1024  # a health reading is a few hundred bytes; more is a mistake


def window_from(settings: Settings) -> TimeWindow:
    """The span of readings the settings keep."""
    return TimeWindow(
        max_age=timedelta(days=settings.telemetry_retention_days),
        max_skew=timedelta(days=settings.max_clock_skew_days),
    )


def adapters_from(settings: Settings) -> tuple[PayloadAdapter, ...]:
    """The adapters the settings enable: native first, then Zigbee2MQTT, then the mapping
    files (MappingError, naming the file and line, if one cannot be loaded)."""
    window = window_from(settings)
    found: list[PayloadAdapter] = [ForewarnV1Adapter(settings.topic_prefix, window)]
    if settings.zigbee2mqtt_base:
        found.append(Zigbee2MqttAdapter(settings.zigbee2mqtt_base, window))
    if settings.mapping_paths:
        found.append(MappingAdapter(settings.mapping_paths, window))
    return tuple(found)


def route(
    adapters: Sequence[PayloadAdapter], topic: str, payload: bytes, *, received_at: datetime
) -> Parsed | DeadLetter:
    """Parse one message; never raises for bad input."""
    for adapter in adapters:
        if adapter.accepts(topic):
            why = adapter.ignores(topic)
            if why:  # before the size limit: retained bridge lists can be megabytes
                return Ignored(topic, why)
            if len(payload) > MAX_PAYLOAD_BYTES:
                reason = f"payload of {len(payload)} bytes exceeds 64 KiB"
                return DeadLetter(topic, payload, reason, received_at)
            try:
                return adapter.parse(topic, payload, received_at=received_at)
            except PayloadError as exc:
                return DeadLetter(topic, payload, f"{adapter.name}: {exc.reason}", received_at)
            except Exception as exc:  # a bug in an adapter must not stop ingestion
                reason = f"{adapter.name}: unexpected {type(exc).__name__}: {exc}"
                return DeadLetter(topic, payload, reason, received_at)
    if len(payload) > MAX_PAYLOAD_BYTES:
        return DeadLetter(
            topic, payload, f"payload of {len(payload)} bytes exceeds 64 KiB", received_at
        )
    return DeadLetter(topic, payload, "unknown topic", received_at)
