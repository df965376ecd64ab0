"""What the survey page reads and posts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from notifier.surveys.types import MAX_COMMENT


class SurveyInfo(BaseModel):
    """What the page shows: the resolution it asks about, in the owner's language."""

    ticket_id: int
    locale: str = Field(description="The owner's locale: the page's language")
    device: str = Field(description="What the owner calls the product: lock, 门锁...")
    what_was_done: str = Field(description="The resolution, in the owner's words")
    expires_at: datetime
    answered: bool
    cancelled: bool = Field(description="The ticket was reopened: the survey no longer applies")


class SurveyAnswer(BaseModel):
    """The owner's answers."""

    fixed: bool = Field(description="Is the problem really fixed? false reopens the ticket")
    rating: int = Field(ge=1, le=5, description="How we did, 1 (bad) to 5 (very good)")
    comment: str = Field(default="", max_length=MAX_COMMENT)


class SurveyThanks(BaseModel):
    """What answering did."""

    reopened: bool = Field(description="The ticket is open again: the owner said not fixed")
