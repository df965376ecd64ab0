"""The ingester's MQTT side: K connections in one shared-subscription group.

Each connection is MQTT v5 with a persistent session (clean_start=False and a
session expiry) and manual acknowledgements: the broker keeps every message
until the writer has committed it and calls ``ack``. Each connection's Receive
Maximum bounds how many unacknowledged messages the broker sends it, which is
also what bounds the ingester's backlog while the database is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from forewarn import mqttclient
from forewarn.clock import Clock, SystemClock
from forewarn.domain import DeadLetter, Parsed
from forewarn.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message, parsed, waiting for its batch to commit."""

    connection: int
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    parsed: Parsed | DeadLetter
    received_at: datetime
    arrived: float  # time.monotonic(), for batch deadlines


class SubscriberPool:
    """K paho clients feeding one queue; acks go back to the client that received."""

    def __init__(
        self,
        settings: Settings,
        *,
        filters: Sequence[str],
        parse: Callable[[str, bytes, datetime], Parsed | DeadLetter],
        sink: Callable[[Inbound], None],
        on_connections: Callable[[int], None],
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self._filters = tuple(filters)
        self._parse = parse
        self._sink = sink
        self._on_connections = on_connections
        self._lock = threading.Lock()
        self._v5 = settings.mqtt_protocol == "5"
        # Without MQTT 5 there are no shared subscriptions: one connection, or each
        # connection would receive every message.
        n = settings.ingest_connections if self._v5 else 1
        self._generation = [0] * n
        self._up = [False] * n
        self._clients = [self._make_client(i) for i in range(n)]
        self.connected = threading.Event()

    def _make_client(self, index: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self._settings.ingest_client_id}-{index}",
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,  # 3.1.1: a persistent session
            userdata=index,
        )
        client.manual_ack_set(True)
        mqttclient.configure(client, self._settings)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Connect every client (in the background; they reconnect on their own)."""
        for client in self._clients:
            if self._v5:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self._settings.ingest_session_expiry_seconds
                props.ReceiveMaximum = self._settings.ingest_receive_maximum
                client.connect_async(
                    self._settings.mqtt_host,
                    self._settings.mqtt_port,
                    keepalive=30,
                    clean_start=False,
                    properties=props,
                )
            else:
                client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, 30)
            client.loop_start()

    def resubscribe(self, filters: Sequence[str]) -> None:
        """Change the topic filters (after a mapping reload) on every connection, without
        disconnecting: new filters are subscribed, dropped ones unsubscribed."""
        with self._lock:
            old, self._filters = self._filters, tuple(filters)
        added = [f for f in self._filters if f not in old]
        removed = [f for f in old if f not in self._filters]
        group = self._settings.ingest_share_group
        for client in self._clients:
            if not client.is_connected():
                continue  # _on_connect subscribes the current filters
            if added:
                if self._v5:
                    client.subscribe(
                        [(f"$share/{group}/{f}", SubscribeOptions(qos=1)) for f in added]
                    )
                else:
                    client.subscribe([(f, 1) for f in added])
            if removed:
                client.unsubscribe([f"$share/{group}/{f}" if self._v5 else f for f in removed])

    def stop(self) -> None:
        """Disconnect cleanly; the sessions stay on the broker for the next start."""
        for client in self._clients:
            client.disconnect()
        for client in self._clients:
            client.loop_stop()
            # paho has no public close: a client that never connected (refused, or its TLS
            # handshake failed) still holds its wake-up socket pair until collected.
            client._reset_sockets()

    def ack(self, item: Inbound) -> bool:
        """Acknowledge a committed message, if its connection is still the one it came on."""
        if item.qos == 0:
            return True
        if self._generation[item.connection] != item.generation:
            return False  # the broker will redeliver it on the new connection; the row dedups
        rc = self._clients[item.connection].ack(item.mid, item.qos)
        return rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        index = int(userdata)
        if reason_code.is_failure:
            log.warning("MQTT connection %d refused: %s", index, reason_code)
            return
        with self._lock:
            self._generation[index] += 1
        group = self._settings.ingest_share_group
        with self._lock:
            filters = self._filters
        # Subscribe on every connect: idempotent, and needed when the session expired.
        if self._v5:
            client.subscribe([(f"$share/{group}/{f}", SubscribeOptions(qos=1)) for f in filters])
        else:
            client.subscribe([(f, 1) for f in filters])
        log.info("MQTT connection %d up (session present: %s)", index, flags.session_present)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        # A connection counts as up once the broker has granted its subscriptions.
        index = int(userdata)
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("MQTT connection %d: subscription refused: %s", index, ", ".join(refused))
            return
        with self._lock:
            self._up[index] = True
            up = sum(self._up)
        self._on_connections(up)
        if up == len(self._clients):
            self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        index = int(userdata)
        with self._lock:
            self._up[index] = False
            up = sum(self._up)
        if reason_code.is_failure:
            log.warning("MQTT connection %d lost: %s; reconnecting", index, reason_code)
        self._on_connections(up)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's network thread: must never raise, or the loop dies.
        index = int(userdata)
        try:
            received_at = self._clock.now()
            payload = bytes(msg.payload)
            parsed = self._parse(msg.topic, payload, received_at)
            item = Inbound(
                index,
                self._generation[index],
                msg.mid,
                msg.qos,
                msg.topic,
                payload,
                parsed,
                received_at,
                time.monotonic(),
            )
        except Exception:
            log.exception("could not handle a message on %r; it stays unacknowledged", msg.topic)
            return
        self._sink(item)
