"""Owner notices: their kinds, the placeholders each may use, and the templates and words
(per language) they are written from. Frozen, slotted values."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from notifier.guides.select import locale_rank


class NoticeKind(enum.StrEnum):
    """Why Forewarn writes to an owner about a ticket."""

    TICKET_OPENED = "ticket_opened"  # number, what we saw, when a person contacts them
    HANDED_OVER = "ticket_handed_over"  # another tier took it, and when they take it up
    WAITING = "ticket_waiting"  # staff need something from the owner
    RESOLVED = "ticket_resolved"  # what was done; please confirm (the survey)
    REOPENED = "ticket_reopened"  # the owner said it is not fixed, or it came back
    STAFF_MESSAGE = "staff_message"  # a person's message, sent from the ticket


# Every notice may name the ticket, the owner, the device and what Forewarn saw.
COMMON = frozenset({"ticket", "owner_name", "device_name", "what_we_saw"})
PLACEHOLDERS: Mapping[NoticeKind, frozenset[str]] = {
    NoticeKind.TICKET_OPENED: COMMON | {"contact", "team"},
    NoticeKind.HANDED_OVER: COMMON | {"contact", "team"},
    NoticeKind.WAITING: COMMON | {"request", "agent"},
    NoticeKind.RESOLVED: COMMON | {"what_was_done", "note", "survey", "reopen_days"},
    NoticeKind.REOPENED: COMMON | {"team"},
    NoticeKind.STAFF_MESSAGE: COMMON | {"text", "agent"},
}
# The survey lines of the words file fill {survey}; they may name the link and its expiry.
SURVEY_PLACEHOLDERS = frozenset({"link", "expires", "answer_within", "reopen_days"})
# The contact lines fill {contact}: when a person takes the ticket up, or, when the notice
# could only go out after that time (quiet hours), that they will as soon as they can.
CONTACT_PLACEHOLDERS = frozenset({"team", "respond_by", "respond_within"})
WORD_SECTIONS = ("faults", "codes", "tiers")


@dataclass(frozen=True, slots=True)
class Template:
    """One notice in one language: a title and a plain-text body with placeholders."""

    kind: NoticeKind
    locale: str
    title: str
    body: str
    source_path: str


@dataclass(frozen=True, slots=True)
class Words:
    """One language's words for what notices name: faults as an owner would see them,
    resolution codes as what was done, tiers as who works on it, and the survey lines."""

    locale: str
    faults: Mapping[str, str]
    codes: Mapping[str, str]
    tiers: Mapping[str, str]
    survey: str  # with a link: {link}, {expires}
    no_survey: str  # without one: the call-back will ask
    contact_by: str  # {team} contacts you by {respond_by} (within {respond_within})
    contact_soon: str  # the notice went out after that time: as soon as they can
    source_path: str


@dataclass(frozen=True, slots=True)
class Library:
    """Every template and every language's words, all checked."""

    templates: tuple[Template, ...]
    words: tuple[Words, ...]

    def template(self, kind: NoticeKind, locale: str) -> Template:
        """The template of `kind` the owner reads best (their locale, else their language,
        else English); every kind exists in English, the loader checks that."""
        return max(
            (t for t in self.templates if t.kind is kind),
            key=lambda t: (locale_rank(t.locale, locale), t.locale == "en-US"),
        )

    def words_for(self, locale: str) -> Words:
        """The words in the language `template` chose for the same locale."""
        return max(self.words, key=lambda w: (locale_rank(w.locale, locale), w.locale == "en-US"))


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice rendered for one owner: what goes in the outbox."""

    kind: NoticeKind
    locale: str
    title: str
    body: str
