"""``forewarn broker sync`` and ``forewarn broker run-local``: the broker's authentication
store, and a local Mosquitto with the shipped security configuration (what
``deploy/mosquitto/run-local`` runs)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import _on_database, _settings, err

broker_app = typer.Typer(no_args_is_help=True, help="The broker's authentication store.")

SHIPPED = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
# The service users of the shipped configuration (deploy/mosquitto/services.acl).
SERVICE_USERS = ("forewarn-ingest", "forewarn-simulator")


@broker_app.command("sync")
def sync_cmd() -> None:
    """Rewrite the broker's device password and ACL files from the database and reload it."""
    from registry.credentials import sync

    settings = _settings()
    if settings.broker_password_file is None:
        err.print("[red]error:[/red] set FOREWARN_BROKER_PASSWORD_FILE (and _ACL_FILE)")
        raise typer.Exit(2)
    active = _on_database(settings, lambda conn: sync(conn, settings))
    err.print(f"{active} active credential(s) written to {settings.broker_password_file}")


@broker_app.command("run-local")
def run_local(
    port: Annotated[int, typer.Argument(min=1, max=65535, help="Device listener port.")],
    directory: Annotated[Path, typer.Argument(help="Where the broker keeps its state.")],
    service_port: Annotated[
        int | None, typer.Option(help="Port of the services' listener (default PORT+1).")
    ] = None,
) -> None:
    """Run Mosquitto in the foreground on 127.0.0.1 with the shipped security configuration;
    first print one JSON line with the environment to use it."""
    from registry.credentials import ITERATIONS, acl_text, hash_secret, new_salt, password_line
    from registry.types import StoredCredential

    binary = shutil.which("mosquitto")
    if binary is None:
        err.print("[red]error:[/red] no mosquitto binary on PATH (apt-get install mosquitto)")
        raise typer.Exit(1)
    services = service_port or port + 1
    directory = directory.resolve()
    (directory / "data").mkdir(parents=True, exist_ok=True)
    settings = _settings()
    passwords = {user: secrets.token_urlsafe(24) for user in SERVICE_USERS}
    lines = []
    for user, secret in passwords.items():
        salt = new_salt()
        lines.append(
            password_line(
                StoredCredential(user, salt, hash_secret(secret, salt=salt), ITERATIONS, None)
            )
        )
    _write(directory / "services.passwd", "\n".join(lines) + "\n")
    for name, text in (("devices.passwd", ""), ("devices.acl", acl_text([], prefix="forewarn/v1"))):
        if not (directory / name).exists():
            _write(directory / name, text)
    conf = directory / "mosquitto.conf"
    _write(
        conf,
        local_config(
            (SHIPPED / "mosquitto.conf").read_text(), directory, port=port, service_port=services
        ),
    )
    env = {
        "FOREWARN_MQTT_URL": f"mqtt://forewarn-ingest@127.0.0.1:{services}",
        "FOREWARN_MQTT_PASSWORD": passwords["forewarn-ingest"],
        "FOREWARN_BROKER_PASSWORD_FILE": str(directory / "devices.passwd"),
        "FOREWARN_BROKER_ACL_FILE": str(directory / "devices.acl"),
        "FOREWARN_BROKER_PID_FILE": str(directory / "mosquitto.pid"),
    }
    if settings.topic_prefix != "forewarn/v1":
        err.print("note: the shipped ACLs name the default topic prefix forewarn/v1")
    print(
        json.dumps(
            {
                "env": env,
                "devices_url": f"mqtt://127.0.0.1:{port}",
                "simulator": {
                    "FOREWARN_MQTT_URL": f"mqtt://forewarn-simulator@127.0.0.1:{services}",
                    "FOREWARN_MQTT_PASSWORD": passwords["forewarn-simulator"],
                },
            }
        ),
        flush=True,
    )
    sys.stderr.flush()
    os.execv(binary, [binary, "-c", str(conf)])


def local_config(shipped: str, directory: Path, *, port: int, service_port: int) -> str:
    """The shipped configuration with its listeners on 127.0.0.1 and its files under
    `directory`: the same authentication, ACLs and limits, no TLS listener."""
    out: list[str] = [f"pid_file {directory / 'mosquitto.pid'}"]
    if os.geteuid() == 0:
        out.append("user root")  # the state directory belongs to whoever runs this
    skipping = False
    for line in shipped.splitlines():
        listener = re.match(r"listener (\d+)", line)
        if listener:
            number = int(listener.group(1))
            skipping = number == 8883
            if number == 1884:
                line = f"listener {service_port} 127.0.0.1"
            elif number == 1883:
                line = f"listener {port} 127.0.0.1"
        elif line.startswith("log_dest"):
            line = "log_dest stderr"  # stdout carries the JSON line
        if skipping:
            continue
        line = line.replace("/mosquitto/auth/", f"{directory}/")
        line = line.replace("/mosquitto/config/", f"{SHIPPED}/")
        line = line.replace("/mosquitto/data/", f"{directory}/data/")
        out.append(line)
    return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
