"""What every ``forewarn`` command shares: settings built once, errors reported clearly,
a stop event set by signals, a connection for one-shot work."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import typer
from rich.console import Console

from forewarn.errors import ForewarnError
from forewarn.settings import Settings

err = Console(stderr=True)
T = TypeVar("T")
Conn = psycopg.Connection[tuple[object, ...]]


def _settings() -> Settings:
    """The settings from the environment; the keys that encrypt notification targets are
    installed for the process (forewarn/vault.py)."""
    from forewarn.vault import install

    try:
        settings = Settings()
    except Exception as exc:  # pydantic's message names the variable and the problem
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    install(settings)
    return settings


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """A ForewarnError becomes one clear line on stderr and exit status 1."""
    try:
        yield
    except ForewarnError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _on_database(settings: Settings, work: Callable[[Conn], T]) -> T:
    """Run ``work`` on a fresh connection, reporting Forewarn's errors clearly."""
    from forewarn.db import connect

    with _reported(), connect(settings) as conn:
        return work(conn)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so services stop cleanly instead of dying."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _log_info() -> None:
    """Log lines with times, from INFO up: what long-running services print."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
