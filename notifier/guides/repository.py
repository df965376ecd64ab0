"""SQL for the knowledge base. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from notifier.guides.types import Guide

Conn = psycopg.Connection[Any]

_COLUMNS = (
    "guide_id, locale, category, fault, audience, kinds, models, firmware_min, firmware_max, "
    "title, problem, scenario, steps, cautions, source_path, sha256, updated_at"
)

# A file whose bytes did not change (same sha256) leaves its row, and updated_at, alone.
_UPSERT = f"""
INSERT INTO guides ({_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (guide_id, locale) DO UPDATE SET
    category = excluded.category, fault = excluded.fault, audience = excluded.audience,
    kinds = excluded.kinds, models = excluded.models,
    firmware_min = excluded.firmware_min, firmware_max = excluded.firmware_max,
    title = excluded.title, problem = excluded.problem, scenario = excluded.scenario,
    steps = excluded.steps, cautions = excluded.cautions,
    source_path = excluded.source_path, sha256 = excluded.sha256, updated_at = now()
WHERE guides.sha256 IS DISTINCT FROM excluded.sha256
"""


def upsert_guides(conn: Conn, *, guides: Sequence[Guide]) -> int:
    """Insert or update guides; returns rows changed (a guide with the same sha256 is skipped)."""
    changed = 0
    with conn.cursor() as cur:
        for g in guides:
            cur.execute(
                _UPSERT,
                (
                    g.guide_id,
                    g.locale,
                    g.category,
                    g.fault,
                    g.audience,
                    list(g.kinds),
                    list(g.models),
                    g.firmware_min,
                    g.firmware_max,
                    g.title,
                    g.problem,
                    g.scenario,
                    list(g.steps),
                    list(g.cautions),
                    g.source_path,
                    g.sha256,
                ),
            )
            changed += max(cur.rowcount, 0)
    return changed


def guides_for(conn: Conn, *, fault: str | None) -> list[Guide]:
    """Every guide (all locales) about this fault; fault None: the guides about no fault."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM guides WHERE fault IS NOT DISTINCT FROM %s "
        "ORDER BY guide_id, locale",
        (fault,),
    ).fetchall()
    return [_guide(row) for row in rows]


def all_guides(conn: Conn) -> list[Guide]:
    """Every guide in every locale, by id and locale."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM guides ORDER BY guide_id, locale").fetchall()
    return [_guide(row) for row in rows]


def guide(conn: Conn, *, guide_id: str, locale: str) -> Guide | None:
    """One guide in one locale, or None when there is no such row."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM guides WHERE guide_id = %s AND locale = %s", (guide_id, locale)
    ).fetchone()
    return None if row is None else _guide(row)


def _guide(row: Sequence[Any]) -> Guide:
    return Guide(
        guide_id=row[0],
        locale=row[1],
        category=row[2],
        fault=row[3],
        audience=row[4],
        kinds=tuple(row[5]),
        models=tuple(row[6]),
        firmware_min=row[7],
        firmware_max=row[8],
        title=row[9],
        problem=row[10],
        scenario=row[11],
        steps=tuple(row[12]),
        cautions=tuple(row[13]),
        source_path=row[14],
        sha256=row[15],
        updated_at=row[16],
    )
