"""SQL for the knowledge base. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg

from notifier.guides.types import Guide, GuideVector

Conn = psycopg.Connection[Any]

_COLUMNS = (
    "guide_id, locale, category, fault, audience, kinds, models, firmware_min, firmware_max, "
    "title, problem, scenario, steps, cautions, source_path, sha256, updated_at, phrases"
)

# A file whose bytes did not change (same sha256) leaves its row, and updated_at, alone.
_UPSERT = f"""
INSERT INTO guides ({_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s)
ON CONFLICT (guide_id, locale) DO UPDATE SET
    category = excluded.category, fault = excluded.fault, audience = excluded.audience,
    kinds = excluded.kinds, models = excluded.models,
    firmware_min = excluded.firmware_min, firmware_max = excluded.firmware_max,
    title = excluded.title, problem = excluded.problem, scenario = excluded.scenario,
    steps = excluded.steps, cautions = excluded.cautions, phrases = excluded.phrases,
    source_path = excluded.source_path, sha256 = excluded.sha256, updated_at = now()
WHERE guides.sha256 IS DISTINCT FROM excluded.sha256
"""


_INSERT = f"""
INSERT INTO guides ({_COLUMNS})
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s)
ON CONFLICT (guide_id, locale) DO NOTHING
"""

# Matches the row whether or not the content changed (so 0 rows means "no such guide"), but
# moves updated_at only when it did, as loading a file does.
_UPDATE = """
UPDATE guides SET
    category = %s, fault = %s, audience = %s, kinds = %s, models = %s,
    firmware_min = %s, firmware_max = %s, title = %s, problem = %s, scenario = %s,
    steps = %s, cautions = %s, source_path = %s, sha256 = %s, phrases = %s,
    updated_at = CASE WHEN sha256 IS DISTINCT FROM %s THEN now() ELSE updated_at END
WHERE guide_id = %s AND locale = %s
"""


def upsert_guides(conn: Conn, *, guides: Sequence[Guide]) -> int:
    """Insert or update guides; returns rows changed (a guide with the same sha256 is skipped)."""
    changed = 0
    with conn.cursor() as cur:
        for g in guides:
            cur.execute(_UPSERT, _params(g))
            changed += max(cur.rowcount, 0)
    return changed


def insert_guide(conn: Conn, *, guide: Guide) -> bool:
    """Insert a new guide; False (and nothing written) when its id and locale already exist."""
    return conn.execute(_INSERT, _params(guide)).rowcount == 1


def update_guide(conn: Conn, *, guide: Guide) -> bool:
    """Replace an existing guide's content; False when there is no such guide and locale."""
    params = _params(guide)
    cur = conn.execute(_UPDATE, (*params[2:], guide.sha256, guide.guide_id, guide.locale))
    return cur.rowcount == 1


def list_guides(
    conn: Conn, *, fault: str | None = None, locale: str | None = None, category: str | None = None
) -> list[Guide]:
    """Guides by id and locale, keeping those with this fault, locale and category (None: any)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM guides WHERE (%(fault)s::text IS NULL OR fault = %(fault)s) "
        "AND (%(locale)s::text IS NULL OR locale = %(locale)s) "
        "AND (%(category)s::text IS NULL OR category = %(category)s) "
        "ORDER BY guide_id, locale",
        {"fault": fault, "locale": locale, "category": category},
    ).fetchall()
    return [_guide(row) for row in rows]


def unindexed_guides(conn: Conn, *, model: str) -> list[Guide]:
    """Guides with no embedding by this model for their current text (sha256), by id and locale."""
    columns = ", ".join(f"g.{c.strip()}" for c in _COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {columns} FROM guides g LEFT JOIN guide_embeddings e "
        "ON e.guide_id = g.guide_id AND e.locale = g.locale "
        "AND e.model = %s AND e.sha256 = g.sha256 "
        "WHERE e.guide_id IS NULL ORDER BY g.guide_id, g.locale",
        (model,),
    ).fetchall()
    return [_guide(row) for row in rows]


def upsert_embeddings(conn: Conn, *, vectors: Sequence[GuideVector]) -> int:
    """Store embeddings, replacing a guide and locale's previous one; returns rows written."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO guide_embeddings (guide_id, locale, model, sha256, vector) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (guide_id, locale) DO UPDATE SET "
            "model = excluded.model, sha256 = excluded.sha256, vector = excluded.vector",
            [(v.guide_id, v.locale, v.model, v.sha256, v.vector.tolist()) for v in vectors],
        )
    return len(vectors)


def embeddings(conn: Conn, *, model: str) -> list[GuideVector]:
    """This model's embeddings of the guides' current texts (an outdated vector is left out)."""
    rows = conn.execute(
        "SELECT e.guide_id, e.locale, e.model, e.sha256, e.vector FROM guide_embeddings e "
        "JOIN guides g ON g.guide_id = e.guide_id AND g.locale = e.locale "
        "AND g.sha256 = e.sha256 WHERE e.model = %s ORDER BY e.guide_id, e.locale",
        (model,),
    ).fetchall()
    return [
        GuideVector(row[0], row[1], row[2], row[3], np.asarray(row[4], dtype=np.float32))
        for row in rows
    ]


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


def _params(g: Guide) -> tuple[object, ...]:
    """A guide's values in ``_COLUMNS`` order, updated_at left out (the database sets it)."""
    return (
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
        list(g.phrases),
    )


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
        phrases=tuple(row[17]),
    )
