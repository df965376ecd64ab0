"""SQL for the versions of guides (``guide_versions``). Keyword-only functions; the caller
owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from notifier.guides.repository import Conn
from notifier.guides.types import GuideVersion, VersionState

_COLUMNS = (
    "version_id, guide_id, locale, version, state, content, sha256, diff, editor, edited_at, "
    "submitted_by, submitted_at, reviewer, reviewed_at, note"
)
_OPEN = ("draft", "in_review")


def insert(
    conn: Conn,
    *,
    guide_id: str,
    locale: str,
    content: Mapping[str, Any],
    sha256: str,
    diff: str,
    editor: str,
    at: datetime,
) -> GuideVersion:
    """A new draft, numbered after the guide's last version."""
    row = conn.execute(
        f"""INSERT INTO guide_versions (guide_id, locale, version, state, content, sha256, diff,
                                        editor, edited_at)
            SELECT %(id)s, %(locale)s, coalesce(max(version), 0) + 1, 'draft', %(content)s,
                   %(sha)s, %(diff)s, %(editor)s, %(at)s
            FROM guide_versions WHERE guide_id = %(id)s AND locale = %(locale)s
            RETURNING {_COLUMNS}""",
        {
            "id": guide_id,
            "locale": locale,
            "content": Jsonb(dict(content)),
            "sha": sha256,
            "diff": diff,
            "editor": editor,
            "at": at,
        },
    ).fetchone()
    assert row is not None
    return _version(row)


def open_version(conn: Conn, *, guide_id: str, locale: str) -> GuideVersion | None:
    """The guide's draft or version in review, if it has one (locked until the transaction
    ends, so two reviewers cannot publish it twice)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM guide_versions WHERE guide_id = %s AND locale = %s "
        "AND state = ANY(%s) ORDER BY version DESC LIMIT 1 FOR UPDATE",
        (guide_id, locale, list(_OPEN)),
    ).fetchone()
    return None if row is None else _version(row)


def supersede(conn: Conn, *, guide_id: str, locale: str, states: Sequence[VersionState]) -> int:
    """Mark the guide's versions in `states` superseded; returns how many."""
    return conn.execute(
        "UPDATE guide_versions SET state = 'superseded' "
        "WHERE guide_id = %s AND locale = %s AND state = ANY(%s)",
        (guide_id, locale, [s.value for s in states]),
    ).rowcount


def submit(conn: Conn, *, version_id: int, actor: str, at: datetime) -> GuideVersion:
    """A draft sent for review."""
    row = conn.execute(
        f"UPDATE guide_versions SET state = 'in_review', submitted_by = %s, submitted_at = %s "
        f"WHERE version_id = %s RETURNING {_COLUMNS}",
        (actor, at, version_id),
    ).fetchone()
    assert row is not None
    return _version(row)


def review(
    conn: Conn,
    *,
    version_id: int,
    state: VersionState,
    reviewer: str,
    at: datetime,
    note: str | None,
) -> GuideVersion:
    """A version in review published or rejected by `reviewer`."""
    row = conn.execute(
        f"UPDATE guide_versions SET state = %s, reviewer = %s, reviewed_at = %s, note = %s "
        f"WHERE version_id = %s RETURNING {_COLUMNS}",
        (state.value, reviewer, at, note, version_id),
    ).fetchone()
    assert row is not None
    return _version(row)


def history(conn: Conn, *, guide_id: str, locale: str) -> list[GuideVersion]:
    """Every version of a guide in one locale, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM guide_versions WHERE guide_id = %s AND locale = %s "
        "ORDER BY version DESC",
        (guide_id, locale),
    ).fetchall()
    return [_version(r) for r in rows]


def _version(row: Sequence[Any]) -> GuideVersion:
    return GuideVersion(
        version_id=row[0],
        guide_id=row[1],
        locale=row[2],
        version=row[3],
        state=VersionState(row[4]),
        content=row[5],
        sha256=row[6],
        diff=row[7],
        editor=row[8],
        edited_at=row[9],
        submitted_by=row[10],
        submitted_at=row[11],
        reviewer=row[12],
        reviewed_at=row[13],
        note=row[14],
    )
