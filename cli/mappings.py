"""``forewarn mappings``: check a payload mapping file, and show what a message becomes.

forewarn mappings check ingest/mappings/examples/tasmota.yaml
forewarn mappings test tasmota.yaml --topic tele/plug/STATE --payload '{"UptimeSec": 60}'
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.common import _reported, _settings, err

mappings_app = typer.Typer(
    no_args_is_help=True, help="Payload mapping files for other firmware (docs/telemetry.md)."
)

FileArg = Annotated[Path, typer.Argument(help="A mapping file (YAML).")]


def register(app: typer.Typer) -> None:
    """Add these commands to the main ``forewarn`` command."""
    app.add_typer(mappings_app, name="mappings")


@mappings_app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="Mapping files (YAML).")]) -> None:
    """Load the files together as the ingester would; name the file and line of any problem."""
    from ingest.mappings.loader import load_mappings

    with _reported():
        found = load_mappings(files)
    for m in found.mappings:
        typer.echo(
            f"{m.file}:{m.line}: {m.name}  {m.topic.text}  (subscribes {m.topic.mqtt_filter()})"
        )
    typer.echo(f"{len(found.mappings)} mappings, {len(found.ignore)} ignore rules: OK")


@mappings_app.command("test")
def test(
    file: FileArg,
    topic: Annotated[str, typer.Option(help="The MQTT topic the message arrives on.")],
    payload: Annotated[
        str | None, typer.Option(help="The payload as text; '-' reads it from stdin.")
    ] = None,
    received_at: Annotated[
        str | None,
        typer.Option(help="When it arrived (RFC 3339; default now): the time without one."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Print what one message becomes: a reading, a status event, ignored, or a dead letter.

    Exit status 0 when it is read, 1 when it would be a dead letter, 2 for a bad file.
    """
    from forewarn.domain import DeadLetter
    from forewarn.errors import MappingError
    from ingest.mappings.adapter import MappingAdapter
    from ingest.router import route, window_from

    settings = _settings()
    body = sys.stdin.buffer.read() if payload == "-" else (payload or "").encode()
    at = datetime.fromisoformat(received_at) if received_at else datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        adapter = MappingAdapter([file], window_from(settings))
    except MappingError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    parsed = route([adapter], topic, body, received_at=at)
    described = describe(parsed, at)
    if as_json:
        typer.echo(json.dumps(described, ensure_ascii=False, indent=2, default=str))
    else:
        for line in lines(described):
            typer.echo(line)
    if isinstance(parsed, DeadLetter):
        raise typer.Exit(1)


def describe(parsed: object, received_at: datetime) -> dict[str, object]:
    """What a parsed message holds, as plain data."""
    from forewarn.domain import DeadLetter, Ignored, Reading, StatusEvent
    from ingest.signals import signals_of

    if isinstance(parsed, Reading):
        return {
            "outcome": "reading",
            "device": parsed.device_id,
            "source": parsed.source,
            "ts": parsed.ts.isoformat(),
            "ts_from": "the receive time" if parsed.ts == received_at else "the message",
            "signals": signals_of(parsed),
            "dropped": dict(parsed.dropped),
            "extra": dict(parsed.extra),
        }
    if isinstance(parsed, StatusEvent):
        return {
            "outcome": "status",
            "device": parsed.device_id,
            "status": parsed.status.value,
            "source": parsed.source,
        }
    if isinstance(parsed, Ignored):
        return {"outcome": "ignored", "why": parsed.why}
    assert isinstance(parsed, DeadLetter)
    return {"outcome": "dead letter", "reason": parsed.reason}


def lines(d: dict[str, object]) -> list[str]:
    """The description as aligned lines for a terminal."""
    if d["outcome"] == "reading":
        out = [
            f"reading for {d['device']} ({d['source']})",
            f"  ts          {d['ts']} ({d['ts_from']})",
        ]
        signals = d["signals"]
        assert isinstance(signals, dict)
        out += [f"  {name:<11} {value}" for name, value in signals.items()]
        dropped = d["dropped"]
        assert isinstance(dropped, dict)
        out += [f"  dropped     {name}: {why}" for name, why in dropped.items()]
        if d["extra"]:
            out.append(f"  extra       {json.dumps(d['extra'], ensure_ascii=False, default=str)}")
        return out
    if d["outcome"] == "status":
        return [f"status of {d['device']}: {d['status']} ({d['source']})"]
    if d["outcome"] == "ignored":
        return [f"ignored: {d['why']}"]
    return [f"dead letter: {d['reason']}"]
