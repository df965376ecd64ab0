"""Publishing simulated messages to an MQTT broker (paho-mqtt 2, MQTT v5 by default, QoS 1)."""

from __future__ import annotations

import threading
import time
import uuid
from types import TracebackType
from typing import Any, Protocol, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from forewarn import mqttclient
from forewarn.errors import ServiceError
from forewarn.settings import Settings

# paho keeps everything past the in-flight window in memory; this many unacknowledged messages
# is where publish() starts waiting, so a fast simulation cannot outrun the broker unbounded.
_MAX_PENDING = 5000
# A broker-side window this wide keeps a local Mosquitto busy without reordering pressure.
_MAX_INFLIGHT = 1000


class MessageSink(Protocol):
    """Where the simulator sends messages: the MQTT publisher, or a fake in tests."""

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Send one message (QoS 1)."""

    def flush(self, timeout: float = 30.0) -> None:
        """Return once everything sent so far is acknowledged."""

    def close(self) -> None:
        """Flush and disconnect."""


class MqttPublisher:
    """A QoS 1 publisher that never loses a message silently: failures raise ServiceError."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str | None = None,
        connect_timeout: float = 10.0,
        max_pending: int = _MAX_PENDING,
    ) -> None:
        self._host, self._port = settings.mqtt_host, settings.mqtt_port
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._sent = 0
        self._acked = 0
        self._failures: list[str] = []
        self._connected = False
        self._connect_error: str | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"forewarn-sim-{uuid.uuid4().hex[:12]}",
            # v5 by default; 3.1.1 for brokers without v5 (the embedded one).
            protocol=mqtt.MQTTv5 if settings.mqtt_protocol == "5" else mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(_MAX_INFLIGHT)
        mqttclient.configure(self._client, settings)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise ServiceError(
                f"cannot reach MQTT broker {self._host}:{self._port}: {exc}"
            ) from exc
        self._client.loop_start()
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._connected or self._connect_error is not None, connect_timeout
            )
        if not ready or self._connect_error is not None:
            self._client.loop_stop()
            reason = self._connect_error or f"no CONNACK within {connect_timeout:g} s"
            raise ServiceError(f"MQTT broker {self._host}:{self._port} refused us: {reason}")

    def _on_connect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any = None
    ) -> None:
        with self._cond:
            if reason.is_failure:
                self._connect_error = str(reason)
            else:
                self._connected = True
            self._cond.notify_all()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any = None
    ) -> None:
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _on_publish(
        self, _c: mqtt.Client, _u: Any, _mid: int, reason: ReasonCode, _p: Any = None
    ) -> None:
        with self._cond:
            self._acked += 1
            if reason.is_failure:
                self._failures.append(str(reason))
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Messages sent but not yet acknowledged by the broker."""
        with self._cond:
            return self._sent - self._acked

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Send one message with QoS 1; waits while too many are unacknowledged."""
        with self._cond:
            self._raise_failures()
            if self._sent - self._acked >= self._max_pending:
                self._wait_acked(self._sent - self._max_pending // 2, 60.0)
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ServiceError(f"publishing to {topic!r} failed: {mqtt.error_string(info.rc)}")
        with self._cond:
            self._sent += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every message sent so far is acknowledged; raise if any was refused."""
        with self._cond:
            self._wait_acked(self._sent, timeout)
            self._raise_failures()

    def close(self) -> None:
        """Flush, then disconnect cleanly."""
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _wait_acked(self, target: int, timeout: float) -> None:
        # Called with the condition held; on_publish notifies it for every PUBACK.
        deadline = time.monotonic() + timeout
        while self._acked < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceError(
                    f"{self._sent - self._acked} messages to {self._host}:{self._port} "
                    f"not acknowledged within {timeout:g} s"
                )
            self._cond.wait(min(remaining, 1.0))
            self._raise_failures()

    def _raise_failures(self) -> None:
        if self._failures:
            first, count = self._failures[0], len(self._failures)
            raise ServiceError(f"broker refused {count} message(s), first reason: {first}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            # Already failing: do not mask the error with a flush timeout.
            self._client.disconnect()
            self._client.loop_stop()
