"""A plain MQTT subscription to the retained topics adapters learn from.

The ingester's main connections share one subscription group. MQTT 5 (4.8.2) has a broker
send no retained messages to a shared subscription, and brokers differ (Mosquitto 2 sends them
to each member's connection), while a live update reaches only one connection of one ingester.
So a Zigbee2MQTT bridge's retained ``bridge/devices``, ``bridge/groups`` and ``bridge/info``
cannot be relied on through those connections. Each ingester process also holds this small
connection of its own: a clean session subscribed to those topics, which receives the retained
copies on connect and every update after, and hands them to the adapters' ``observe``. Nothing
it receives is stored; the main connections ignore the same topics.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from forewarn import mqttclient
from forewarn.settings import Settings
from ingest.payloads import PayloadAdapter

log = logging.getLogger(__name__)


class BridgeWatcher:
    """Feeds watched retained topics to the adapters that asked for them."""

    def __init__(self, settings: Settings, adapters: Sequence[PayloadAdapter]) -> None:
        self._routes = {topic: a for a in adapters for topic in a.watches()}
        self._settings = settings
        self.subscribed = threading.Event()
        self.observed = 0  # messages handed to adapters, for progress and tests
        v5 = settings.mqtt_protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            # Random: several ingester processes each hold one, and ids must not collide.
            client_id=f"{settings.ingest_client_id}-watch-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        mqttclient.configure(self._client, settings)  # credentials and TLS, as the pool's
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def topics(self) -> tuple[str, ...]:
        """What it subscribes to."""
        return tuple(self._routes)

    def start(self) -> None:
        """Connect in the background (nothing to do when no adapter watches anything)."""
        if not self._routes:
            self.subscribed.set()
            return
        self._client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, 30)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect."""
        if self._routes:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("bridge watcher connection refused: %s", reason_code)
            return
        client.subscribe([(topic, 1) for topic in self._routes])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("bridge watcher: subscription refused: %s", ", ".join(refused))
            return
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's network thread: must never raise, or the loop dies.
        adapter = self._routes.get(msg.topic)
        if adapter is None:
            return
        try:
            adapter.observe(msg.topic, bytes(msg.payload))
            self.observed += 1
        except Exception:
            log.exception("could not read watched topic %r", msg.topic)
