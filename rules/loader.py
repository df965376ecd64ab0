"""Load a rule set from YAML and check it, naming the file and the line in every error.

    rules = load_rules()                          # the shipped rules/default.yaml
    rules = load_rules(Path("/etc/forewarn.yaml"))
    rules = parse_rules(text, source="upload")    # `source` stands for the file in messages

The document is composed into PyYAML nodes rather than loaded into dicts, so every key and
value keeps its position: a problem reads ``<file>:<line>: <problem>``, with the 1-based line
of the offending key or value. Unknown keys are errors (a typo would otherwise silently fall
back to a default), with a "did you mean" when one is close. Every error is a ``RuleError``.
The format is described in docs/rules.md.
"""

from __future__ import annotations

from pathlib import Path

from forewarn.errors import RuleError
from forewarn.yamlnodes import compose
from rules.parser import RuleParser
from rules.types import RuleSet


def default_rules_path() -> Path:
    """The rule set shipped with Forewarn: rules/default.yaml beside this module."""
    return Path(__file__).with_name("default.yaml")


def load_rules(path: Path | None = None) -> RuleSet:
    """Load and check the rule set at `path` (None: the shipped default)."""
    path = default_rules_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read the rule set: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RuleError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str) -> RuleSet:
    """Build and check a rule set from YAML text; `source` names it in error messages."""
    root = compose(text, source=source, error=RuleError, what="a rule set (version and rules)")
    try:
        return RuleParser(source).rule_set(root)
    except RecursionError as exc:
        raise RuleError(f"{source}:1: nested too deeply to be a rule set") from exc
