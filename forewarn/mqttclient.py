"""How every Forewarn MQTT client meets the broker: credentials and TLS from the settings.

The ingester, the simulator and the tests build their paho clients themselves (each with its
own client id, protocol and callbacks) and hand them here, so a ``mqtts://`` URL, a CA file
or a client certificate works the same for all of them.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from forewarn.errors import ConfigError
from forewarn.settings import Settings


def configure(client: mqtt.Client, settings: Settings) -> None:
    """Set the client's username, password and TLS as the settings say."""
    credentials = settings.mqtt_credentials
    if credentials is not None:
        client.username_pw_set(*credentials)
    if not settings.mqtt_tls:
        return
    for path in (settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file):
        if path is not None and not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist or is not a file")
    if (settings.mqtt_cert_file is None) != (settings.mqtt_key_file is None):
        raise ConfigError(
            "a client certificate needs its key: set both FOREWARN_MQTT_CERT_FILE "
            "and FOREWARN_MQTT_KEY_FILE"
        )
    try:
        client.tls_set(
            ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            certfile=str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
            keyfile=str(settings.mqtt_key_file) if settings.mqtt_key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot set up TLS for the broker: {exc}") from exc
