"""Route a raw MQTT message to the adapter that reads it; failures become dead letters."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from forewarn.domain import DeadLetter, Ignored, Parsed, Reading
from forewarn.errors import PayloadError
from forewarn.settings import Settings
from ingest.clean import ExtraLimits, clean
from ingest.mappings.adapter import MappingAdapter
from ingest.payloads import ForewarnV1Adapter, PayloadAdapter, TimeWindow
from ingest.zigbee2mqtt import Zigbee2MqttAdapter

MAX_PAYLOAD_BYTES = 64 * 1024  # a health reading is a few hundred bytes; more is a mistake
# What a dead letter keeps of an oversized payload: enough to see what it was.
KEPT_BYTES = 4 * 1024
DEFAULT_LIMITS = ExtraLimits()  # the settings' defaults


def window_from(settings: Settings) -> TimeWindow:
    """The span of message times the settings accept around their arrival. Zigbee2MQTT and
    mapped readings whose own time falls outside it are stored at their arrival (noted in
    ``dropped``); any other message outside it is refused by the edge (ingest/edge.py)."""
    return TimeWindow(
        max_age=timedelta(days=settings.telemetry_retention_days),
        max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
    )


def limits_from(settings: Settings) -> ExtraLimits:
    """The caps on unknown fields the settings give."""
    return ExtraLimits(
        settings.extra_max_fields, settings.extra_max_bytes, settings.extra_max_depth
    )


def adapters_from(settings: Settings) -> tuple[PayloadAdapter, ...]:
    """The adapters the settings enable: native first, then Zigbee2MQTT, then the mapping
    files (MappingError, naming the file and line, if one cannot be loaded)."""
    window = window_from(settings)
    found: list[PayloadAdapter] = [ForewarnV1Adapter(settings.topic_prefix)]
    if settings.zigbee2mqtt_base:
        found.append(Zigbee2MqttAdapter(settings.zigbee2mqtt_base, window))
    if settings.mapping_paths:
        found.append(MappingAdapter(settings.mapping_paths, window))
    return tuple(found)


def route(
    adapters: Sequence[PayloadAdapter],
    topic: str,
    payload: bytes,
    *,
    received_at: datetime,
    max_bytes: int = MAX_PAYLOAD_BYTES,
    limits: ExtraLimits = DEFAULT_LIMITS,
) -> Parsed | DeadLetter:
    """Parse one message; never raises for bad input. A topic an adapter ignores is ignored
    whatever its size (retained bridge lists can be megabytes); an oversized payload becomes a
    dead letter keeping its first 4 KiB, its size and its SHA-256. A reading's values the
    database would refuse are dropped one by one (``ingest.clean``)."""
    for adapter in adapters:
        if adapter.accepts(topic):
            why = adapter.ignores(topic)
            if why:
                return Ignored(topic, why)
            if len(payload) > max_bytes:
                return _oversized(topic, payload, received_at, max_bytes)
            try:
                parsed = adapter.parse(topic, payload, received_at=received_at)
                return clean(parsed, limits) if isinstance(parsed, Reading) else parsed
            except PayloadError as exc:
                return DeadLetter(topic, payload, f"{adapter.name}: {exc.reason}", received_at)
            except Exception as exc:  # a bug in an adapter must not stop ingestion
                reason = f"{adapter.name}: unexpected {type(exc).__name__}: {exc}"
                return DeadLetter(topic, payload, reason, received_at)
    if len(payload) > max_bytes:
        return _oversized(topic, payload, received_at, max_bytes)
    return DeadLetter(topic, payload, "unknown topic", received_at)


def _oversized(topic: str, payload: bytes, received_at: datetime, max_bytes: int) -> DeadLetter:
    return DeadLetter(
        topic,
        payload[:KEPT_BYTES],
        f"payload of {len(payload)} bytes exceeds {max_bytes} bytes",
        received_at,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
