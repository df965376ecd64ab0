"""The rule set loader: the shipped default, and broken files named by file, line and problem."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from forewarn.domain import Segment
from forewarn.errors import ConfigError, RuleError
from notifier.tickets.calendar import Calendar, Holiday
from notifier.tickets.types import Priority, Sla, Tier, TierTimes, default_sla, default_tiers
from rules.loader import default_rules_path, load_rules, parse_rules
from rules.types import Action, FleetPolicy, Timing

MINIMAL = """\
version: 1
rules:
  - name: anything
    action: ticket
"""


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ---- the shipped default -----------------------------------------------------------------


def test_default_path_is_beside_the_loader() -> None:
    assert default_rules_path() == Path(__file__).parents[1] / "rules" / "default.yaml"
    assert default_rules_path().is_file()


def test_default_sla_is_the_support_manual_table() -> None:
    rules = load_rules()
    minutes, hours = timedelta(minutes=1), timedelta(hours=1)
    assert dict(rules.sla) == {
        Priority.CRITICAL: Sla(first_response=30 * minutes, resolution=4 * hours),
        Priority.MAJOR: Sla(first_response=1 * hours, resolution=8 * hours),
        Priority.MINOR: Sla(first_response=2 * hours, resolution=24 * hours),
    }
    p = Priority
    # The manual (3.2): L1 takes P3 and simple P2 and responds within the priority's first
    # response; L2 starts within 1 h of the hand-over and hands over to L3 unsolved after 2 h.
    assert dict(rules.tiers) == {
        Tier.L1: TierTimes(respond=None, solve=2 * hours, takes=frozenset({p.MINOR, p.MAJOR})),
        Tier.L2: TierTimes(1 * hours, 2 * hours, frozenset({p.MAJOR, p.MINOR})),
        Tier.L3: TierTimes(30 * minutes, 4 * hours, frozenset({p.CRITICAL, p.MAJOR})),
    }
    assert rules.source == str(default_rules_path())


def test_default_writes_out_the_type_defaults() -> None:
    rules = load_rules()
    assert rules.timing == Timing()
    assert rules.fleet == FleetPolicy()
    assert dict(rules.sla) == dict(default_sla())
    assert dict(rules.tiers) == dict(default_tiers())


def test_default_rules_in_order() -> None:
    rules = load_rules().rules
    assert [r.name for r in rules] == [
        "ignore anomaly hints",
        "enterprise dedicated team",
        "enterprise",
        "overheating is critical",
        "novices: guide first for reboot loops",
        "reboot loop",
        "battery: guide, then a ticket",
        "novices: connectivity, gently",
        "connectivity: guide, then a ticket",
        "seniors: stuck sensor to the experts",
        "stuck sensor",
        "anything else",
    ]
    table = [
        (r.action, r.priority, r.tier, r.wait if r.action is Action.GUIDE_THEN_TICKET else None)
        for r in rules
    ]
    g, t, i = Action.GUIDE_THEN_TICKET, Action.TICKET, Action.IGNORE
    crit, major, minor = Priority.CRITICAL, Priority.MAJOR, Priority.MINOR
    h = timedelta(hours=1)
    assert table == [
        (i, minor, Tier.L1, None),
        (t, crit, Tier.L3, None),
        (t, major, Tier.L2, None),
        (t, crit, Tier.L3, None),
        (g, major, Tier.L2, 1 * h),
        (t, major, Tier.L2, None),
        (g, minor, Tier.L1, 6 * h),
        (g, minor, Tier.L1, 4 * h),
        (g, minor, Tier.L1, 2 * h),
        (g, minor, Tier.L2, 2 * h),
        (g, minor, Tier.L1, 2 * h),
        (g, minor, Tier.L1, 4 * h),
    ]
    assert [r.notify_owner for r in rules] == [False, True, True, True] + [False, True] + [
        False
    ] * 6
    assert rules[0].faults == {"anomaly"}
    assert rules[1].segments == {Segment.ENTERPRISE} and rules[1].faults == {"overheating"}
    assert rules[2].segments == {Segment.ENTERPRISE} and not rules[2].faults
    assert rules[4].segments == {Segment.NOVICE} and rules[4].faults == {"reboot_loop"}
    assert rules[9].segments == {Segment.SENIOR} and rules[9].faults == {"stuck_sensor"}
    assert not rules[-1].faults and not rules[-1].segments and rules[-1].min_probability == 0
    assert all(r.line > 0 for r in rules)
    lines = default_rules_path().read_text(encoding="utf-8").splitlines()
    assert all(r.name in lines[r.line - 1] for r in rules)


@pytest.mark.parametrize(
    ("fault", "segment", "expected"),
    [
        pytest.param("anomaly", Segment.ENTERPRISE, "ignore anomaly hints", id="anomaly"),
        pytest.param("overheating", Segment.ENTERPRISE, "enterprise dedicated team", id="ent-heat"),
        pytest.param("battery_failure", Segment.ENTERPRISE, "enterprise", id="ent-battery"),
        pytest.param("overheating", Segment.NOVICE, "overheating is critical", id="heat"),
        pytest.param(
            "reboot_loop", Segment.NOVICE, "novices: guide first for reboot loops", id="nov-boot"
        ),
        pytest.param("reboot_loop", Segment.REGULAR, "reboot loop", id="reboot"),
        pytest.param(
            "connectivity_loss", Segment.NOVICE, "novices: connectivity, gently", id="nov-link"
        ),
        pytest.param(
            "stuck_sensor", Segment.SENIOR, "seniors: stuck sensor to the experts", id="sen-stuck"
        ),
        pytest.param("stuck_sensor", Segment.REGULAR, "stuck sensor", id="stuck"),
        pytest.param("storage_full", Segment.REGULAR, "anything else", id="unknown-fault"),
    ],
)
def test_default_first_match_wins(fault: str, segment: Segment, expected: str) -> None:
    rule = load_rules().rule_for(fault, segment, 0.9)
    assert rule is not None and rule.name == expected


# ---- a small valid file -------------------------------------------------------------------


def test_minimal_file_takes_the_type_defaults() -> None:
    rules = parse_rules(MINIMAL, source="inline")
    assert rules.timing == Timing() and rules.fleet == FleetPolicy()
    assert dict(rules.sla) == dict(default_sla()) and dict(rules.tiers) == dict(default_tiers())
    (rule,) = rules.rules
    assert (rule.name, rule.action, rule.priority, rule.tier, rule.line) == (
        "anything",
        Action.TICKET,
        Priority.MINOR,
        Tier.L1,
        3,
    )
    assert rules.source == "inline"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("90s", timedelta(seconds=90), id="seconds"),
        pytest.param("30m", timedelta(minutes=30), id="minutes"),
        pytest.param("4h", timedelta(hours=4), id="hours"),
        pytest.param("2d", timedelta(days=2), id="days"),
        pytest.param("1h30m", timedelta(minutes=90), id="compound"),
        pytest.param("1d 2h", timedelta(hours=26), id="spaced"),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    rules = parse_rules(f"version: 1\ntiming: {{cooldown: {text}}}\n{MINIMAL[11:]}", source="x")
    assert rules.timing.cooldown == expected


def test_partial_sections_keep_the_other_defaults() -> None:
    text = _yaml("""
        version: 1
        timing: {warn_at: 0.9}
        tiers:
          L3: {respond: 15m, solve: 2h}
        fleet: {min_devices: 3, steps: [{devices: 3, priority: minor}]}
        rules:
          - {name: x, action: guide, faults: [anomaly, overheating], min_probability: 0.5}
        """)
    rules = parse_rules(text, source="x")
    assert rules.timing == Timing(warn_at=0.9)
    assert rules.tiers[Tier.L2] == default_tiers()[Tier.L2]
    l3 = default_tiers()[Tier.L3]
    assert rules.tiers[Tier.L3] == TierTimes(timedelta(minutes=15), timedelta(hours=2), l3.takes)
    assert rules.fleet == FleetPolicy(3, timedelta(hours=6), ((3, Priority.MINOR),))
    assert rules.rules[0].faults == {"anomaly", "overheating"}
    assert rules.rules[0].min_probability == 0.5


# ---- broken files -------------------------------------------------------------------------

BROKEN = [
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action ticket\n    tier: L2\n",
        4,
        "YAML syntax error: could not find expected ':'",
        id="yaml-syntax",
    ),
    pytest.param(
        "version: 1\nrules: [{name: x, action: ticket}]\nfleet: {window: [6h}\n",
        3,
        "YAML syntax error",
        id="yaml-unclosed-flow",
    ),
    pytest.param("", 1, "the file is empty", id="empty-file"),
    pytest.param("- version: 1\n", 1, "must be a mapping with version and rules", id="not-mapping"),
    pytest.param(
        "# my rules\nrules:\n  - {name: x, action: ticket}\n",
        2,
        'missing "version"; add "version: 1"',
        id="missing-version",
    ),
    pytest.param(
        "version: 2\nrules:\n  - {name: x, action: ticket}\n",
        1,
        'version "2" is not supported; this Forewarn reads version 1',
        id="wrong-version",
    ),
    pytest.param(
        "version: 1\nrule:\n  - {name: x, action: ticket}\n",
        2,
        'unknown key "rule"; did you mean "rules"? (expected one of version, segments,',
        id="unknown-top-level-key",
    ),
    pytest.param("version: 1\n", 1, 'missing "rules"', id="missing-rules"),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    fault: [overheating]\n",
        5,
        'rule "x": unknown key "fault"; did you mean "faults"?',
        id="unknown-rule-key",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: battery guide\n    action: mail\n",
        4,
        'rule "battery guide": unknown action "mail"; '
        "expected one of ignore, guide, guide_then_ticket, ticket",
        id="unknown-action",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: tiket\n",
        4,
        'unknown action "tiket"; did you mean "ticket"?',
        id="unknown-action-close",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    faults:\n      - overheating\n"
        "      - overheat\n",
        7,
        'rule "x": unknown fault "overheat"; did you mean "overheating"?',
        id="unknown-fault",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    segments: [beginner]\n",
        5,
        'unknown segment "beginner"; expected one of novice, regular, senior, enterprise',
        id="unknown-segment",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    segments: []\n",
        5,
        "segments is an empty list; leave segments out to match every segment",
        id="empty-segments",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    faults: overheating\n",
        5,
        'faults must be a list (- item, or [a, b]), not "overheating"',
        id="faults-not-a-list",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    priority: urgent\n",
        5,
        'unknown priority "urgent"; expected one of critical, major, minor',
        id="bad-priority",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    tier: L4\n",
        5,
        'unknown tier "L4"',
        id="bad-tier",
    ),
    pytest.param(
        "version: 1\ntiming:\n  cooldown: 12\nrules:\n  - {name: x, action: ticket}\n",
        3,
        "timing.cooldown 12 has no unit; add one: 12s, 12m, 12h or 12d",
        id="duration-without-unit",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {name: x, action: guide_then_ticket, wait: 1.5h}\n",
        3,
        'wait must be a duration like 90s, 30m, 4h, 2d or 1h30m, not "1.5h"',
        id="bad-duration",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    wait: 2h\n",
        5,
        'rule "x": wait applies only to guide_then_ticket rules, not to ticket',
        id="wait-on-ticket",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: guide\n    notify_owner: true\n",
        5,
        "notify_owner applies only to ticket rules, not to guide",
        id="notify-owner-on-guide",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: a\n    faults: [overheating]\n    action: ticket\n"
        "  - name: x\n    action: guide_then_ticket\n",
        6,
        'rule "x": guide_then_ticket needs a wait',
        id="missing-wait",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    faults: [overheating]\n"
        "  - name: y\n    action: ticket\n",
        3,
        'rule "x": missing "action"',
        id="missing-action",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: dup\n    faults: [overheating]\n    action: ticket\n"
        "  - name: dup\n    action: guide\n",
        6,
        'rule "dup": the name is already used by the rule at line 3',
        id="duplicate-names",
    ),
    pytest.param(
        "version: 1\nrules: []\n",
        2,
        "rules is an empty list; a rule set needs at least one rule",
        id="empty-rules",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: all\n    action: guide\n"
        "  - name: heat\n    faults: [overheating]\n    action: ticket\n",
        5,
        'rule "heat" (line 5) can never match: rule "all" (line 3) is a catch-all',
        id="unreachable-after-catch-all",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {name: heat, faults: [overheating, battery_failure], action: ticket}\n"
        "  - {name: novice heat, faults: [overheating], segments: [novice], action: guide}\n",
        4,
        'rule "novice heat" (line 4) can never match: rule "heat" (line 3) comes first',
        id="unreachable-behind-wider-rule",
    ),
    pytest.param(
        "version: 1\nsegments:\n  novice_days: 200\n  senior_days: 180\nrules:\n"
        "  - {name: x, action: ticket}\n",
        3,
        "segments.novice_days (200) must be less than segments.senior_days (180)",
        id="novice-days-not-below-senior",
    ),
    pytest.param(
        "version: 1\ntiming: {warn_at: 1}\nrules:\n  - {name: x, action: ticket}\n",
        2,
        'timing.warn_at must be a number between 0 and 1, exclusive, not "1"',
        id="warn-at-out-of-range",
    ),
    pytest.param(
        "version: 1\nfleet:\n  steps:\n    - {devices: 5, priority: major}\n"
        "    - {devices: 5, priority: critical}\nrules:\n  - {name: x, action: ticket}\n",
        5,
        "fleet.steps must rise strictly in devices: step 2 has 5, step 1 already 5",
        id="fleet-steps-not-rising",
    ),
    pytest.param(
        "version: 1\nfleet:\n  min_devices: 3\nrules:\n  - {name: x, action: ticket}\n",
        3,
        "the first step is at 5 devices but fleet.min_devices is 3",
        id="fleet-first-step-not-min-devices",
    ),
    pytest.param(
        "version: 1\nfleet: {min_devices: 1}\nrules:\n  - {name: x, action: ticket}\n",
        2,
        "fleet.min_devices must be at least 2, not 1",
        id="fleet-min-devices-below-2",
    ),
    pytest.param(
        "version: 1\nsla:\n  critical: {first_response: 30m, resolution: 4h}\n"
        "  major: {first_response: 8h, resolution: 8h}\n"
        "  minor: {first_response: 2h, resolution: 24h}\nrules:\n  - {name: x, action: ticket}\n",
        4,
        "sla.major.first_response (8h) must be shorter than its resolution (8h)",
        id="sla-first-response-not-below-resolution",
    ),
    pytest.param(
        "version: 1\nsla:\n  critical: {first_response: 30m, resolution: 4h}\nrules:\n"
        "  - {name: x, action: ticket}\n",
        3,
        'missing "major" in sla',
        id="sla-missing-priority",
    ),
    pytest.param(
        "version: 1\ntiers:\n  L1: {respond: 1h, solve: 2h}\nrules:\n  - {name: x, action: ticket}\n",
        3,
        "tiers.L1: L1 responds within the sla table's first_response",
        id="tiers-l1-respond",
    ),
    pytest.param(
        "version: 1\ntiers:\n  L2: {takes: [critical, major]}\nrules:\n  - {name: x, action: ticket}\n",
        3,
        "tiers.L2.takes: critical (P1) issues start at L3",
        id="tiers-p1-below-l3",
    ),
    pytest.param(
        "version: 1\ntiers:\n  L3: {takes: [major]}\nrules:\n  - {name: x, action: ticket}\n",
        3,
        "tiers.L3.takes must include critical",
        id="tiers-l3-without-p1",
    ),
    pytest.param(
        "version: 1\ntiers:\n  L2: {respond: 3h}\nrules:\n  - {name: x, action: ticket}\n",
        3,
        "tiers.L2.respond (3h) must be shorter than its solve (2h)",
        id="tiers-respond-after-solve",
    ),
    pytest.param(
        "version: 1\ntiers:\n  L2: {takes: [major, urgent]}\nrules:\n  - {name: x, action: ticket}\n",
        3,
        'unknown priority "urgent"',
        id="tiers-unknown-priority",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {name: a, action: guide, faults: [overheating]}\n"
        "  - {name: hot, action: ticket, priority: critical, tier: L1}\n",
        4,
        'rule "hot": tier L1 does not take critical (P1) tickets (tiers.L1.takes: major, minor)',
        id="rule-p1-at-l1",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {name: x, action: ticket, priority: minor, tier: L3}\n",
        3,
        "tier L3 does not take minor (P3) tickets",
        id="rule-p3-at-l3",
    ),
    pytest.param(
        "version: 1\ncalendar:\n  holidays: []\nrules:\n  - {name: x, action: ticket}\n",
        3,
        'missing "timezone" in calendar',
        id="calendar-without-zone",
    ),
    pytest.param(
        "version: 1\ncalendar:\n  timezone: Mars/Olympus\nrules:\n  - {name: x, action: ticket}\n",
        3,
        'unknown time zone "Mars/Olympus"',
        id="calendar-unknown-zone",
    ),
    pytest.param(
        "version: 1\ncalendar:\n  timezone: Asia/Shanghai\n  holidays:\n"
        "    - {name: 国庆节, from: 2026-10-07, to: 2026-10-01}\nrules:\n  - {name: x, action: ticket}\n",
        5,
        "calendar holiday 1: to (2026-10-01) is before from (2026-10-07)",
        id="holiday-backwards",
    ),
    pytest.param(
        "version: 1\ncalendar:\n  timezone: Asia/Shanghai\n  holidays:\n"
        "    - {name: 国庆节, from: 2026-10-01, to: 2026-10-07}\n"
        "    - {name: 中秋节, from: 2026-10-05}\nrules:\n  - {name: x, action: ticket}\n",
        6,
        'holiday "中秋节" overlaps "国庆节"',
        id="holiday-overlap",
    ),
    pytest.param(
        "version: 1\ncalendar:\n  timezone: UTC\n  holidays:\n"
        "    - {name: x, from: 1 October}\nrules:\n  - {name: x, action: ticket}\n",
        5,
        'calendar holiday 1: from must be a date written YYYY-MM-DD, not "1 October"',
        id="holiday-not-a-date",
    ),
    pytest.param(
        "version: 1\ncalendar:\n  timezone: UTC\n  pause: [often]\nrules:\n  - {name: x, action: ticket}\n",
        4,
        'unknown priority "often"',
        id="calendar-unknown-pause",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    min_probability: 1.5\n",
        5,
        'rule "x": min_probability must be a number from 0 to 1, not "1.5"',
        id="min-probability-out-of-range",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    notify_owner: maybe\n",
        5,
        'notify_owner must be true or false, not "maybe"',
        id="notify-owner-not-bool",
    ),
    pytest.param(
        "version: 1\nrules:\n  - name: x\n    action: ticket\n    action: guide\n",
        5,
        '"action" is given twice (first at line 4)',
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("text", "line", "fragment"), BROKEN)
def test_broken_file(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message, message


def test_tier_table_and_calendar_load() -> None:
    text = _yaml("""
        version: 1
        tiers:
          L1: {solve: 90m, takes: [minor]}
        calendar:
          timezone: Asia/Shanghai
          pause: [minor]
          holidays:
            - {name: 国庆节, from: 2026-10-01, to: 2026-10-07}
        rules:
          - {name: x, action: ticket, priority: major, tier: L2}
        """)
    rules = parse_rules(text, source="x")
    assert rules.tiers[Tier.L1] == TierTimes(
        None, timedelta(minutes=90), frozenset({Priority.MINOR})
    )
    assert rules.calendar == Calendar(
        "Asia/Shanghai",
        (Holiday("国庆节", date(2026, 10, 1), date(2026, 10, 7)),),
        frozenset({Priority.MINOR}),
    )


def test_syntax_error_keeps_its_cause() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules("version: 1\nrules: [\n", source="rules/custom.yaml")
    assert isinstance(caught.value.__cause__, yaml.YAMLError)
    assert str(caught.value).startswith("rules/custom.yaml:")


def test_rule_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_rules("version: 1\nrules: []\n", source="x")


# ---- files --------------------------------------------------------------------------------


def test_load_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    rules = load_rules(path)
    assert [r.name for r in rules.rules] == ["anything"]
    assert rules.source == str(path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(RuleError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}: cannot read the rule set: ")
    assert isinstance(caught.value.__cause__, FileNotFoundError)
