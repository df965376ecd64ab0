"""Rule tables: the pure decisions, case by case, against the shipped default rule set.

Segments, guide-first versus ticket, quiet hours (and Critical overriding them), cooldown,
hysteresis, snooze and maintenance windows, fleet correlation, SLA dues and escalation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from forewarn.domain import Device, FaultKind, Owner, Prediction, Segment
from notifier.tickets.sla import Breach, Escalate, TicketClock, Warn, dues, ticket_step
from notifier.tickets.types import Priority, Tier
from rules.decide import Verdict, on_signal, on_timer, quiet_until, segment_of
from rules.loader import load_rules, parse_rules
from rules.types import History, OpenIncident, RuleSet

RULES: RuleSet = load_rules()
# 10:00 UTC on a Monday: 18:00 in Shanghai, 05:00 in New York.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)

BATTERY = FaultKind.BATTERY_FAILURE.value
HEAT = FaultKind.OVERHEATING.value
REBOOT = FaultKind.REBOOT_LOOP.value
LINK = FaultKind.CONNECTIVITY_LOSS.value
STUCK = FaultKind.STUCK_SENSOR.value


def owner(**kw: object) -> Owner:
    base = Owner(
        "o1",
        "Anna Miller",
        "anna@example.com",
        "en-US",
        "Europe/Berlin",
        time(22, 0),
        time(7, 0),
        None,
        ("json://127.0.0.1:1/owner",),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def device(days_owned: float = 90, **kw: object) -> Device:
    base = Device(
        "lock-000001", "lock-s2", "lock", "2.4.1", NOW - timedelta(days=days_owned), owner(), NOW
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def signal(fault: str = BATTERY, p: float = 0.97) -> Prediction:
    return Prediction(
        device_id="lock-000001",
        fault=fault,
        probability=p,
        at=NOW,
        horizon_h=24.0,
        hours_to_empty=120.0 if fault == BATTERY else None,
        reasons=("battery draining fast",),
    )


def incident(**kw: object) -> OpenIncident:
    base = OpenIncident(
        1,
        "guided",
        "battery: guide, then a ticket",
        Segment.REGULAR,
        NOW - 2 * H,
        NOW - 10 * M,
        NOW - 2 * H,
        NOW + 4 * H,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


ENTERPRISE = owner(enterprise_account="Lotus Hotel")


@pytest.mark.parametrize(
    ("dev", "expected"),
    [
        pytest.param(device(days_owned=3), Segment.NOVICE, id="3-days-novice"),
        pytest.param(device(days_owned=30), Segment.NOVICE, id="30-days-still-novice"),
        pytest.param(device(days_owned=31), Segment.REGULAR, id="31-days-regular"),
        pytest.param(device(days_owned=179), Segment.REGULAR, id="179-days-regular"),
        pytest.param(device(days_owned=180), Segment.SENIOR, id="180-days-senior"),
        pytest.param(
            device(days_owned=3, owner=ENTERPRISE),
            Segment.ENTERPRISE,
            id="enterprise-by-account-whatever-the-age",
        ),
        pytest.param(device(activated_at=None), Segment.REGULAR, id="unknown-activation"),
    ],
)
def test_segments(dev: Device, expected: Segment) -> None:
    assert segment_of(dev, NOW, RULES.timing) is expected


@pytest.mark.parametrize(
    ("fault", "dev", "rule", "state", "has_guide", "priority", "tier", "team"),
    [
        pytest.param(
            BATTERY,
            device(),
            "battery: guide, then a ticket",
            "guided",
            True,
            None,
            None,
            None,
            id="battery-regular-guide-first",
        ),
        pytest.param(
            BATTERY,
            device(days_owned=3),
            "battery: guide, then a ticket",
            "guided",
            True,
            None,
            None,
            None,
            id="battery-novice-guide-first",
        ),
        pytest.param(
            HEAT,
            device(),
            "overheating is critical",
            "ticketed",
            True,
            "critical",
            "L3",
            "support-l3",
            id="overheating-critical-ticket-and-warning",
        ),
        pytest.param(
            REBOOT,
            device(),
            "reboot loop",
            "ticketed",
            True,
            "major",
            "L2",
            "support-l2",
            id="reboot-regular-ticket-at-once",
        ),
        pytest.param(
            REBOOT,
            device(days_owned=3),
            "novices: guide first for reboot loops",
            "guided",
            True,
            None,
            None,
            None,
            id="reboot-novice-guide-first",
        ),
        pytest.param(
            STUCK,
            device(days_owned=400),
            "seniors: stuck sensor to the experts",
            "guided",
            True,
            None,
            None,
            None,
            id="stuck-senior-rule",
        ),
        pytest.param(
            BATTERY,
            device(owner=ENTERPRISE),
            "enterprise",
            "ticketed",
            True,
            "major",
            "L2",
            "enterprise:Lotus Hotel",
            id="enterprise-dedicated-team",
        ),
        pytest.param(
            HEAT,
            device(owner=ENTERPRISE),
            "enterprise dedicated team",
            "ticketed",
            True,
            "critical",
            "L3",
            "enterprise:Lotus Hotel",
            id="enterprise-overheating-critical",
        ),
        pytest.param(
            BATTERY,
            device(owner=owner(targets=())),
            "battery: guide, then a ticket",
            "watching",
            False,
            None,
            None,
            None,
            id="owner-without-targets-watched",
        ),
    ],
)
def test_first_prediction(
    fault: str,
    dev: Device,
    rule: str,
    state: str,
    has_guide: bool,
    priority: str | None,
    tier: str | None,
    team: str | None,
) -> None:
    d = on_signal(signal(fault), dev, History(), RULES, NOW)
    assert d.verdict is Verdict.OPEN
    assert (d.rule, d.state) == (rule, state)
    assert (d.guide is not None) == has_guide
    if priority is None:
        assert d.ticket is None
        assert d.ticket_due_at is not None and d.ticket_due_at > NOW  # guide first, then wait
    else:
        assert d.ticket is not None
        assert (d.ticket.priority.value, d.ticket.tier.value, d.ticket.team) == (
            priority,
            tier,
            team,
        )


def test_enterprise_gets_its_ten_minute_first_response() -> None:
    d = on_signal(signal(BATTERY), device(owner=ENTERPRISE), History(), RULES, NOW)
    assert d.ticket is not None
    assert d.ticket.dues.first_response_due == NOW + 10 * M
    assert d.ticket.dues.tier_respond_due == NOW + 10 * M


def test_novices_also_get_onboarding() -> None:
    d = on_signal(signal(LINK), device(days_owned=5), History(), RULES, NOW)
    assert d.guide is not None and d.guide.onboarding
    d = on_signal(signal(LINK), device(days_owned=50), History(), RULES, NOW)
    assert d.guide is not None and not d.guide.onboarding


def test_anomaly_hints_are_ignored() -> None:
    d = on_signal(signal("anomaly"), device(), History(), RULES, NOW)
    assert d.verdict is Verdict.NOTHING


# ---- quiet hours ------------------------------------------------------------------------

BERLIN_NIGHT = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # 00:30 in Berlin


@pytest.mark.parametrize(
    ("who", "at", "until"),
    [
        pytest.param(owner(), NOW, None, id="berlin-11am-not-quiet"),
        pytest.param(
            owner(),
            BERLIN_NIGHT,
            datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
            id="berlin-after-midnight-until-7-local",
        ),
        pytest.param(
            owner(),
            datetime(2026, 11, 23, 21, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
            id="berlin-22h-start-included",
        ),
        pytest.param(
            owner(), datetime(2026, 11, 24, 6, 0, tzinfo=UTC), None, id="berlin-07h-end-excluded"
        ),
        pytest.param(
            owner(time_zone="Asia/Shanghai", quiet_start=time(13, 0), quiet_end=time(14, 0)),
            datetime(2026, 11, 23, 5, 30, tzinfo=UTC),
            datetime(2026, 11, 23, 6, 0, tzinfo=UTC),
            id="shanghai-siesta-same-day",
        ),
        pytest.param(owner(quiet_start=None), BERLIN_NIGHT, None, id="no-quiet-hours"),
        pytest.param(
            owner(time_zone="Mars/Olympus"),
            BERLIN_NIGHT,
            None,
            id="unknown-zone-read-as-utc-23h30-before-22h-end",
        ),
    ],
)
def test_quiet_hours(who: Owner, at: datetime, until: datetime | None) -> None:
    if who.time_zone == "Mars/Olympus":
        # 23:30 UTC is inside 22:00-07:00 UTC: quiet until 07:00 UTC.
        until = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert quiet_until(who, at) == until


def test_guide_waits_for_the_end_of_quiet_hours() -> None:
    d = on_signal(signal(BATTERY), device(), History(), RULES, BERLIN_NIGHT)
    assert d.guide is not None
    assert d.guide.quiet_deferred and d.guide.send_at == datetime(2026, 11, 24, 6, tzinfo=UTC)
    assert "quiet hours" in d.why


def test_critical_overrides_quiet_hours() -> None:
    d = on_signal(signal(HEAT), device(), History(), RULES, BERLIN_NIGHT)
    assert d.guide is not None and d.guide.urgent
    assert not d.guide.quiet_deferred and d.guide.send_at == BERLIN_NIGHT


# ---- cooldown ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("told_ago", "fault", "guided"),
    [
        pytest.param(None, BATTERY, True, id="never-told"),
        pytest.param(1 * H, BATTERY, False, id="told-1h-ago-held"),
        pytest.param(11 * H, BATTERY, False, id="told-11h-ago-held"),
        pytest.param(12 * H, BATTERY, True, id="told-12h-ago-cooldown-over"),
        pytest.param(1 * H, HEAT, True, id="critical-ignores-cooldown"),
    ],
)
def test_cooldown(told_ago: timedelta | None, fault: str, guided: bool) -> None:
    history = History(last_owner_notice_at=None if told_ago is None else NOW - told_ago)
    d = on_signal(signal(fault), device(), history, RULES, NOW)
    assert d.verdict is Verdict.OPEN
    assert (d.guide is not None) == guided
    if not guided:
        assert d.state == "watching" and "cooldown" in d.why


# ---- one incident, hysteresis ----------------------------------------------------------


def test_open_incident_is_tracked_not_reopened() -> None:
    d = on_signal(signal(BATTERY), device(), History(open=incident()), RULES, NOW)
    assert d.verdict is Verdict.TRACK
    assert d.guide is None and d.ticket is None


@pytest.mark.parametrize(
    ("clean_for", "verdict", "outcome"),
    [
        pytest.param(0 * M, Verdict.NOTHING, None, id="still-predicted"),
        pytest.param(20 * M, Verdict.NOTHING, None, id="a-gap-is-not-recovery"),
        pytest.param(59 * M, Verdict.NOTHING, None, id="just-under-clear-after"),
        pytest.param(60 * M, Verdict.RECOVERED, "recovered_after_guide", id="clear-after-met"),
    ],
)
def test_hysteresis(clean_for: timedelta, verdict: Verdict, outcome: str | None) -> None:
    last = NOW - 2 * H
    dev = device(last_seen=last + clean_for)
    d = on_timer(incident(last_predicted_at=last), dev, History(), RULES, NOW)
    assert d.verdict is verdict
    assert d.outcome == outcome


def test_offline_device_is_not_recovered() -> None:
    """A device that went silent (connectivity lost) has no clean telemetry: no recovery."""
    dev = device(last_seen=NOW - 3 * H)
    d = on_timer(incident(last_predicted_at=NOW - 3 * H), dev, History(), RULES, NOW)
    assert d.verdict is Verdict.NOTHING


def test_ticket_after_the_guides_wait() -> None:
    inc = incident(ticket_due_at=NOW - M)
    d = on_timer(inc, device(), History(), RULES, NOW)
    assert d.verdict is Verdict.TICKET and d.ticket is not None
    assert d.ticket.guide_sent and "guide" in d.why
    assert (d.ticket.priority, d.ticket.tier) == (Priority.MINOR, Tier.L1)
    assert on_timer(incident(), device(), History(), RULES, NOW).verdict is Verdict.NOTHING


def test_recovered_ticketed_incident_is_plain_recovered() -> None:
    inc = incident(ticket_id=7, state="ticketed", last_predicted_at=NOW - 2 * H)
    d = on_timer(inc, device(last_seen=NOW), History(), RULES, NOW)
    assert d.verdict is Verdict.RECOVERED and d.outcome == "recovered"


# ---- snooze and maintenance windows ------------------------------------------------------


@pytest.mark.parametrize(
    ("until", "verdict"),
    [
        pytest.param(NOW + H, Verdict.NOTHING, id="device-snoozed"),
        pytest.param(NOW - M, Verdict.OPEN, id="snooze-over"),
    ],
)
def test_snooze(until: datetime, verdict: Verdict) -> None:
    history = History(snoozed_until=until, snooze_reason="firmware 3.1.1 roll-out")
    d = on_signal(signal(REBOOT), device(), history, RULES, NOW)
    assert d.verdict is verdict
    if verdict is Verdict.NOTHING:
        assert "firmware 3.1.1 roll-out" in d.why


def test_snooze_holds_the_promised_ticket() -> None:
    history = History(snoozed_until=NOW + H, snooze_reason="maintenance")
    d = on_timer(incident(ticket_due_at=NOW - M), device(), history, RULES, NOW)
    assert d.verdict is Verdict.NOTHING and "snoozed" in d.why


# ---- fleet correlation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("others", "fleet_id", "open_new", "devices", "priority", "device_ticket"),
    [
        pytest.param(3, None, None, 4, None, True, id="4-devices-no-fleet"),
        pytest.param(4, None, True, 5, Priority.MAJOR, False, id="5th-device-opens-fleet"),
        pytest.param(10, 9, False, 11, Priority.MAJOR, False, id="11th-joins"),
        pytest.param(19, 9, False, 20, Priority.CRITICAL, False, id="20th-raises-to-critical"),
    ],
)
def test_fleet(
    others: int,
    fleet_id: int | None,
    open_new: bool | None,
    devices: int,
    priority: Priority | None,
    device_ticket: bool,
) -> None:
    cam = device(device_id="cam-000001", model="cam-c2", kind="camera", firmware="3.1.0")
    history = History(cohort_devices=others, fleet_incident_id=fleet_id)
    d = on_signal(signal(REBOOT), cam, history, RULES, NOW)
    assert d.verdict is Verdict.OPEN
    if open_new is None:
        assert d.fleet is None
    else:
        assert d.fleet is not None
        assert (d.fleet.open_new, d.fleet.devices, d.fleet.priority) == (
            open_new,
            devices,
            priority,
        )
    assert (d.ticket is not None) == device_ticket


def test_fleet_incident_covers_the_promised_ticket() -> None:
    d = on_timer(
        incident(ticket_due_at=NOW - M, fleet_incident_id=3), device(), History(), RULES, NOW
    )
    assert d.verdict is Verdict.NOTHING and "fleet" in d.why


# ---- SLA dues and escalation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "tier", "segment", "respond", "solve", "first", "resolution"),
    [
        pytest.param(Priority.CRITICAL, Tier.L3, None, 30 * M, 4 * H, 30 * M, 4 * H, id="P1-L3"),
        pytest.param(Priority.MAJOR, Tier.L2, None, 1 * H, 2 * H, 1 * H, 8 * H, id="P2-L2"),
        # L1 hands over when its own 2 h are up, not when the whole resolution SLA is.
        pytest.param(Priority.MAJOR, Tier.L1, None, 1 * H, 2 * H, 1 * H, 8 * H, id="P2-L1"),
        pytest.param(Priority.MINOR, Tier.L1, None, 2 * H, 2 * H, 2 * H, 24 * H, id="P3-L1"),
        pytest.param(
            Priority.MAJOR,
            Tier.L2,
            Segment.ENTERPRISE,
            10 * M,
            2 * H,
            10 * M,
            8 * H,
            id="P2-enterprise",
        ),
    ],
)
def test_dues_follow_the_table(
    priority: Priority,
    tier: Tier,
    segment: Segment | None,
    respond: timedelta,
    solve: timedelta,
    first: timedelta,
    resolution: timedelta,
) -> None:
    d = dues(RULES, priority=priority, tier=tier, segment=segment, opened_at=NOW)
    assert (d.tier_respond_due, d.tier_solve_due) == (NOW + respond, NOW + solve)
    assert (d.first_response_due, d.resolution_due) == (NOW + first, NOW + resolution)


def clock(**kw: object) -> TicketClock:
    base = TicketClock(1, Priority.MINOR, Tier.L1, NOW, NOW + 2 * H, NOW + 24 * H, None, None, None)
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("t", "at", "expected"),
    [
        pytest.param(clock(), NOW + H, None, id="half-way-nothing"),
        pytest.param(clock(), NOW + 97 * M, Warn, id="80-percent-warn"),
        pytest.param(clock(warned_at=NOW + 97 * M), NOW + 100 * M, None, id="warned-once"),
        pytest.param(clock(), NOW + 2 * H, Escalate, id="no-answer-escalates-to-L2"),
        pytest.param(
            clock(tier_acknowledged_at=NOW + 10 * M),
            NOW + 3 * H,
            None,
            id="acknowledged-no-respond-breach",
        ),
        pytest.param(
            clock(tier_acknowledged_at=NOW + 10 * M),
            NOW + 24 * H,
            Escalate,
            id="unsolved-escalates",
        ),
        pytest.param(
            clock(tier=Tier.L3, tier_respond_due=NOW + 30 * M),
            NOW + 31 * M,
            Breach,
            id="L3-breach-has-nowhere-to-go",
        ),
        pytest.param(
            clock(tier=Tier.L3, tier_respond_due=NOW + 30 * M, breached_at=NOW + 31 * M),
            NOW + 40 * M,
            None,
            id="L3-breach-noted-once",
        ),
    ],
)
def test_ticket_clock(t: TicketClock, at: datetime, expected: type | None) -> None:
    step = ticket_step(t, RULES, at)
    if expected is None:
        assert step is None
    else:
        assert isinstance(step, expected)


def test_escalation_chain_uses_the_tier_times() -> None:
    step = ticket_step(clock(), RULES, NOW + 2 * H)
    assert isinstance(step, Escalate) and step.to_tier is Tier.L2
    at = NOW + 2 * H
    assert (step.respond_due, step.solve_due) == (at + H, at + 2 * H)
    l2 = clock(
        tier=Tier.L2,
        tier_since=at,
        tier_respond_due=step.respond_due,
        tier_solve_due=step.solve_due,
        tier_acknowledged_at=at + 5 * M,
    )
    step = ticket_step(l2, RULES, at + 2 * H)
    assert isinstance(step, Escalate) and step.to_tier is Tier.L3
    assert step.respond_due == at + 2 * H + 30 * M


def test_a_p2_ticket_reaches_l3_within_its_8_hours() -> None:
    """L1's own 2 h, L2's 2 h after the hand-over, L3's 4 h: the P2 fits its resolution."""
    d = dues(RULES, priority=Priority.MAJOR, tier=Tier.L1, segment=None, opened_at=NOW)
    l1 = clock(
        priority=Priority.MAJOR,
        tier_respond_due=d.tier_respond_due,
        tier_solve_due=d.tier_solve_due,
        tier_acknowledged_at=NOW + 20 * M,
    )
    assert ticket_step(l1, RULES, NOW + 2 * H - M) is not None  # the lead's warning, no hand-over
    to_l2 = ticket_step(l1, RULES, NOW + 2 * H)
    assert isinstance(to_l2, Escalate) and to_l2.to_tier is Tier.L2
    l2 = replace(
        l1,
        tier=Tier.L2,
        tier_since=NOW + 2 * H,
        tier_respond_due=to_l2.respond_due,
        tier_solve_due=to_l2.solve_due,
        tier_acknowledged_at=NOW + 2 * H + 50 * M,  # started within its hour
        warned_at=None,
    )
    to_l3 = ticket_step(l2, RULES, NOW + 4 * H)
    assert isinstance(to_l3, Escalate) and to_l3.to_tier is Tier.L3
    assert to_l3.solve_due == d.resolution_due


HOLIDAY_RULES = parse_rules(
    """\
version: 1
calendar:
  timezone: Asia/Shanghai
  holidays:
    - {name: 国庆节, from: 2026-10-01, to: 2026-10-07}
rules:
  - {name: x, action: ticket}
""",
    source="holidays.yaml",
)
# 2026-09-30 20:00 in Shanghai: four hours before the holiday starts.
EVE = datetime(2026, 9, 30, 12, 0, tzinfo=UTC)
AFTER = datetime(2026, 10, 7, 16, 0, tzinfo=UTC)  # 2026-10-08 00:00 in Shanghai


@pytest.mark.parametrize(
    ("priority", "tier", "solve_due", "resolution_due"),
    [
        # P3 at L1: 2 h of its own time fit before the holiday; 24 h do not: 4 h before, 20 after.
        pytest.param(Priority.MINOR, Tier.L1, EVE + 2 * H, AFTER + 20 * H, id="P3-pauses"),
        pytest.param(Priority.MAJOR, Tier.L2, EVE + 2 * H, AFTER + 4 * H, id="P2-pauses"),
        # Critical tickets run through holidays (the calendar's default `pause`).
        pytest.param(Priority.CRITICAL, Tier.L3, EVE + 4 * H, EVE + 4 * H, id="P1-runs"),
    ],
)
def test_holidays_shift_dues(
    priority: Priority, tier: Tier, solve_due: datetime, resolution_due: datetime
) -> None:
    d = dues(HOLIDAY_RULES, priority=priority, tier=tier, segment=None, opened_at=EVE)
    assert (d.tier_solve_due, d.resolution_due) == (solve_due, resolution_due)


def test_a_hand_over_as_a_holiday_starts_runs_after_it() -> None:
    start = EVE + 4 * H  # the holiday's first minute
    l1 = clock(
        tier_since=EVE, tier_respond_due=EVE + H, tier_solve_due=start, tier_acknowledged_at=EVE
    )
    step = ticket_step(l1, HOLIDAY_RULES, start)
    assert isinstance(step, Escalate) and step.to_tier is Tier.L2
    assert (step.respond_due, step.solve_due) == (AFTER + H, AFTER + 2 * H)
