"""``forewarn registry`` (import, export), ``forewarn devices`` (provision, revoke, suspend,
resume, decommission) and ``forewarn broker`` (cli/broker.py): onboarding a real fleet."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.broker import broker_app
from cli.common import Conn, _on_database, _settings, err

registry_app = typer.Typer(no_args_is_help=True, help="Owners and devices: import and export.")
devices_app = typer.Typer(no_args_is_help=True, help="Devices: broker credentials and states.")


def register(app: typer.Typer) -> None:
    """Add these commands to the main ``forewarn`` command."""
    app.add_typer(registry_app, name="registry")
    app.add_typer(devices_app, name="devices")
    app.add_typer(broker_app, name="broker")


@registry_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV or JSON lines of owners and/or devices.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count, change nothing.")
    ] = False,
) -> None:
    """Register owners and devices from a file (idempotent). Exit status 1 if any record was
    refused; the others are taken."""
    from registry.importer import import_file

    summary = _on_database(_settings(), lambda conn: import_file(conn, path, dry_run=dry_run))
    for refusal in summary.refused:
        err.print(f"{path}: {refusal}", markup=False, highlight=False)
    verb = "would be" if dry_run else "were"
    typer.echo(
        f"{summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged, "
        f"{len(summary.refused)} refused ({'dry run: nothing ' + verb + ' changed' if dry_run else 'committed'})"
    )
    if summary.refused:
        raise typer.Exit(1)


@registry_app.command("export")
def export_cmd(
    what: Annotated[str, typer.Option(help="owners or devices.")] = "devices",
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Write the registry's owners or devices as `forewarn registry import` reads them."""
    from registry.importer import export

    if what not in ("owners", "devices") or fmt not in ("jsonl", "csv"):
        err.print("[red]error:[/red] --what is owners or devices; --format is jsonl or csv")
        raise typer.Exit(2)
    kind: Literal["owner", "device"] = "owner" if what == "owners" else "device"
    form: Literal["jsonl", "csv"] = "csv" if fmt == "csv" else "jsonl"
    stream = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        count = _on_database(_settings(), lambda conn: export(conn, stream, what=kind, fmt=form))
    finally:
        if out:
            stream.close()
    err.print(f"{count} {what} written" + (f" to {out}" if out else ""))


@devices_app.command("provision")
def provision_cmd(
    device_id: Annotated[str, typer.Argument(help="The device's id (also its broker username).")],
    model: Annotated[str | None, typer.Option(help="Model, when the device is new.")] = None,
    kind: Annotated[str | None, typer.Option(help="Kind (lock, camera...), when new.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner id, when the device is new.")] = None,
    bridge: Annotated[
        str | None,
        typer.Option(help="A bridge (Zigbee2MQTT...): may use BRIDGE/# instead of its own topics."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line on stdout.")] = False,
) -> None:
    """Register the device (if new) and give it broker credentials; the password is printed
    this once (only its hash is kept). Provisioning again replaces the old password."""
    from registry.credentials import NewCredential
    from registry.flows import provision

    settings = _settings()

    def work(conn: Conn) -> NewCredential:
        with conn.transaction():
            return provision(
                conn,
                settings,
                device_id=device_id,
                model=model,
                kind=kind,
                owner_id=owner,
                bridge_base=bridge,
            )

    made = _on_database(settings, work)
    line = {
        "device_id": made.device_id,
        "username": made.username,
        "password": made.password,
        "client_id": made.username,
        "bridge": made.bridge_base,
    }
    if as_json:
        print(json.dumps(line))
        return
    err.print(
        f"device {made.device_id}: broker username and client id {made.username!r}; "
        "the password (store it now; it is not shown again):"
    )
    print(made.password)


def _move(device_id: str, to: str) -> None:
    from registry.flows import move
    from registry.types import DeviceState

    settings = _settings()

    def work(conn: Conn) -> None:
        with conn.transaction():
            move(conn, settings, device_id, DeviceState(to))

    _on_database(settings, work)
    err.print(f"device {device_id} is {to}")


@devices_app.command("revoke")
def revoke_cmd(device_id: Annotated[str, typer.Argument()]) -> None:
    """Revoke the device's broker credentials: it is disconnected and refused at once."""
    from registry.flows import revoke

    settings = _settings()

    def work(conn: Conn) -> int:
        with conn.transaction():
            return revoke(conn, settings, device_id)

    revoked = _on_database(settings, work)
    err.print(f"device {device_id}: {revoked} credential(s) revoked")


@devices_app.command("suspend")
def suspend_cmd(device_id: Annotated[str, typer.Argument()]) -> None:
    """Refuse the device's messages and broker connections until it is resumed."""
    _move(device_id, "suspended")


@devices_app.command("resume")
def resume_cmd(device_id: Annotated[str, typer.Argument()]) -> None:
    """Listen to a suspended device again."""
    _move(device_id, "active")


@devices_app.command("decommission")
def decommission_cmd(device_id: Annotated[str, typer.Argument()]) -> None:
    """Retire the device for good: its credentials are revoked, its messages refused."""
    _move(device_id, "decommissioned")
