"""MQTT ingester: payload adapters, batched COPY writes, ack-after-commit."""
