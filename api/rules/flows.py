"""The rule API's work: show a rule set, check YAML text, and dry-run a rule set on a device."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from api.rules import repository
from api.rules.schemas import (
    CalendarBody,
    DryRun,
    DryRunStep,
    FleetBody,
    FleetStep,
    GuidePlan,
    HolidayBody,
    Problem,
    RuleBody,
    RuleSetBody,
    SlaBody,
    TicketPlan,
    TierBody,
    TimingBody,
    Validation,
)
from forewarn.errors import NotFoundError, RuleError
from notifier.tickets.calendar import Calendar
from notifier.tickets.types import Priority, Sla, TicketOrder, Tier, TierTimes
from rules import facts, predictions
from rules.loader import parse_rules
from rules.replay import Step, replay
from rules.types import Action, FleetPolicy, Rule, RuleSet, Timing

Conn = repository.Conn

_UNITS = (("h", 3_600), ("m", 60), ("s", 1))
DAY = 86_400


def duration(delta: timedelta) -> str:
    """`delta` as rule files write it: ``30m``, ``1h30m``, ``24h``; whole days from two on
    as days (``30d``), since a day is how people say those and ``24h`` is how they say one."""
    seconds = int(delta.total_seconds())
    if seconds >= 2 * DAY and seconds % DAY == 0:
        return f"{seconds // DAY}d"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse(text: str, *, source: str) -> RuleSet:
    """``parse_rules``, with input too deeply nested for PyYAML's recursive composer made a
    RuleError like any other unreadable text (it raises RecursionError otherwise)."""
    try:
        return parse_rules(text, source=source)
    except RecursionError as exc:
        raise RuleError(f"{source}:1: not readable as YAML: nested too deeply") from exc


def rule_body(position: int, rule: Rule) -> RuleBody:
    """One rule as the API shows it."""
    return RuleBody(
        position=position,
        name=rule.name,
        action=rule.action.value,
        faults=sorted(rule.faults),
        segments=sorted(rule.segments),
        min_probability=rule.min_probability,
        priority=rule.priority.value,
        priority_label=rule.priority.label,
        tier=rule.tier.value,
        team=rule.tier.team,
        # Rule carries a default wait for every action; it only means something for one.
        wait=duration(rule.wait) if rule.action is Action.GUIDE_THEN_TICKET else None,
        notify_owner=rule.notify_owner,
        line=rule.line,
    )


def describe(rules: RuleSet) -> RuleSetBody:
    """The rule set as the API shows it, with its file's text as it is now."""
    text = _read(rules.source)
    by_rank = sorted(rules.sla.items(), key=lambda item: -item[0].rank)
    return RuleSetBody(
        source=rules.source,
        yaml=text,
        yaml_matches=text is not None and _loads_to(text, rules),
        rules=[rule_body(n, r) for n, r in enumerate(rules.rules, 1)],
        sla=[_sla(p, s) for p, s in by_rank],
        tiers=[_tier(t, times) for t, times in sorted(rules.tiers.items())],
        calendar=_calendar(rules.calendar),
        fleet=_fleet(rules.fleet),
        timing=_timing(rules.timing),
    )


def _sla(priority: Priority, sla: Sla) -> SlaBody:
    return SlaBody(
        priority=priority.value,
        label=priority.label,
        first_response=duration(sla.first_response),
        resolution=duration(sla.resolution),
    )


def _tier(tier: Tier, times: TierTimes) -> TierBody:
    return TierBody(
        tier=tier.value,
        team=tier.team,
        respond=None if times.respond is None else duration(times.respond),
        solve=duration(times.solve),
        takes=[p.value for p in Priority if p in times.takes],
    )


def _calendar(calendar: Calendar) -> CalendarBody:
    return CalendarBody(
        timezone=calendar.timezone,
        pause=[p.value for p in Priority if p in calendar.pauses],
        holidays=[
            HolidayBody(name=h.name, first=h.first.isoformat(), last=h.last.isoformat())
            for h in calendar.holidays
        ],
    )


def _fleet(fleet: FleetPolicy) -> FleetBody:
    steps = [FleetStep(devices=d, priority=p.value) for d, p in fleet.steps]
    return FleetBody(min_devices=fleet.min_devices, window=duration(fleet.window), steps=steps)


def _timing(timing: Timing) -> TimingBody:
    return TimingBody(
        cooldown=duration(timing.cooldown),
        clear_after=duration(timing.clear_after),
        recurrence_window=duration(timing.recurrence_window),
        warn_at=timing.warn_at,
        enterprise_first_response=duration(timing.enterprise_first_response),
        novice_days=timing.novice_days,
        senior_days=timing.senior_days,
    )


def _read(source: str) -> str | None:
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def _loads_to(text: str, rules: RuleSet) -> bool:
    try:
        return parse(text, source=rules.source) == rules
    except RuleError:
        return False


def validate(text: str, *, source: str) -> Validation:
    """Whether `text` loads as a rule set: its rules, or the loader's message."""
    try:
        rules = parse(text, source=source)
    except RuleError as exc:
        message = str(exc)
        found = re.match(r"(\d+):", message.removeprefix(f"{source}:"))
        line = int(found.group(1)) if found else None
        return Validation(valid=False, errors=[Problem(message=message, line=line)], rules=[])
    rules_ = [rule_body(n, r) for n, r in enumerate(rules.rules, 1)]
    return Validation(valid=True, errors=[], rules=rules_)


def dry_run(conn: Conn, *, rules: RuleSet, device_id: str, hours: int, now: datetime) -> DryRun:
    """Replay the device's predictions of the last `hours` through `rules`; writes nothing.
    NotFoundError for an unknown device."""
    since = now - timedelta(hours=hours)
    with repository.read_only(conn):
        device = facts.device(conn, device_id=device_id)
        if device is None:
            raise NotFoundError(f"no device {device_id}")
        signals = predictions.device_signals(conn, device_id=device_id, since=since, until=now)
    steps = [_step(s, rules) for s in replay(signals, device, rules)]
    owner = device.owner
    return DryRun(
        device_id=device_id,
        owner_id=None if owner is None else owner.owner_id,
        has_targets=owner is not None and bool(owner.targets),
        rules_source=rules.source,
        since=since,
        until=now,
        predictions=len(signals),
        verdicts=dict(Counter(s.verdict for s in steps)),
        steps=steps,
    )


def _step(step: Step, rules: RuleSet) -> DryRunStep:
    signal, decision = step.signal, step.decision
    rule = next((r for r in rules.rules if r.name == decision.rule), None)
    guide = decision.guide
    return DryRunStep(
        at=signal.at,
        fault=signal.fault,
        probability=signal.probability,
        hours_to_empty=signal.hours_to_empty,
        reasons=list(signal.reasons),
        model_version=signal.model_version,
        verdict=decision.verdict.value,
        why=decision.why,
        rule=decision.rule,
        action=None if rule is None else rule.action.value,
        segment=None if decision.segment is None else decision.segment.value,
        state=decision.state,
        guide=None
        if guide is None
        else GuidePlan(
            send_at=guide.send_at,
            quiet_deferred=guide.quiet_deferred,
            urgent=guide.urgent,
            onboarding=guide.onboarding,
        ),
        ticket=_ticket(decision.ticket),
        ticket_due_at=decision.ticket_due_at,
        then_ticket=_ticket(step.then_ticket),
    )


def _ticket(order: TicketOrder | None) -> TicketPlan | None:
    if order is None:
        return None
    d = order.dues
    return TicketPlan(
        priority=order.priority.value,
        priority_label=order.priority.label,
        tier=order.tier.value,
        team=order.team,
        guide_sent=order.guide_sent,
        first_response_due=d.first_response_due,
        resolution_due=d.resolution_due,
        tier_respond_due=d.tier_respond_due,
        tier_solve_due=d.tier_solve_due,
    )
