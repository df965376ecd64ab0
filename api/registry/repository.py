"""SQL the registry API reads itself: dead letters (owners and devices are read through the
registry's own repository)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

Conn = psycopg.Connection[tuple[Any, ...]]

# A reason's kind: its words before the first quote, digit or colon ("unknown device",
# "reading stamped", "device", "payload of", "forewarn/v1"...).
_KIND = r"btrim(regexp_replace(reason, '[''0-9:].*$', ''))"


def dead_letters(
    conn: Conn, *, reason: str | None, limit: int, offset: int
) -> tuple[int, dict[str, int], list[dict[str, Any]]]:
    """(how many match, counts by kind of reason, one page newest first) of dead letters
    whose reason starts with `reason` (all when None)."""
    args: dict[str, Any] = {
        "prefix": (reason or "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        + "%",
        "limit": limit,
        "offset": offset,
    }
    kinds = {
        str(k): int(n)
        for k, n in conn.execute(
            f"SELECT {_KIND}, count(*) FROM dead_letters WHERE reason LIKE %(prefix)s GROUP BY 1",
            args,
        ).fetchall()
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT id, topic, reason, received_at, payload_bytes, payload_sha256,
                      substring(payload FROM 1 FOR 256) AS head
               FROM dead_letters WHERE reason LIKE %(prefix)s
               ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            args,
        ).fetchall()
    return sum(kinds.values()), kinds, rows
