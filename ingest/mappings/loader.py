"""Load payload mapping files, naming the file and the line in every error.

    mappings = load_mappings([Path("tasmota.yaml"), Path("esphome.yaml")])
    mappings = parse_mappings(text, source="upload")

Several files make one ``MappingSet``, in the order given; mapping names must be unique
across them (a reading's ``source`` is ``mapping:<name>``). Every error is a ``MappingError``.
The format is described in docs/telemetry.md; examples ship in ``ingest/mappings/examples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from forewarn.errors import MappingError
from forewarn.yamlnodes import compose
from ingest.mappings.parser import MappingParser
from ingest.mappings.types import IgnoreRule, Mapping, MappingSet

EXAMPLES = Path(__file__).with_name("examples")


def example_path(name: str) -> Path:
    """A shipped example mapping file (``esphome``, ``tasmota``)."""
    return EXAMPLES / f"{name}.yaml"


def parse_mappings(text: str, *, source: str) -> MappingSet:
    """Build and check the mappings of one YAML text; `source` names it in error messages."""
    root = compose(text, source=source, error=MappingError, what="a mapping file")
    try:
        mappings, ignore = MappingParser(source).document(root)
    except RecursionError as exc:
        raise MappingError(f"{source}:1: nested too deeply to be a mapping file") from exc
    return _combined([(mappings, ignore, source)])


def load_mappings(paths: Sequence[Path]) -> MappingSet:
    """Load and check every file, in order, into one set."""
    parts = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(
                f"{path}: cannot read the mapping file: {exc.strerror or exc}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise MappingError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from exc
        one = parse_mappings(text, source=str(path))
        parts.append((list(one.mappings), list(one.ignore), str(path)))
    return _combined(parts)


def _combined(parts: Sequence[tuple[list[Mapping], list[IgnoreRule], str]]) -> MappingSet:
    seen: dict[str, Mapping] = {}
    mappings: list[Mapping] = []
    ignore: list[IgnoreRule] = []
    for found, ignored, _ in parts:
        for m in found:
            if m.name in seen:
                first = seen[m.name]
                raise MappingError(
                    f'{m.file}:{m.line}: mapping name "{m.name}" is already used '
                    f"({first.file}:{first.line}); names must be unique"
                )
            seen[m.name] = m
            mappings.append(m)
        ignore.extend(ignored)
    return MappingSet(tuple(mappings), tuple(ignore), tuple(source for *_, source in parts))
