"""The support KPIs: the customer's targets, the figures SQL returns, and the report built from
them. Every value is None when there is nothing to measure, never a made-up 0."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class Direction(enum.StrEnum):
    """Which side of its target a KPI should be on."""

    AT_MOST = "at_most"
    AT_LEAST = "at_least"


@dataclass(frozen=True, slots=True)
class Target:
    """A customer's target: a value, the side of it that passes, and where it comes from."""

    value: float
    direction: Direction
    source: str

    def met_by(self, value: float | None) -> bool | None:
        """Whether `value` meets the target (None: nothing was measured)."""
        if value is None:
            return None
        return value <= self.value if self.direction is Direction.AT_MOST else value >= self.value


# The customer's targets, quoted from PRODUCT.md "What the customer measures" and, where it
# has none, from the standards it distils (shared/seeds/, the authority).
FIRST_RESPONSE_TARGET = Target(
    timedelta(minutes=30).total_seconds(),
    Direction.AT_MOST,
    "PRODUCT.md: Average first response time ≤ 30 min",
)
FCR_TARGET = Target(0.80, Direction.AT_LEAST, "PRODUCT.md: First-contact resolution (FCR) ≥ 80%")
RECURRENCE_TARGET = Target(
    0.05,
    Direction.AT_MOST,
    "PRODUCT.md: Recurrence: the same problem on the same device within 30 days ≤ 5%",
)
RECURRENCE_WINDOW = timedelta(days=30)  # the "within 30 days" of that same line
SELF_SERVICE_TARGET = Target(
    0.70,
    Direction.AT_LEAST,
    "PRODUCT.md: Share of problems solved by self-service or automation ≥ 70%",
)
SATISFACTION_TARGET = Target(
    4.5,
    Direction.AT_LEAST,
    "PRODUCT.md: Customer satisfaction ≥ 4.5 / 5 (standards manual 4.1: CSAT by follow-up)",
)
SURVEY_RESPONSE_TARGET = Target(
    0.90,
    Direction.AT_LEAST,
    "Service improvement plan: feedback collection rate ≥ 90% (survey response rate)",
)
ONBOARDING_TARGET = Target(
    1.0,
    Direction.AT_LEAST,
    "Service improvement plan: novice onboarding guidance rate 100%",
)
NOVICE_DAYS = 30  # PRODUCT.md: a novice has owned the device ≤ 1 month


@dataclass(frozen=True, slots=True)
class Ratio:
    """numerator / denominator, with `pending` in scope but not yet decided (left out)."""

    numerator: int
    denominator: int
    pending: int = 0
    target: Target | None = None

    @property
    def value(self) -> float | None:
        """The share, from 0 to 1; None when the denominator is 0."""
        return self.numerator / self.denominator if self.denominator else None

    @property
    def meets_target(self) -> bool | None:
        """Whether the share meets the target (None: no target, or nothing measured)."""
        return None if self.target is None else self.target.met_by(self.value)


@dataclass(frozen=True, slots=True)
class Mean:
    """A mean duration: `total_seconds` over `count` items, `pending` ones not yet measurable."""

    total_seconds: float
    count: int
    pending: int = 0
    target: Target | None = None

    @property
    def value(self) -> float | None:
        """The mean in seconds; None when nothing was measured."""
        return self.total_seconds / self.count if self.count else None

    @property
    def meets_target(self) -> bool | None:
        """Whether the mean meets the target (None: no target, or nothing measured)."""
        return None if self.target is None else self.target.met_by(self.value)


@dataclass(frozen=True, slots=True)
class Average:
    """A mean score: `total` over `count` answers, `pending` ones not given yet."""

    total: float
    count: int
    pending: int = 0
    target: Target | None = None

    @property
    def value(self) -> float | None:
        """The mean; None when nothing was answered."""
        return self.total / self.count if self.count else None

    @property
    def meets_target(self) -> bool | None:
        """Whether the mean meets the target (None: no target, or nothing measured)."""
        return None if self.target is None else self.target.met_by(self.value)


@dataclass(frozen=True, slots=True)
class Period:
    """[since, until), both timezone-aware, since strictly before until."""

    since: datetime
    until: datetime


# What the repository returns: raw counts for one period, straight from SQL.


@dataclass(frozen=True, slots=True)
class OpenedTickets:
    """Tickets opened in the period: first responses and staff feedback."""

    opened: int
    responded: int
    response_seconds: float
    feedback: int
    false_alarms: int


@dataclass(frozen=True, slots=True)
class ResolvedTickets:
    """Tickets resolved in the period."""

    resolved: int
    resolve_seconds: float
    first_line: int  # of them, opened at L1
    first_contact: int  # of those, never escalated and never reopened


@dataclass(frozen=True, slots=True)
class SurveyCounts:
    """Surveys of resolutions in the period (not cancelled by a reopen)."""

    sent: int
    answered: int
    known: int  # answered, or past their answer time
    rating_total: int
    rated: int
    fixed: int  # answered "fixed"
    fixed_known: int  # answered yes or no


@dataclass(frozen=True, slots=True)
class OnboardingCounts:
    """Novice owners' product kinds first reported in the period, and their onboarding."""

    novices: int
    sent: int
    pending: int  # queued, not sent yet


@dataclass(frozen=True, slots=True)
class SlaCounts:
    """One priority's tickets opened in the period, against their two dues."""

    priority: str
    opened: int
    response_met: int
    response_known: int
    resolution_met: int
    resolution_known: int


@dataclass(frozen=True, slots=True)
class IncidentCounts:
    """Incidents (predicted faults) opened in the period."""

    opened: int
    recurrences: int
    closed: int
    self_served: int


@dataclass(frozen=True, slots=True)
class GuideCounts:
    """Guides queued to owners in the period, by where their delivery stands."""

    sent: int
    final: int  # sent, failed or interrupted
    pending: int  # pending or sending


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """One bucket of the series, as SQL counts it."""

    start: datetime
    opened: int
    resolved: int
    responded: int
    response_seconds: float
    sla_met: int
    sla_known: int
    guides_sent: int


# What the flows return.


@dataclass(frozen=True, slots=True)
class SlaCompliance:
    """One priority's SLA compliance: first response and resolution on time."""

    priority: str
    first_response: Ratio
    resolution: Ratio


@dataclass(frozen=True, slots=True)
class KpiReport:
    """Every support KPI for [since, until), as known at `now`."""

    since: datetime
    until: datetime
    now: datetime
    first_response: Mean
    first_contact_resolution: Ratio
    time_to_resolve: Mean
    sla: tuple[SlaCompliance, ...]
    recurrence: Ratio
    self_service: Ratio
    false_alarms: Ratio
    guide_delivery: Ratio
    satisfaction: Average
    survey_response: Ratio
    confirmed_fix: Ratio
    onboarding: Ratio


class Bucket(enum.StrEnum):
    """The width of a series' buckets."""

    HOUR = "hour"
    DAY = "day"

    @property
    def width(self) -> timedelta:
        """The bucket's length."""
        return timedelta(hours=1) if self is Bucket.HOUR else timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of the chart series, starting at `start` (UTC-aligned)."""

    start: datetime
    tickets_opened: int
    tickets_resolved: int
    first_response: Mean
    sla_met: Ratio
    guides_sent: int


@dataclass(frozen=True, slots=True)
class KpiSeries:
    """The chart series for [since, until) in buckets of one width."""

    since: datetime
    until: datetime
    bucket: Bucket
    points: tuple[SeriesPoint, ...]


@dataclass(frozen=True, slots=True)
class AgentCounts:
    """What one agent's tickets add up to in a period (see ``repository.agent_counts``)."""

    agent: str
    resolved: int  # volume: tickets they resolved in the period
    resolve_seconds: float
    first_line: int  # of those, opened at L1
    first_contact: int  # of those, never escalated or reopened
    responded: int  # tickets opened in the period they first answered
    response_seconds: float
    rated: int  # survey answers with a rating, of their tickets' resolutions in the period
    rating_total: int


@dataclass(frozen=True, slots=True)
class AgentKpis:
    """One agent's figures (standard 5.3: FCR, response time, satisfaction, volume)."""

    agent: str
    volume: int
    first_contact_resolution: Ratio
    first_response: Mean
    time_to_resolve: Mean
    satisfaction: Average
