"""Migration 12: the support team's process as the standard writes it (issue 17). Tickets made
by a person (an owner's call, a complaint, a warranty question) with their type, the
contact person and department the standard's intake lists, who made them, and the complaint
clock (urgent; contact within 30 minutes, feedback within 24 hours, follow-up within a week).
Plain SQL common to both storage paths."""

from __future__ import annotations

INTAKE = """
ALTER TABLE tickets DROP CONSTRAINT tickets_kind_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_kind_check
    CHECK (kind IN ('device', 'fleet', 'owner', 'staff'));

-- Every ticket so far was about a (predicted) fault or an owner's message about one.
ALTER TABLE tickets
    ADD COLUMN ticket_type text NOT NULL DEFAULT 'fault'
        CHECK (ticket_type IN ('fault', 'question', 'complaint', 'warranty')),
    ADD COLUMN contact_person text,        -- personal data: erased with the contact
    ADD COLUMN department text,
    ADD COLUMN created_by text,            -- the agent or integration that made the ticket
    ADD COLUMN channel text,               -- how it came in: phone, email, form, chat, other
    ADD COLUMN urgent boolean NOT NULL DEFAULT false,
    ADD COLUMN feedback_due timestamptz,   -- complaints: corrective action told to the customer
    ADD COLUMN follow_up_due timestamptz,  -- complaints: the customer called back to confirm
    ADD COLUMN follow_up_done_at timestamptz,
    ADD CONSTRAINT tickets_complaint_dues CHECK (
        ticket_type <> 'complaint' OR (feedback_due IS NOT NULL AND follow_up_due IS NOT NULL));

CREATE INDEX tickets_type ON tickets (ticket_type, opened_at);
"""
