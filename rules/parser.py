"""The rule-set parser behind ``rules.loader``: walks a composed YAML document, checks every
section against the dataclasses of ``rules.types`` and raises ``RuleError`` at the line of
the offending key or value."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from datetime import timedelta
from typing import Any, NoReturn

from yaml.nodes import MappingNode, Node, ScalarNode

from forewarn.domain import ANOMALY, FaultKind, Segment
from forewarn.errors import RuleError
from forewarn.yamlnodes import NodeReader, kind_of, line_of
from notifier.tickets.calendar import Calendar
from notifier.tickets.types import Priority, Sla, Tier, default_sla, default_tiers
from rules import clocks_parser
from rules.types import Action, FleetPolicy, Rule, RuleSet, Timing

VERSION = 1  # the only format version this loader reads
FAULTS = (*(kind.value for kind in FaultKind), ANOMALY)
SEGMENTS = tuple(segment.value for segment in Segment)
PRIORITIES = tuple(priority.value for priority in Priority)
TIERS = tuple(tier.value for tier in Tier)
ACTIONS = tuple(action.value for action in Action)

TOP_KEYS = ("version", "segments", "timing", "sla", "tiers", "calendar", "fleet", "rules")
SEGMENT_KEYS = ("novice_days", "senior_days")
# The YAML keys are the dataclasses' own field names (`line` is set by the loader).
SLA_KEYS = tuple(f.name for f in dataclass_fields(Sla))  # first_response, resolution
TIMING_KEYS = tuple(f.name for f in dataclass_fields(Timing) if f.name not in SEGMENT_KEYS)
RULE_KEYS = tuple(f.name for f in dataclass_fields(Rule) if f.name != "line")

# Rule keys that only mean something for one action.
_ONLY_FOR = {"wait": Action.GUIDE_THEN_TICKET, "notify_owner": Action.TICKET}

_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+\s*[dhms]\s*)+")
_PART = re.compile(r"(\d+)\s*([dhms])")


def _covers(first: Rule, later: Rule) -> bool:
    """Whether `first` matches every prediction `later` matches (so `later` never decides)."""
    every_fault, every_segment = frozenset(FAULTS), frozenset(Segment)
    return (
        (later.faults or every_fault) <= (first.faults or every_fault)
        and (later.segments or every_segment) <= (first.segments or every_segment)
        and first.min_probability <= later.min_probability
    )


class RuleParser(NodeReader):
    """Walks one composed document; `prefix` says which rule a message is about. The typed
    reads (fields, scalar, choice, items, flag, fail) are ``forewarn.yamlnodes.NodeReader``'s."""

    def __init__(self, source: str) -> None:
        super().__init__(source, RuleError)

    # ---- building blocks ------------------------------------------------------------------

    def choices(self, node: Node, options: Sequence[str], what: str, plural: str) -> frozenset[str]:
        """A non-empty list of distinct `options`."""
        items = self.items(node, plural, f"leave {plural} out to match every {what}")
        seen: set[str] = set()
        for item in items:
            value = self.choice(item, options, what)
            if value in seen:
                self.fail(item, f'{what} "{value}" is listed twice')
            seen.add(value)
        return frozenset(seen)

    def integer(self, node: Node, what: str, *, minimum: int) -> int:
        """A whole number no smaller than `minimum`."""
        value = self.scalar(node, what)
        if type(value) is not int:
            self.fail(node, f'{what} must be a whole number, not "{node.value}"')
        if value < minimum:
            self.fail(node, f"{what} must be at least {minimum}, not {value}")
        return value

    def fraction(self, node: Node, what: str, *, open_interval: bool) -> float:
        """A number between 0 and 1 (exclusive of both ends when `open_interval`)."""
        value = self.scalar(node, what)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if open_interval:
            inside, bounds = number and 0 < value < 1, "between 0 and 1, exclusive"
        else:
            inside, bounds = number and 0 <= value <= 1, "from 0 to 1"
        if not inside:
            self.fail(node, f'{what} must be a number {bounds}, not "{node.value}"')
        return float(value)

    def duration(self, node: Node, what: str) -> timedelta:
        """A positive duration written with units, largest first: 90s, 30m, 4h, 2d, 1h30m."""
        value = self.scalar(node, what)
        if isinstance(value, int | float) and not isinstance(value, bool):
            n = node.value
            self.fail(node, f"{what} {n} has no unit; add one: {n}s, {n}m, {n}h or {n}d")
        text = str(node.value).strip()
        if not isinstance(value, str) or not _DURATION.fullmatch(text):
            self.fail(
                node, f'{what} must be a duration like 90s, 30m, 4h, 2d or 1h30m, not "{text}"'
            )
        parts = _PART.findall(text)
        units = [unit for _, unit in parts]
        if units != sorted(set(units), key="dhms".index):
            self.fail(node, f'{what} "{text}": write each unit once, largest first (e.g. 1h30m)')
        total = timedelta(seconds=sum(int(count) * _SECONDS[unit] for count, unit in parts))
        if total <= timedelta():
            self.fail(node, f"{what} must be longer than 0")
        return total

    # ---- sections -------------------------------------------------------------------------

    def rule_set(self, root: Node) -> RuleSet:
        """The whole document."""
        if not isinstance(root, MappingNode):
            self.fail(
                root, f"a rule set must be a mapping with version and rules, not {kind_of(root)}"
            )
        top = self.fields(root, TOP_KEYS, name="", required=())
        if "version" not in top:
            self.fail(root, f'missing "version"; add "version: {VERSION}" at the top')
        version_node = top["version"][1]
        version = self.scalar(version_node, "version")
        if type(version) is not int or version != VERSION:
            self.fail(
                version_node,
                f'version "{version_node.value}" is not supported; this Forewarn reads version {VERSION}',
            )
        if "rules" not in top:
            self.fail(root, 'missing "rules"; a rule set needs at least one rule')
        tiers = clocks_parser.tiers(self, top["tiers"][1]) if "tiers" in top else default_tiers()
        rules = self.rules(top["rules"][1])
        clocks_parser.check_rules(self, rules, tiers)
        return RuleSet(
            rules=rules,
            sla=self.sla(top["sla"][1]) if "sla" in top else default_sla(),
            tiers=tiers,
            fleet=self.fleet(top["fleet"][1]) if "fleet" in top else FleetPolicy(),
            timing=self.timing(top.get("segments"), top.get("timing")),
            calendar=(
                clocks_parser.calendar(self, top["calendar"][1])
                if "calendar" in top
                else Calendar()
            ),
            source=self.source,
        )

    def timing(
        self, segments: tuple[Node, Node] | None, timing: tuple[Node, Node] | None
    ) -> Timing:
        """The segments and timing sections, which together make one ``Timing``."""
        values: dict[str, Any] = {}
        nodes: dict[str, Node] = {}
        if segments is not None:
            for key, (_, node) in self.fields(segments[1], SEGMENT_KEYS, name="segments").items():
                values[key], nodes[key] = self.integer(node, f"segments.{key}", minimum=1), node
        if timing is not None:
            for key, (_, node) in self.fields(timing[1], TIMING_KEYS, name="timing").items():
                what = f"timing.{key}"
                if key == "warn_at":
                    values[key] = self.fraction(node, what, open_interval=True)
                else:
                    values[key] = self.duration(node, what)
        result = Timing(**values)
        if result.novice_days >= result.senior_days:
            at = nodes.get("novice_days") or nodes["senior_days"]  # the defaults are in order
            self.fail(
                at,
                f"segments.novice_days ({result.novice_days}) must be less than "
                f"segments.senior_days ({result.senior_days})",
            )
        return result

    def shorter_then_longer(
        self, node: Node, name: str, short: str, long: str
    ) -> tuple[timedelta, timedelta]:
        """A mapping of exactly two durations, `short` shorter than `long`."""
        found = self.fields(node, (short, long), name=name, required=(short, long))
        short_node, long_node = found[short][1], found[long][1]
        first = self.duration(short_node, f"{name}.{short}")
        second = self.duration(long_node, f"{name}.{long}")
        if first >= second:
            self.fail(
                short_node,
                f"{name}.{short} ({short_node.value}) must be shorter than "
                f"its {long} ({long_node.value})",
            )
        return first, second

    def sla(self, node: Node) -> Mapping[Priority, Sla]:
        """The SLA table: every priority, each with first_response < resolution."""
        found = self.fields(node, PRIORITIES, name="sla", required=PRIORITIES)
        return {
            Priority(key): Sla(*self.shorter_then_longer(entry, f"sla.{key}", *SLA_KEYS))
            for key, (_, entry) in found.items()
        }

    def fleet(self, node: Node) -> FleetPolicy:
        """When many devices with one fault become one incident, and at which priority."""
        found = self.fields(node, ("min_devices", "window", "steps"), name="fleet")
        default = FleetPolicy()
        min_devices, window, steps = default.min_devices, default.window, default.steps
        if "min_devices" in found:
            min_devices = self.integer(found["min_devices"][1], "fleet.min_devices", minimum=2)
        if "window" in found:
            window = self.duration(found["window"][1], "fleet.window")
        first_at: Node | None = found["min_devices"][1] if "min_devices" in found else None
        if "steps" in found:
            parsed: list[tuple[int, Priority]] = []
            for index, step in enumerate(
                self.items(found["steps"][1], "fleet.steps", "leave steps out for the defaults"), 1
            ):
                name = f"fleet step {index}"
                fields = self.fields(
                    step, ("devices", "priority"), name=name, required=("devices", "priority")
                )
                devices_node = fields["devices"][1]
                devices = self.integer(devices_node, f"{name}: devices", minimum=2)
                priority = Priority(self.choice(fields["priority"][1], PRIORITIES, "priority"))
                if parsed and devices <= parsed[-1][0]:
                    self.fail(
                        devices_node,
                        f"fleet.steps must rise strictly in devices: step {index} has {devices}, "
                        f"step {index - 1} already {parsed[-1][0]}",
                    )
                if index == 1:
                    first_at = devices_node
                parsed.append((devices, priority))
            steps = tuple(parsed)
        if steps[0][0] != min_devices:
            self.fail(
                first_at or node,
                f"fleet.steps: the first step is at {steps[0][0]} devices but fleet.min_devices "
                f"is {min_devices}; they must be equal",
            )
        return FleetPolicy(min_devices=min_devices, window=window, steps=steps)

    def rules(self, node: Node) -> tuple[Rule, ...]:
        """The rules in order; names unique; none hidden behind an earlier, wider rule."""
        items = self.items(node, "rules", "a rule set needs at least one rule")
        parsed: list[Rule] = []
        for index, item in enumerate(items, 1):
            rule = self.rule(item, index, parsed)
            for earlier in parsed:
                if _covers(earlier, rule):
                    self._unreachable(earlier, rule)
            parsed.append(rule)
        return tuple(parsed)

    def _unreachable(self, earlier: Rule, rule: Rule) -> NoReturn:
        catch_all = not earlier.faults and not earlier.segments and not earlier.min_probability
        why = (
            "is a catch-all (no faults, segments or min_probability) and matches every prediction first"
            if catch_all
            else "comes first and matches every prediction this one would"
        )
        self.fail(
            rule.line,
            f'rule "{rule.name}" (line {rule.line}) can never match: rule "{earlier.name}" '
            f"(line {earlier.line}) {why}; move it above that rule, or remove it",
        )

    def rule(self, node: Node, index: int, earlier: Sequence[Rule]) -> Rule:
        """One rule; `earlier` holds the rules before it, for the unique-name check."""
        self.prefix = f"rule {index}: "
        if isinstance(node, MappingNode):  # name the rule in messages, even about its keys
            for key, value in node.value:
                if key.value == "name" and isinstance(value, ScalarNode):
                    self.prefix = f'rule "{value.value}": '
        else:
            self.fail(node, f"a rule must be a mapping (key: value), not {kind_of(node)}")
        found = self.fields(node, RULE_KEYS, name="", required=("name", "action"))
        name_node = found["name"][1]
        if not isinstance(name_node, ScalarNode) or not str(name_node.value).strip():
            self.fail(name_node, "name must be a non-empty text")
        name = str(name_node.value).strip()
        for other in earlier:
            if other.name == name:
                self.fail(
                    name_node,
                    f"the name is already used by the rule at line {other.line}; names must be unique",
                )
        action = Action(self.choice(found["action"][1], ACTIONS, "action"))
        values: dict[str, Any] = {"name": name, "action": action, "line": line_of(node)}
        if "faults" in found:
            values["faults"] = self.choices(found["faults"][1], FAULTS, "fault", "faults")
        if "segments" in found:
            segments = self.choices(found["segments"][1], SEGMENTS, "segment", "segments")
            values["segments"] = frozenset(Segment(s) for s in segments)
        for key, kind, options in (("priority", Priority, PRIORITIES), ("tier", Tier, TIERS)):
            if key in found:
                values[key] = kind(self.choice(found[key][1], options, key))
        if "min_probability" in found:
            values["min_probability"] = self.fraction(
                found["min_probability"][1], "min_probability", open_interval=False
            )
        for key, only in _ONLY_FOR.items():
            if key in found and action is not only:
                self.fail(found[key][0], f"{key} applies only to {only} rules, not to {action}")
        if "wait" in found:
            values["wait"] = self.duration(found["wait"][1], "wait")
        elif action is Action.GUIDE_THEN_TICKET:
            self.fail(
                node, "guide_then_ticket needs a wait (how long the guide gets), e.g. wait: 4h"
            )
        if "notify_owner" in found:
            values["notify_owner"] = self.flag(found["notify_owner"][1], "notify_owner")
        rule = Rule(**values)
        self.prefix = ""
        return rule
