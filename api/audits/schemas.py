"""The ticket audit API's request and response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditOut(BaseModel):
    """One audited ticket and its checklist (standard 4.2)."""

    audit_id: int
    week: date = Field(description="The Monday its week starts (UTC)")
    ticket_id: int
    priority: str
    tier: str
    ticket_type: str
    assignee: str | None
    closed_at: datetime | None
    outcome: str = Field(description="pending, passed (every item holds) or failed")
    info_complete: bool | None = Field(description="The ticket's information is complete")
    steps_standard: bool | None = Field(description="Resolution steps follow the standard")
    feedback_recorded: bool | None = Field(description="The customer's feedback is recorded")
    notes: str | None
    audited_by: str | None
    audited_at: datetime | None


class AuditWeek(BaseModel):
    """A week's sample: 10 % of the tickets closed that week, rounded up."""

    week: date
    seed: int | None = Field(description="What the draw was seeded with (null: nothing drawn)")
    closed: int = Field(description="Tickets closed in the week (withdrawn ones left out)")
    sampled: int
    passed: int
    failed: int
    pending: int
    items: list[AuditOut]

    @classmethod
    def of(cls, week: date, closed: int, rows: list[dict[str, Any]]) -> AuditWeek:
        """The response for a week's rows."""
        items = [AuditOut.model_validate(r) for r in rows]
        outcomes = [i.outcome for i in items]
        return cls(
            week=week,
            seed=int(rows[0]["seed"]) if rows else None,
            closed=closed,
            sampled=len(items),
            passed=outcomes.count("passed"),
            failed=outcomes.count("failed"),
            pending=outcomes.count("pending"),
            items=items,
        )


class DrawIn(BaseModel):
    """Draw a week's sample."""

    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="Left out: derived from the week, so anyone can repeat the draw",
    )


class Checklist(BaseModel):
    """An audited ticket's checklist."""

    info_complete: bool = Field(description="Customer, problem and product recorded in full")
    steps_standard: bool = Field(description="The resolution steps follow the standard")
    feedback_recorded: bool = Field(description="The customer's feedback is recorded")
    notes: str | None = Field(default=None, max_length=2000)
