"""The payload adapter that reads topics through declarative mapping files, and reloads them.

The active set is an immutable ``MappingSet`` swapped in whole by ``reload``: a message is
parsed entirely by the old set or entirely by the new one, and nothing is disconnected or
dropped meanwhile. A file that fails to load leaves the old set in place (the error names the
file and the line). New topic patterns need new subscriptions: the ingester compares
``subscriptions()`` before and after a reload and subscribes what is new.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from forewarn.domain import Ignored, Parsed
from forewarn.errors import TopicError, ValidationError
from ingest.mappings.apply import reading, status_event, text_value
from ingest.mappings.loader import load_mappings
from ingest.mappings.types import MappingSet, lookup, path_text
from ingest.payloads import decode_object
from ingest.timestamps import TimeWindow

log = logging.getLogger(__name__)

Stamp = tuple[int, int] | None  # (mtime_ns, size) of a file, None when it is missing


class MappingAdapter:
    """Topics read by the mappings of the configured files."""

    __slots__ = ("_paths", "_set", "_stamps", "_window")
    name = "mappings"

    def __init__(
        self, paths: Sequence[Path], window: TimeWindow, *, mappings: MappingSet | None = None
    ) -> None:
        self._paths = tuple(Path(p) for p in paths)
        self._window = window
        self._stamps = self._stat()
        self._set = load_mappings(self._paths) if mappings is None else mappings

    @property
    def mappings(self) -> MappingSet:
        """The active set."""
        return self._set

    def subscriptions(self) -> Sequence[str]:
        """One filter per topic pattern."""
        return self._set.filters()

    def accepts(self, topic: str) -> bool:
        """Topics some mapping or ignore rule matches."""
        current = self._set
        return any(m.topic.match(topic) is not None for m in current.mappings) or any(
            rule.topic.match(topic) is not None for rule in current.ignore
        )

    def ignores(self, topic: str) -> str | None:
        """The reason of the first ignore rule matching the topic."""
        for rule in self._set.ignore:
            if rule.topic.match(topic) is not None:
                return rule.reason
        return None

    def watches(self) -> Sequence[str]:
        """Mappings watch no retained topics."""
        return ()

    def observe(self, topic: str, payload: bytes) -> None:
        """Nothing to learn."""

    def parse(self, topic: str, payload: bytes, *, received_at: datetime) -> Parsed:
        """The first mapping whose topic (and ``when``) fits reads the message."""
        current = self._set
        why = self.ignores(topic)
        if why:
            return Ignored(topic, why)
        candidates = [(m, s) for m in current.mappings if (s := m.topic.match(topic)) is not None]
        if not candidates:
            raise TopicError("no mapping matches this topic")
        if not payload.strip():
            return Ignored(topic, "empty message (a cleared retained topic)")
        doc = None
        for mapping, slots in candidates:
            if mapping.payload == "json" and doc is None:
                doc = decode_object(payload)
            if mapping.when is not None and lookup(doc, mapping.when)[0] is None:
                continue
            if mapping.status is not None:
                return status_event(mapping, slots, payload, doc, received_at)
            if mapping.payload == "text":
                key = mapping.text_key.render(slots, None) if mapping.text_key else "value"
                body = {key or "value": text_value(payload)}
                return reading(mapping, slots, body, received_at=received_at, window=self._window)
            rooted = doc
            if mapping.root is not None:
                rooted, _ = lookup(doc, mapping.root)
                if not isinstance(rooted, dict):
                    where = path_text(mapping.root)
                    raise ValidationError(f"mapping {mapping.name}: {where} is not a JSON object")
            return reading(mapping, slots, rooted, received_at=received_at, window=self._window)
        names = ", ".join(m.name for m, _ in candidates)
        return Ignored(topic, f"no mapping's condition (when) holds; tried {names}")

    # reloading -------------------------------------------------------------------------

    def _stat(self) -> tuple[Stamp, ...]:
        stamps: list[Stamp] = []
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def changed(self) -> bool:
        """Whether a mapping file changed on disk since it was last loaded."""
        return self._stat() != self._stamps

    def reload(self) -> MappingSet:
        """Load the files again and swap the new set in; MappingError (old set kept) if a file
        cannot be loaded. The stamps move on either way, so a broken file is reported once."""
        stamps = self._stat()
        try:
            fresh = load_mappings(self._paths)
        finally:
            self._stamps = stamps
        self._set = fresh
        log.info(
            "mappings reloaded: %d mappings from %s",
            len(fresh.mappings),
            ", ".join(map(str, self._paths)),
        )
        return fresh
