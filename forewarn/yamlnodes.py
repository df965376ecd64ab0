"""Reading YAML configuration with positions: every error names the file and the line.

    root = compose(text, source="mappings.yaml", error=MappingError)
    reader = NodeReader("mappings.yaml", MappingError)
    top = reader.fields(root, ("version", "mappings"), name="", required=("version",))

The document is composed into PyYAML nodes rather than loaded into dicts, so every key and
value keeps its mark: a problem reads ``<file>:<line>: <problem>``. Unknown keys are errors
with a "did you mean" when one is close, because a typo would otherwise silently fall back to
a default. The rule set (``rules.parser.RuleParser``) and the payload mappings read through it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from forewarn.errors import ConfigError


def line_of(at: Node | int) -> int:
    """The 1-based line of a node (or the line itself)."""
    return at if isinstance(at, int) else at.start_mark.line + 1


def kind_of(node: Node) -> str:
    """How a node reads in a message: a mapping, a list, or its quoted value."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f'"{node.value}"'


def suggest(word: str, options: Sequence[str]) -> str:
    """``did you mean "x"? (expected one of ...)``, or just the options when none is close."""
    folded = {option.casefold(): option for option in options}
    close = difflib.get_close_matches(word.casefold(), folded, n=1, cutoff=0.6)
    expected = f"expected one of {', '.join(options)}"
    return f'did you mean "{folded[close[0]]}"? ({expected})' if close else expected


def syntax_error(exc: yaml.MarkedYAMLError) -> str:
    """``<line>: YAML syntax error: <problem>`` at the line a person would look at."""
    context = exc.context_mark
    # "could not find expected ':'" is noticed on the line after the key that lacks it.
    simple_key = exc.context == "while scanning a simple key" and context is not None
    mark = context if simple_key else exc.problem_mark or context
    line = mark.line + 1 if mark else 1
    where = f" at line {context.line + 1}" if context and context.line + 1 != line else ""
    if exc.context and exc.problem and exc.problem.startswith("but "):
        problem = f"{exc.context}{where}, {exc.problem}"
    elif exc.context and exc.problem:
        problem = f"{exc.problem} ({exc.context}{where})"
    else:
        problem = exc.problem or exc.context or str(exc)
    if "'\\t'" in problem:
        problem += "; indent with spaces, YAML does not allow tabs"
    return f"{line}: YAML syntax error: {problem}"


def compose(text: str, *, source: str, error: type[ConfigError], what: str) -> Node:
    """The document's root node; `error` (naming `source` and the line) if it is not YAML."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise error(f"{source}:{syntax_error(exc)}") from exc
    except yaml.YAMLError as exc:  # a ReaderError: a character YAML does not allow
        line = text.count("\n", 0, getattr(exc, "position", 0)) + 1
        raise error(f"{source}:{line}: not readable as YAML: {exc}") from exc
    except RecursionError as exc:  # composing "[[[[..." nests Python calls as deep
        raise error(f"{source}:1: nested too deeply to be {what}") from exc
    if root is None:
        raise error(f"{source}:1: the file is empty; expected {what}")
    return root


class NodeReader:
    """Typed access to composed nodes; every failure raises `error` at the node's line."""

    def __init__(self, source: str, error: type[ConfigError]) -> None:
        self.source = source
        self.error = error
        self.prefix = ""  # says which entry a message is about, e.g. 'mapping "tasmota": '
        self._constructor = SafeConstructor()

    def fail(self, at: Node | int, problem: str, cause: BaseException | None = None) -> NoReturn:
        """Raise ``<source>:<line>: <prefix><problem>``."""
        exc = self.error(f"{self.source}:{line_of(at)}: {self.prefix}{problem}")
        if cause is None:
            raise exc
        raise exc from cause

    def fields(
        self, node: Node, allowed: Sequence[str], *, name: str, required: Iterable[str] = ()
    ) -> dict[str, tuple[Node, Node]]:
        """The (key node, value node) pairs of a mapping whose keys must all be `allowed`."""
        within = f" in {name}" if name else ""
        if not isinstance(node, MappingNode):
            self.fail(node, f"{name or 'this'} must be a mapping (key: value), not {kind_of(node)}")
        found: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.fail(key, f"keys must be plain words, not {kind_of(key)}")
            if key.tag == "tag:yaml.org,2002:merge":
                self.fail(key, "merge keys (<<) are not supported; write the keys out")
            word = str(key.value)
            if word in found:
                first = line_of(found[word][0])
                self.fail(key, f'"{word}" is given twice{within} (first at line {first})')
            if allowed and word not in allowed:
                self.fail(key, f'unknown key "{word}"{within}; {suggest(word, allowed)}')
            found[word] = (key, value)
        for word in required:
            if word not in found:
                self.fail(node, f'missing "{word}"{within}')
        return found

    def scalar(self, node: Node, what: str) -> Any:
        """The value of a single-value node, typed the way YAML reads it."""
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be a single value, not {kind_of(node)}")
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:
            self.fail(node, f'{what}: cannot read "{node.value}"', exc)

    def text(self, node: Node, what: str) -> str:
        """A non-empty piece of text (numbers are taken as written)."""
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be text, not {kind_of(node)}")
        value = str(node.value)
        if not value.strip():
            self.fail(node, f"{what} is empty")
        return value

    def number(self, node: Node, what: str) -> float:
        """A number (int or float, not a boolean)."""
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(node, f'{what} must be a number, not "{node.value}"')
        return float(value)

    def flag(self, node: Node, what: str) -> bool:
        """true or false."""
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            self.fail(node, f'{what} must be true or false, not "{node.value}"')
        return value

    def choice(self, node: Node, options: Sequence[str], what: str) -> str:
        """One of `options`, spelled exactly."""
        if not isinstance(node, ScalarNode):
            self.fail(node, f"{what} must be one of {', '.join(options)}, not {kind_of(node)}")
        if node.value not in options:
            self.fail(node, f'unknown {what} "{node.value}"; {suggest(str(node.value), options)}')
        return str(node.value)

    def items(self, node: Node, what: str, if_empty: str) -> list[Node]:
        """The entries of a non-empty list."""
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{what} must be a list (- item, or [a, b]), not {kind_of(node)}")
        if not node.value:
            self.fail(node, f"{what} is an empty list; {if_empty}")
        return list(node.value)
