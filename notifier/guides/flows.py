"""Knowledge-base orchestration: load the guide files into the database, find a device's guide."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notifier.guides import repository
from notifier.guides.markdown import read_directory
from notifier.guides.repository import Conn
from notifier.guides.select import choose, onboarding
from notifier.guides.types import Guide


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What loading a folder of guides did."""

    files: int
    upserted: int  # rows inserted or changed
    unchanged: int  # rows whose file had the same sha256 as the stored one


def default_directory() -> Path:
    """The repository's ``guides/`` folder (next to the ``notifier`` package)."""
    return Path(__file__).resolve().parents[2] / "guides"


def load_directory(conn: Conn, directory: Path) -> LoadReport:
    """Parse every guide in the folder (all or nothing) and upsert them in one transaction."""
    guides = read_directory(directory)
    with conn.transaction():
        upserted = repository.upsert_guides(conn, guides=guides)
    return LoadReport(files=len(guides), upserted=upserted, unchanged=len(guides) - upserted)


def guide_for(
    conn: Conn,
    *,
    fault: str | None,
    kind: str | None,
    model: str | None,
    firmware: str | None,
    locale: str,
    audience: str = "all",
) -> Guide | None:
    """The stored guide that best fits this fault and device (see ``select.choose``)."""
    return choose(
        repository.guides_for(conn, fault=fault),
        fault=fault,
        kind=kind,
        model=model,
        firmware=firmware,
        locale=locale,
        audience=audience,
    )


def onboarding_for(conn: Conn, *, kind: str | None, locale: str) -> Guide | None:
    """The stored novices' onboarding guide for a kind of product (see ``select.onboarding``)."""
    return onboarding(repository.guides_for(conn, fault=None), kind=kind, locale=locale)
