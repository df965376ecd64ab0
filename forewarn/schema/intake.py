"""Migration 12: the support team's process as the standard writes it (issue 17). Tickets made
by a person (an owner's call, a complaint, a warranty question) with their type, the
contact person and department the standard's intake lists, who made them, and the complaint
clock (urgent; contact within 30 minutes, feedback within 24 hours, follow-up within a week);
guide governance (first-line keys view, agents edit, reviewers publish; every version kept
with its editor, time and diff); the weekly ticket audit. Plain SQL common to both storage paths."""

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
    -- The symptom and trigger as codes and values, so each language can say them (the
    -- `symptom` and `trigger` text columns keep the English for the helpdesk and the API).
    ADD COLUMN phrasing jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT tickets_complaint_dues CHECK (
        ticket_type <> 'complaint' OR (feedback_due IS NOT NULL AND follow_up_due IS NOT NULL));

CREATE INDEX tickets_type ON tickets (ticket_type, opened_at);

-- Tiers of the knowledge base (standard 5.2): first line views, L2/L3 edit, R&D reviews.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'first_line', 'agent', 'reviewer', 'integration', 'admin'));

-- Every version of a guide written through the API: draft -> in_review -> published (the
-- `guides` row owners are sent and search reads is only ever a published version), or
-- rejected; a newer version supersedes the older ones. `diff` is against the version it
-- replaces (the published guide, or nothing for a new one).
CREATE TABLE guide_versions (
    version_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guide_id text NOT NULL,
    locale text NOT NULL,
    version integer NOT NULL,
    state text NOT NULL
        CHECK (state IN ('draft', 'in_review', 'published', 'superseded', 'rejected')),
    content jsonb NOT NULL,
    sha256 text NOT NULL,
    diff text NOT NULL,
    editor text NOT NULL,
    edited_at timestamptz NOT NULL,
    submitted_by text,
    submitted_at timestamptz,
    reviewer text,
    reviewed_at timestamptz,
    note text,
    UNIQUE (guide_id, locale, version)
);
CREATE INDEX guide_versions_open ON guide_versions (guide_id, locale)
    WHERE state IN ('draft', 'in_review');

-- The weekly audit (standard 4.2): 10 % of the week's closed tickets, drawn with a seed so
-- the draw can be repeated, each checked against the checklist: information complete,
-- resolution steps as the standard writes them, the customer's feedback recorded.
CREATE TABLE ticket_audits (
    audit_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    week date NOT NULL,                     -- the Monday the week starts (UTC)
    ticket_id bigint NOT NULL REFERENCES tickets (ticket_id),
    seed bigint NOT NULL,
    drawn_at timestamptz NOT NULL,
    drawn_by text NOT NULL,
    outcome text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'passed', 'failed')),
    info_complete boolean,
    steps_standard boolean,
    feedback_recorded boolean,
    notes text,
    audited_by text,
    audited_at timestamptz,
    UNIQUE (week, ticket_id)
);
CREATE INDEX tickets_closed_at ON tickets (closed_at) WHERE closed_at IS NOT NULL;
"""
