"""Routes: /api/v1/rules, the running rule set, checking YAML and dry runs on a device.

None of them changes anything, so every role may call them (Reader): validating a rule set
and replaying one read only. Replacing the running rule set is a deployment step (edit the
file at ``rules_path``, restart), not an API call.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ClockDep, ConnDep, Reader, RulesDep
from api.responses import AUTH, INVALID, NOT_FOUND
from api.rules import flows
from api.rules.schemas import DryRun, DryRunRequest, RuleSetBody, Validation, YamlText

router = APIRouter(prefix="/api/v1/rules", tags=["rules"], responses=AUTH)


@router.get(
    "",
    response_model=RuleSetBody,
    summary="The running rule set",
    description=(
        "The rule set the service decides by: its rules in matching order (the first that "
        "matches a prediction decides it), the SLA table, the tiers, the fleet policy and the "
        "timing windows; with its file's path and text. Durations read as in rule files "
        "(`30m`, `6h`)."
    ),
)
def get_rules(rules: RulesDep, who: Reader) -> RuleSetBody:
    """The running rule set."""
    return flows.describe(rules)


@router.post(
    "/validate",
    response_model=Validation,
    summary="Check a rule set",
    description=(
        "Load YAML text as the service would load a rule file. A broken rule set is still a "
        "200: `valid` is false and `errors` holds the loader's message, naming the line and "
        "the problem (unknown keys with a did-you-mean, durations without units, rules an "
        "earlier rule hides...). Nothing is stored or applied."
    ),
)
def validate(body: YamlText, who: Reader) -> Validation:
    """Check a rule set."""
    return flows.validate(body.yaml, source=body.source)


@router.post(
    "/dry-run",
    response_model=DryRun,
    summary="Replay a device's predictions",
    description=(
        "Replay the device's stored predictions of the last `hours` of business time through "
        "the running rule set, or the one in `yaml`, and show what each would lead to: the "
        "verdict, the rule, the segment, the guide or ticket with its priority, tier and dues, "
        "and why. The replay starts from an empty history (no stored incidents, cooldowns or "
        "snoozes) and carries only its own decisions forward: a fault it opened an incident "
        "for is then tracked, a guide it sent starts the owner's cooldown. Recoveries and "
        "fleet incidents are not replayed. It reads in a read-only transaction that is rolled "
        "back: nothing is written and nothing is sent. 404 for an unknown device; 422 when "
        "`yaml` is not a valid rule set."
    ),
    responses=NOT_FOUND | INVALID,
)
def dry_run(
    body: DryRunRequest, conn: ConnDep, clock: ClockDep, rules: RulesDep, who: Reader
) -> DryRun:
    """Replay a device's predictions."""
    chosen = rules if body.yaml is None else flows.parse(body.yaml, source=body.source)
    return flows.dry_run(
        conn, rules=chosen, device_id=body.device_id, hours=body.hours, now=clock.now()
    )
