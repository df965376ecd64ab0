"""``forewarn secrets`` (the keys that encrypt notification targets) and ``forewarn owners
forget``: the commands of docs/security.md."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import Conn, _on_database, _settings, err

secrets_app = typer.Typer(no_args_is_help=True, help="Keys that encrypt notification targets.")
owners_app = typer.Typer(no_args_is_help=True, help="Owners' personal data.")


def register(app: typer.Typer) -> None:
    """Add these commands to the main ``forewarn`` command."""
    app.add_typer(secrets_app, name="secrets")
    app.add_typer(owners_app, name="owners")


@secrets_app.command("new-key")
def new_key() -> None:
    """Print a new key for FOREWARN_TARGET_KEYS (put it first to rotate, then run rotate)."""
    from forewarn.vault import new_key as make

    print(make())


@secrets_app.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored notification target (owners' and the outbox's) with the first
    key of FOREWARN_TARGET_KEYS; targets stored in clear are encrypted too. Afterwards the
    older keys can be removed."""
    from forewarn.vault import current
    from notifier.repository import reseal_targets as outbox_targets
    from registry.repository import reseal_targets as owner_targets

    settings = _settings()
    vault = current()
    if not vault.encrypting:
        err.print("[red]error:[/red] FOREWARN_TARGET_KEYS is not set: nothing to encrypt with")
        raise typer.Exit(2)

    def work(conn: Conn) -> tuple[int, int]:
        with conn.transaction():
            return (
                owner_targets(conn, reseal=vault.reseal),
                outbox_targets(conn, reseal=vault.reseal),
            )

    owners, rows = _on_database(settings, work)
    typer.echo(f"re-encrypted with the first key: {owners} owners' targets, {rows} outbox rows")


@owners_app.command("forget")
def forget(
    owner_id: Annotated[str, typer.Argument(help="The owner's id.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do it (without: say what would change).")
    ] = False,
) -> None:
    """Erase an owner's personal data everywhere Forewarn copied it (the owner's row, their
    tickets' contact and evidence, timelines' words, notification bodies and addresses,
    replies, survey comments), say what changed, and cancel what was still to be sent."""
    from notifier.privacy import forget_owner as forget_copies
    from registry.repository import forget_owner

    def work(conn: Conn) -> dict[str, int] | None:
        with conn.transaction(force_rollback=not yes):
            if not forget_owner(conn, owner_id=owner_id):
                return None
            return {"owners": 1} | forget_copies(conn, owner_id=owner_id)

    changed = _on_database(_settings(), work)
    if changed is None:
        err.print(f"[red]error:[/red] no owner {owner_id!r}")
        raise typer.Exit(1)
    verb = "changed" if yes else "would change (dry run; --yes to erase)"
    typer.echo(f"owner {owner_id}: rows {verb}:")
    for table, n in changed.items():
        typer.echo(f"  {table}: {n}")
