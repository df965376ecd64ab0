"""A survey and its answer. Frozen, slotted values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_COMMENT = 2000


@dataclass(frozen=True, slots=True)
class Answer:
    """What the owner said: is it fixed, how we did (1 to 5), and anything else."""

    fixed: bool
    rating: int
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Survey:
    """One survey: the resolution it asks about and where its answer stands."""

    survey_id: int
    ticket_id: int
    owner_id: str | None
    locale: str
    linked: bool
    created_at: datetime
    answer_by: datetime
    expires_at: datetime
    answered_at: datetime | None
    answered_via: str | None
    fixed: bool | None
    rating: int | None
    comment: str | None
    callback_at: datetime | None
    cancelled_at: datetime | None

    @property
    def subject(self) -> str:
        """What its link's token names."""
        return f"s{self.survey_id}"
