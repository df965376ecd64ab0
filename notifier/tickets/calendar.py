"""The holiday calendar of the SLA clocks: announced holidays during which the clocks of the
priorities it names stand still, so a due that would fall in or after a holiday moves on by
the holiday time it spans. Pure; the rule set's ``calendar`` section builds one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notifier.tickets.types import Priority


@dataclass(frozen=True, slots=True)
class Holiday:
    """Whole local days, `first` to `last` inclusive, announced to customers in advance."""

    name: str
    first: date
    last: date


@dataclass(frozen=True, slots=True)
class Calendar:
    """Holidays in a time zone, and the priorities whose clocks stop during them.

    The standard lets SLA targets be adjusted for holidays when customers are told in
    advance; critical issues are not left waiting, so by default only P2 and P3 pause.
    """

    timezone: str = "UTC"
    holidays: tuple[Holiday, ...] = ()
    pauses: frozenset[Priority] = frozenset({Priority.MAJOR, Priority.MINOR})

    def spans(self) -> list[tuple[datetime, datetime]]:
        """The holidays as [start, end) instants, in order."""
        zone = ZoneInfo(self.timezone)
        return sorted(
            (
                datetime.combine(h.first, time(), zone),
                datetime.combine(h.last + timedelta(days=1), time(), zone),
            )
            for h in self.holidays
        )

    def add(self, start: datetime, span: timedelta, priority: Priority) -> datetime:
        """`start` plus `span` of working time: holiday time does not count for `priority`."""
        if priority not in self.pauses or not self.holidays:
            return start + span
        at, left = start, span
        for begin, end in self.spans():
            if end <= at:
                continue
            if begin > at:
                if at + left <= begin:
                    return at + left
                left -= begin - at
            at = end  # the clock stands still until the holiday is over
        return at + left
