"""Declarative payload mappings: YAML files that say how a firmware's topics and fields become
readings and status events (docs/telemetry.md)."""
