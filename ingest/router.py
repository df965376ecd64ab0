"""Route a raw MQTT message to the adapter that reads it; failures become dead letters."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from forewarn.domain import DeadLetter, Parsed
from forewarn.errors import PayloadError
from forewarn.settings import Settings
from ingest.payloads import ForewarnV1Adapter, PayloadAdapter
from ingest.zigbee2mqtt import Zigbee2MqttAdapter

MAX_PAYLOAD_BYTES = 64 * 1024  # a health reading is a few hundred bytes; more is a mistake
# What a dead letter keeps of an oversized payload: enough to see what it was.
KEPT_BYTES = 4 * 1024


def adapters_from(settings: Settings) -> tuple[PayloadAdapter, ...]:
    """The adapters the settings enable, native first."""
    # Times are checked after parsing, by the edge (ingest/edge.py), for every adapter alike.
    found: list[PayloadAdapter] = [ForewarnV1Adapter(settings.topic_prefix)]
    if settings.zigbee2mqtt_base:
        found.append(Zigbee2MqttAdapter(settings.zigbee2mqtt_base))
    return tuple(found)


def route(
    adapters: Sequence[PayloadAdapter],
    topic: str,
    payload: bytes,
    *,
    received_at: datetime,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Parsed | DeadLetter:
    """Parse one message; never raises for bad input. An oversized payload becomes a dead
    letter keeping its first 4 KiB, its size and its SHA-256."""
    if len(payload) > max_bytes:
        return DeadLetter(
            topic,
            payload[:KEPT_BYTES],
            f"payload of {len(payload)} bytes exceeds {max_bytes} bytes",
            received_at,
            size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(),
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
