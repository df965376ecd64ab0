"""``forewarn api`` and ``forewarn keys``: the staff API and console, and its keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import Conn, _on_database, _reported, _settings, err

keys_app = typer.Typer(no_args_is_help=True, help="API keys for staff and integrations.")
ROLES = "viewer, first_line, agent, reviewer, integration or admin"


def register(app: typer.Typer) -> None:
    """Add these commands to the main ``forewarn`` command."""
    app.command("api")(serve)
    app.command("secret")(secret)
    app.add_typer(keys_app, name="keys")


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (FOREWARN_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (FOREWARN_API_PORT).")] = None,
) -> None:
    """Serve the API and the console (http://HOST:PORT/) until Ctrl-C."""
    import uvicorn

    from api.server import config

    settings = _settings()
    with _reported():
        cfg = config(settings, host=host, port=port)
    err.print(
        f"Forewarn API and console on http://{cfg.host}:{cfg.port}/ "
        "(keys: forewarn keys create --name NAME --role ROLE)"
    )
    uvicorn.Server(cfg).run()


def secret() -> None:
    """Print a new signing secret (whsec_...) for FOREWARN_SURVEY_SECRET or a relay's entry in
    FOREWARN_INBOUND_SECRETS; give the relay the same one."""
    from forewarn.signing import new_secret

    print(new_secret())


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    role: Annotated[str, typer.Option(help=f"One of: {ROLES}.")],
    days: Annotated[
        int | None,
        typer.Option(
            min=0, help="Days until it expires (0: never; default FOREWARN_API_KEY_DAYS)."
        ),
    ] = None,
) -> None:
    """Create a key and print its secret (shown this once; only its hash is stored)."""
    from api.keys.flows import create_key, expiry
    from api.keys.types import Role

    try:
        chosen = Role(role)
    except ValueError as exc:
        err.print(f"[red]error:[/red] unknown role {role!r}: use {ROLES}")
        raise typer.Exit(2) from exc

    settings = _settings()
    until = expiry(settings.api_key_days if days is None else days)

    def work(conn: Conn) -> str:
        made = create_key(conn, name=name, role=chosen, expires_at=until, created_by="command line")
        conn.commit()
        return made.secret

    secret = _on_database(settings, work)
    lasts = f"expires {until:%Y-%m-%d %H:%M} UTC" if until else "never expires"
    err.print(f"{chosen.value} key for {name!r}, {lasts} (store it now; it is not shown again):")
    print(secret)


@keys_app.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    from api.keys.repository import list_keys as stored

    keys = _on_database(_settings(), stored)
    table = Table("id", "name", "role", "starts with", "created", "expires", "last used", "revoked")
    for k in keys:
        table.add_row(
            str(k.key_id),
            k.name,
            k.role.value,
            k.prefix + "…",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "never",
            f"{k.last_used_at:%Y-%m-%d %H:%M} from {k.last_used_from or '?'}"
            if k.last_used_at
            else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
    Console().print(table)


@keys_app.command("audit")
def audit(
    key_id: Annotated[int | None, typer.Option("--key", help="One key's events.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 200,
) -> None:
    """Creations, uses (once an hour per key and address) and revocations, newest first."""
    from api.keys.repository import events

    rows = _on_database(_settings(), lambda conn: events(conn, key_id=key_id, limit=limit))
    table = Table("key", "at", "event", "by", "from")
    for e in rows:
        table.add_row(
            str(e.key_id), f"{e.at:%Y-%m-%d %H:%M:%S}", e.event, e.actor or "-", e.address or "-"
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[int, typer.Argument(help="The key's id (see keys list).")]) -> None:
    """Revoke a key: requests with it get 401 from now on (within FOREWARN_API_KEY_CACHE_SECONDS
    in a running API)."""
    from api.keys.repository import revoke as revoke_key

    def work(conn: Conn) -> bool:
        done = revoke_key(conn, key_id=key_id, actor="command line")
        conn.commit()
        return done

    with _reported():
        if not _on_database(_settings(), work):
            err.print(f"[red]error:[/red] no active key {key_id}")
            raise typer.Exit(1)
    err.print(f"key {key_id} revoked")
