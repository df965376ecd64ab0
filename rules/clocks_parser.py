"""The clock sections of a rule set: the tier table (each tier's own times and the priorities
that start at it) and the holiday calendar. Part of ``rules.parser``; every problem is a
``RuleError`` at the line of the offending key or value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.nodes import MappingNode, Node, ScalarNode

from notifier.tickets.calendar import Calendar, Holiday
from notifier.tickets.types import Priority, Tier, TierTimes, default_tiers

if TYPE_CHECKING:
    from rules.parser import RuleParser
    from rules.types import Rule

PRIORITIES = tuple(priority.value for priority in Priority)
TIER_KEYS = ("respond", "solve", "takes")
L1_KEYS = ("solve", "takes")  # L1 responds within the priority's first response
CALENDAR_KEYS = ("timezone", "pause", "holidays")
HOLIDAY_KEYS = ("name", "from", "to")
# A holiday longer than this is more likely a typo in a year than an announced closure.
MAX_HOLIDAY_DAYS = 31


def tiers(p: RuleParser, node: Node) -> Mapping[Tier, TierTimes]:
    """The tier table; a tier or key left out keeps the manual's. P1 starts at L3 only, as
    the standard assigns first-level (critical) issues to L3."""
    table = dict(default_tiers())
    found = p.fields(node, tuple(t.value for t in Tier), name="tiers")
    where: dict[Tier, Node] = {}
    for key, (key_node, entry) in found.items():
        tier = Tier(key)
        where[tier] = key_node
        table[tier] = _tier(p, tier, entry, table[tier])
    for tier in (Tier.L1, Tier.L2):
        if Priority.CRITICAL in table[tier].takes:
            p.fail(
                where.get(tier, node),
                f"tiers.{tier}.takes: critical (P1) issues start at L3, as the standard assigns "
                "them to the product experts; remove critical here",
            )
    if Priority.CRITICAL not in table[Tier.L3].takes:
        p.fail(where.get(Tier.L3, node), "tiers.L3.takes must include critical (P1 starts at L3)")
    return table


def _tier(p: RuleParser, tier: Tier, node: Node, default: TierTimes) -> TierTimes:
    name = f"tiers.{tier}"
    if tier is Tier.L1 and isinstance(node, MappingNode):
        for key, _ in node.value:
            if isinstance(key, ScalarNode) and key.value == "respond":
                p.fail(
                    key,
                    f"{name}: L1 responds within the sla table's first_response; "
                    "set its own time with solve (and takes), not respond",
                )
    found = p.fields(node, L1_KEYS if tier is Tier.L1 else TIER_KEYS, name=name)
    respond, solve, takes = default.respond, default.solve, default.takes
    if "respond" in found:
        respond = p.duration(found["respond"][1], f"{name}.respond")
    if "solve" in found:
        solve = p.duration(found["solve"][1], f"{name}.solve")
    if "takes" in found:
        chosen = p.choices(found["takes"][1], PRIORITIES, "priority", f"{name}.takes")
        takes = frozenset(Priority(v) for v in chosen)
    if respond is not None and respond >= solve:
        at = found.get("respond", found.get("solve", (node, node)))[1]
        p.fail(
            at,
            f"{name}.respond ({_text(respond)}) must be shorter than its solve ({_text(solve)})",
        )
    return TierTimes(respond, solve, takes)


def check_rules(p: RuleParser, rules: Sequence[Rule], table: Mapping[Tier, TierTimes]) -> None:
    """Every rule that opens tickets starts them at a tier that takes their priority."""
    from rules.types import Action  # the rule vocabulary sits above this module's imports

    for rule in rules:
        if rule.action in (Action.IGNORE, Action.GUIDE):
            continue
        takes = table[rule.tier].takes
        if rule.priority not in takes:
            accepted = ", ".join(x.value for x in Priority if x in takes)
            p.fail(
                rule.line,
                f'rule "{rule.name}": tier {rule.tier} does not take {rule.priority} '
                f"({rule.priority.label}) tickets (tiers.{rule.tier}.takes: {accepted})",
            )


def calendar(p: RuleParser, node: Node) -> Calendar:
    """Announced holidays in a time zone, and the priorities whose clocks pause in them."""
    found = p.fields(node, CALENDAR_KEYS, name="calendar", required=("timezone",))
    zone_node = found["timezone"][1]
    zone = str(p.scalar(zone_node, "calendar.timezone"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        p.fail(
            zone_node, f'calendar.timezone: unknown time zone "{zone}" (e.g. Asia/Shanghai)', exc
        )
    pauses = Calendar().pauses
    if "pause" in found:
        chosen = p.choices(found["pause"][1], PRIORITIES, "priority", "calendar.pause")
        pauses = frozenset(Priority(v) for v in chosen)
    holidays: list[Holiday] = []
    if "holidays" in found:
        items = p.items(found["holidays"][1], "calendar.holidays", "leave holidays out for none")
        for index, item in enumerate(items, 1):
            holiday = _holiday(p, item, index)
            for other in holidays:
                if holiday.first <= other.last and other.first <= holiday.last:
                    p.fail(item, f'holiday "{holiday.name}" overlaps "{other.name}"')
            holidays.append(holiday)
    return Calendar(timezone=zone, holidays=tuple(holidays), pauses=pauses)


def _holiday(p: RuleParser, node: Node, index: int) -> Holiday:
    name = f"calendar holiday {index}"
    found = p.fields(node, HOLIDAY_KEYS, name=name, required=("name", "from"))
    title = str(p.scalar(found["name"][1], f"{name}: name")).strip()
    if not title:
        p.fail(found["name"][1], f"{name}: name must be a non-empty text")
    first = _date(p, found["from"][1], f"{name}: from")
    last = _date(p, found["to"][1], f"{name}: to") if "to" in found else first
    if last < first:
        p.fail(found["to"][1], f"{name}: to ({last}) is before from ({first})")
    if (last - first).days + 1 > MAX_HOLIDAY_DAYS:
        p.fail(found["to"][1], f"{name}: longer than {MAX_HOLIDAY_DAYS} days; check the year")
    return Holiday(title, first, last)


def _date(p: RuleParser, node: Node, what: str) -> date:
    value = p.scalar(node, what)
    if type(value) is not date:
        p.fail(node, f'{what} must be a date written YYYY-MM-DD, not "{node.value}"')
    return value


def _text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest}m" if hours and rest else f"{hours}h" if hours else f"{rest}m"
