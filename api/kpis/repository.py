"""SQL for the support KPIs: counts over tickets, incidents and notifications for a period.

Keyword-only functions; the caller owns the transaction. Periods are [since, until) on the
rows' own business timestamps, and "now" is always passed in, never the database's now():
the demo runs a scaled clock, so only the caller knows what time it is. An event stamped
after `now` (a response, a resolution, a closure) is treated as not having happened yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from api.kpis.types import (
    AgentCounts,
    BucketCounts,
    GuideCounts,
    IncidentCounts,
    OnboardingCounts,
    OpenedTickets,
    Period,
    ResolvedTickets,
    SlaCounts,
    SurveyCounts,
)

Conn = psycopg.Connection[Any]

# Buckets are aligned to UTC hours and days: date_bin needs an origin, and this one makes
# day buckets start at midnight UTC whatever the session's time zone.
BUCKET_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)

# Tickets opened in the period with their two SLA dues judged as known at `now`:
# `*_met` is NULL until there is an answer (an event at or before now), and `*_known` holds
# once there is one or the due has passed without it (a breach).
_CLOCKS = """
clocks AS (
    SELECT priority, opened_at, fr, rs, fb,
           fr <= first_response_due AS fr_met,
           fr IS NOT NULL OR first_response_due < %(now)s AS fr_known,
           rs <= resolution_due AS rs_met,
           rs IS NOT NULL OR resolution_due < %(now)s AS rs_known
    FROM (SELECT priority, opened_at, first_response_due, resolution_due,
                 CASE WHEN first_response_at <= %(now)s THEN first_response_at END AS fr,
                 CASE WHEN resolved_at <= %(now)s THEN resolved_at END AS rs,
                 CASE WHEN feedback_at <= %(now)s THEN feedback END AS fb
          FROM tickets t
          WHERE opened_at >= %(since)s AND opened_at < %(until)s
            AND resolution_code IS DISTINCT FROM 'withdrawn') t
)"""

# Owner notifications that carry a guide (fault guides and onboarding alike).
_GUIDES = "audience = 'owner' AND guide_id IS NOT NULL"


@contextmanager
def snapshot(conn: Conn) -> Iterator[None]:
    """One read-only transaction whose statements all see the database as it was at the first:
    a report's figures then agree with each other while tickets move under it."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _params(period: Period, now: datetime) -> dict[str, Any]:
    return {"since": period.since, "until": period.until, "now": now}


def opened_tickets(conn: Conn, *, period: Period, now: datetime) -> OpenedTickets:
    """First responses and staff feedback on the tickets opened in the period."""
    row = conn.execute(
        f"""WITH {_CLOCKS}
            SELECT count(*), count(fr),
                   coalesce(sum(extract(epoch FROM fr - opened_at)), 0)::float8,
                   count(fb), count(*) FILTER (WHERE fb = 'false_alarm')
            FROM clocks""",
        _params(period, now),
    ).fetchone()
    assert row is not None
    return OpenedTickets(int(row[0]), int(row[1]), float(row[2]), int(row[3]), int(row[4]))


def resolved_tickets(conn: Conn, *, period: Period, now: datetime) -> ResolvedTickets:
    """The tickets resolved in the period (and still resolved or closed: reopening clears
    resolved_at) and their total time to resolve; of them, those opened at L1, and of those,
    the ones L1 resolved (never escalated, never reopened). False alarms and duplicates are
    left out: they had no problem of their own to resolve, and staff resolve them at once,
    which would flatter the figures."""
    row = conn.execute(
        """SELECT count(*),
                  coalesce(sum(extract(epoch FROM resolved_at - opened_at)), 0)::float8,
                  count(*) FILTER (WHERE opened_tier = 'L1'),
                  count(*) FILTER (WHERE opened_tier = 'L1' AND escalations = 0
                                   AND reopened = 0)
           FROM tickets
           WHERE resolved_at >= %(since)s AND resolved_at < %(until)s
             AND resolved_at <= %(now)s
             AND resolution_code IS DISTINCT FROM 'false_alarm'
             AND resolution_code IS DISTINCT FROM 'duplicate'
             AND NOT coalesce(feedback = 'false_alarm' AND feedback_at <= %(now)s, false)""",
        _params(period, now),
    ).fetchone()
    assert row is not None
    return ResolvedTickets(int(row[0]), float(row[1]), int(row[2]), int(row[3]))


def sla_counts(conn: Conn, *, period: Period, now: datetime) -> list[SlaCounts]:
    """Per priority with tickets opened in the period: dues met and dues whose outcome is
    known at `now`."""
    rows = conn.execute(
        f"""WITH {_CLOCKS}
            SELECT priority, count(*),
                   count(*) FILTER (WHERE fr_met), count(*) FILTER (WHERE fr_known),
                   count(*) FILTER (WHERE rs_met), count(*) FILTER (WHERE rs_known)
            FROM clocks GROUP BY priority ORDER BY priority""",
        _params(period, now),
    ).fetchall()
    return [SlaCounts(r[0], *(int(v) for v in r[1:])) for r in rows]


def incident_counts(
    conn: Conn, *, period: Period, now: datetime, recurrence_window: timedelta
) -> IncidentCounts:
    """Incidents opened in the period: recurrences, closed ones, and closed ones the owner's
    guide solved with no ticket, the incident's own or its fleet's."""
    row = conn.execute(
        """WITH i AS (
               SELECT i.*, p.incident_id IS NOT NULL
                          AND p.device_id = i.device_id AND p.fault = i.fault
                          AND p.opened_at >= i.opened_at - %(window)s
                          AND p.opened_at < i.opened_at AS recurrence,
                      i.closed_at <= %(now)s AS closed,
                      f.ticket_id AS fleet_ticket_id,
                      EXISTS (SELECT 1 FROM notifications n
                              WHERE n.incident_id = i.incident_id AND n.audience = 'owner'
                                AND n.guide_id IS NOT NULL AND n.status = 'sent') AS guide_sent
               FROM incidents i
               LEFT JOIN incidents p ON p.incident_id = i.recurrence_of
               LEFT JOIN fleet_incidents f ON f.fleet_incident_id = i.fleet_incident_id
               WHERE i.opened_at >= %(since)s AND i.opened_at < %(until)s
                 AND i.outcome IS DISTINCT FROM 'withdrawn')
           SELECT count(*), count(*) FILTER (WHERE recurrence), count(*) FILTER (WHERE closed),
                  count(*) FILTER (WHERE closed AND outcome = 'recovered_after_guide'
                                   AND ticket_id IS NULL AND fleet_ticket_id IS NULL
                                   AND guide_sent)
           FROM i""",
        _params(period, now) | {"window": recurrence_window},
    ).fetchone()
    assert row is not None
    return IncidentCounts(*(int(v) for v in row))


def guide_counts(conn: Conn, *, period: Period) -> GuideCounts:
    """Guides queued to owners in the period (business time `created_at`), by delivery
    status as it stands: `sent_at` is wall time, so it cannot place a send in the period."""
    row = conn.execute(
        f"""SELECT count(*) FILTER (WHERE status = 'sent'),
                   count(*) FILTER (WHERE status IN ('sent', 'failed', 'interrupted')),
                   count(*) FILTER (WHERE status IN ('pending', 'sending'))
            FROM notifications
            WHERE {_GUIDES} AND created_at >= %(since)s AND created_at < %(until)s""",
        {"since": period.since, "until": period.until},
    ).fetchone()
    assert row is not None
    return GuideCounts(*(int(v) for v in row))


def survey_counts(conn: Conn, *, period: Period, now: datetime) -> SurveyCounts:
    """Surveys of the resolutions in the period (their created_at), as known at `now`: answered
    (on the page or on a call-back), past their answer time, their ratings and fix answers.
    Surveys cancelled by a reopen before now are left out: the resolution they asked about no
    longer stands."""
    row = conn.execute(
        """WITH s AS (
               SELECT s.*, s.answered_at IS NOT NULL AND s.answered_at <= %(now)s AS answered
               FROM surveys s JOIN tickets t USING (ticket_id)
               WHERE s.created_at >= %(since)s AND s.created_at < %(until)s
                 AND s.created_at <= %(now)s
                 AND (s.cancelled_at IS NULL OR s.cancelled_at > %(now)s)
                 AND t.resolution_code IS DISTINCT FROM 'withdrawn')
           SELECT count(*), count(*) FILTER (WHERE answered),
                  count(*) FILTER (WHERE answered OR answer_by <= %(now)s),
                  coalesce(sum(rating) FILTER (WHERE answered), 0),
                  count(rating) FILTER (WHERE answered),
                  count(*) FILTER (WHERE answered AND fixed),
                  count(fixed) FILTER (WHERE answered)
           FROM s""",
        _params(period, now),
    ).fetchone()
    assert row is not None
    return SurveyCounts(*(int(v) for v in row))


def onboarding_counts(
    conn: Conn, *, period: Period, now: datetime, novice_days: int
) -> OnboardingCounts:
    """Consumer owners and product kinds whose first device of that kind first reported in the
    period within `novice_days` of its activation (a novice then), and whether that kind's
    onboarding guide was sent to them (or is still queued)."""
    row = conn.execute(
        """WITH novices AS (
               SELECT d.owner_id, d.kind, min(d.first_seen) AS first_seen
               FROM devices d JOIN owners o USING (owner_id)
               WHERE d.first_seen IS NOT NULL AND d.kind IS NOT NULL
                 AND o.account_type = 'consumer' AND d.activated_at IS NOT NULL
                 AND d.first_seen - d.activated_at <= %(novice)s
               GROUP BY d.owner_id, d.kind),
           n AS (
               SELECT v.*, 'onboarding:' || v.owner_id || ':' || v.kind || ':' AS prefix
               FROM novices v
               WHERE v.first_seen >= %(since)s AND v.first_seen < %(until)s
                 AND v.first_seen <= %(now)s)
           SELECT count(*),
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM notifications x WHERE x.owner_id = n.owner_id
                         AND left(x.key, length(n.prefix)) = n.prefix AND x.status = 'sent')),
                  count(*) FILTER (WHERE NOT EXISTS (
                      SELECT 1 FROM notifications x WHERE x.owner_id = n.owner_id
                         AND left(x.key, length(n.prefix)) = n.prefix AND x.status = 'sent')
                    AND EXISTS (
                      SELECT 1 FROM notifications x WHERE x.owner_id = n.owner_id
                         AND left(x.key, length(n.prefix)) = n.prefix
                         AND x.status IN ('pending', 'sending')))
           FROM n""",
        _params(period, now) | {"novice": timedelta(days=novice_days)},
    ).fetchone()
    assert row is not None
    return OnboardingCounts(*(int(v) for v in row))


def buckets(conn: Conn, *, period: Period, now: datetime, width: timedelta) -> list[BucketCounts]:
    """One row per bucket of `width` overlapping the period, oldest first, empty ones
    included. A ticket's SLA is met when both dues are, known once either is breached."""
    rows = conn.execute(
        f"""WITH {_CLOCKS},
            buckets AS (
                SELECT start FROM generate_series(
                    date_bin(%(width)s, %(since)s, %(origin)s), %(until)s, %(width)s) AS start
                WHERE start < %(until)s),
            opened AS (
                SELECT date_bin(%(width)s, opened_at, %(origin)s) AS start, count(*) AS n,
                       count(fr) AS responded,
                       coalesce(sum(extract(epoch FROM fr - opened_at)), 0)::float8 AS secs,
                       count(*) FILTER (WHERE fr_met AND rs_met) AS met,
                       count(*) FILTER (WHERE (fr_met AND rs_met)
                                        OR (fr_known AND fr_met IS NOT TRUE)
                                        OR (rs_known AND rs_met IS NOT TRUE)) AS known
                FROM clocks GROUP BY 1),
            resolved AS (
                SELECT date_bin(%(width)s, resolved_at, %(origin)s) AS start, count(*) AS n
                FROM tickets
                WHERE resolved_at >= %(since)s AND resolved_at < %(until)s
                  AND resolved_at <= %(now)s
                GROUP BY 1),
            guides AS (
                SELECT date_bin(%(width)s, created_at, %(origin)s) AS start, count(*) AS n
                FROM notifications
                WHERE {_GUIDES} AND status = 'sent'
                  AND created_at >= %(since)s AND created_at < %(until)s
                GROUP BY 1)
            SELECT b.start, coalesce(o.n, 0), coalesce(r.n, 0), coalesce(o.responded, 0),
                   coalesce(o.secs, 0), coalesce(o.met, 0), coalesce(o.known, 0),
                   coalesce(g.n, 0)
            FROM buckets b
            LEFT JOIN opened o USING (start)
            LEFT JOIN resolved r USING (start)
            LEFT JOIN guides g USING (start)
            ORDER BY b.start""",
        _params(period, now) | {"width": width, "origin": BUCKET_ORIGIN},
    ).fetchall()
    return [
        BucketCounts(
            r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4]), int(r[5]), int(r[6]), int(r[7])
        )
        for r in rows
    ]


def agent_counts(conn: Conn, *, period: Period, now: datetime) -> list[AgentCounts]:
    """Per agent (a ticket's assignee: whoever first took it up or contacted the owner, unless
    it was reassigned), the same counts as the team's KPIs, restricted to their tickets:
    tickets they resolved in the period (FCR and time to resolve, false alarms and duplicates
    left out), tickets opened in the period they answered (first response), and the ratings
    of their resolutions' surveys. Agents by name."""
    rows = conn.execute(
        """WITH resolved AS (
               SELECT assignee AS agent, count(*) AS resolved,
                      coalesce(sum(extract(epoch FROM resolved_at - opened_at)), 0)::float8
                          AS resolve_s,
                      count(*) FILTER (WHERE opened_tier = 'L1') AS first_line,
                      count(*) FILTER (WHERE opened_tier = 'L1' AND escalations = 0
                                       AND reopened = 0) AS first_contact
               FROM tickets
               WHERE resolved_at >= %(since)s AND resolved_at < %(until)s
                 AND resolved_at <= %(now)s AND assignee IS NOT NULL
                 AND resolution_code IS DISTINCT FROM 'false_alarm'
                 AND resolution_code IS DISTINCT FROM 'duplicate'
                 AND resolution_code IS DISTINCT FROM 'withdrawn'
                 AND NOT coalesce(feedback = 'false_alarm' AND feedback_at <= %(now)s, false)
               GROUP BY assignee),
           responded AS (
               SELECT assignee AS agent, count(*) AS responded,
                      sum(extract(epoch FROM first_response_at - opened_at))::float8
                          AS response_s
               FROM tickets
               WHERE opened_at >= %(since)s AND opened_at < %(until)s
                 AND first_response_at <= %(now)s AND assignee IS NOT NULL
                 AND resolution_code IS DISTINCT FROM 'withdrawn'
               GROUP BY assignee),
           rated AS (
               SELECT t.assignee AS agent, count(s.rating) AS rated,
                      coalesce(sum(s.rating), 0) AS rating_total
               FROM surveys s JOIN tickets t USING (ticket_id)
               WHERE s.created_at >= %(since)s AND s.created_at < %(until)s
                 AND s.created_at <= %(now)s AND s.answered_at <= %(now)s
                 AND (s.cancelled_at IS NULL OR s.cancelled_at > %(now)s)
                 AND t.resolution_code IS DISTINCT FROM 'withdrawn' AND t.assignee IS NOT NULL
               GROUP BY t.assignee),
           agents AS (SELECT agent FROM resolved UNION SELECT agent FROM responded
                      UNION SELECT agent FROM rated)
           SELECT a.agent, coalesce(r.resolved, 0), coalesce(r.resolve_s, 0),
                  coalesce(r.first_line, 0), coalesce(r.first_contact, 0),
                  coalesce(p.responded, 0), coalesce(p.response_s, 0),
                  coalesce(q.rated, 0), coalesce(q.rating_total, 0)
           FROM agents a LEFT JOIN resolved r USING (agent) LEFT JOIN responded p USING (agent)
                LEFT JOIN rated q USING (agent)
           ORDER BY a.agent""",
        _params(period, now),
    ).fetchall()
    return [
        AgentCounts(
            r[0],
            int(r[1]),
            float(r[2]),
            int(r[3]),
            int(r[4]),
            int(r[5]),
            float(r[6]),
            int(r[7]),
            int(r[8]),
        )
        for r in rows
    ]
