"""Migration 5: what Forewarn does with predictions (guides, snoozes, incidents, tickets, the
notification outbox). Plain SQL common to both storage paths: none of these tables is a
time series big enough to need a hypertable."""

from __future__ import annotations

ACTING = """
-- The knowledge base: one row per guide and locale, loaded from guides/*.md.
CREATE TABLE guides (
    guide_id text NOT NULL,
    locale text NOT NULL,
    category text NOT NULL
        CHECK (category IN ('basic', 'troubleshooting', 'technical', 'after_sales')),
    fault text,                             -- NULL: not about a fault (onboarding, processes)
    audience text NOT NULL DEFAULT 'all' CHECK (audience IN ('all', 'novice', 'senior')),
    kinds text[] NOT NULL DEFAULT '{}',     -- empty: every kind of product
    models text[] NOT NULL DEFAULT '{}',    -- empty: every model
    firmware_min text,                      -- inclusive, dotted numbers; NULL: no bound
    firmware_max text,
    title text NOT NULL,
    problem text NOT NULL,
    scenario text NOT NULL,
    steps text[] NOT NULL,
    cautions text[] NOT NULL DEFAULT '{}',
    source_path text NOT NULL,
    sha256 text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guide_id, locale)
);
CREATE INDEX guides_fault ON guides (fault, locale);

-- Snooze or maintenance windows: for one device, or for a firmware cohort (model + firmware).
CREATE TABLE snoozes (
    snooze_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text,
    model text,
    firmware text,
    fault text,                             -- NULL: every fault
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    reason text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((device_id IS NOT NULL) <> (model IS NOT NULL AND firmware IS NOT NULL)),
    CHECK (ends_at > starts_at)
);
CREATE INDEX snoozes_device ON snoozes (device_id, ends_at);
CREATE INDEX snoozes_cohort ON snoozes (model, firmware, ends_at);

-- Many devices of one model and firmware with the same fault: one incident, one L3 ticket.
CREATE TABLE fleet_incidents (
    fleet_incident_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model text NOT NULL,
    firmware text NOT NULL,
    fault text NOT NULL,
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    devices integer NOT NULL DEFAULT 0,
    priority text NOT NULL CHECK (priority IN ('critical', 'major', 'minor')),
    ticket_id bigint
);
CREATE UNIQUE INDEX fleet_incidents_one_open ON fleet_incidents (model, firmware, fault)
    WHERE closed_at IS NULL;

-- One device's predicted fault from first prediction to recovery or closure. The partial
-- unique index is what makes two racing responders open one incident, never two.
CREATE TABLE incidents (
    incident_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text NOT NULL,
    fault text NOT NULL,
    owner_id text,
    segment text NOT NULL CHECK (segment IN ('novice', 'regular', 'senior', 'enterprise')),
    rule text NOT NULL,
    state text NOT NULL CHECK (state IN ('watching', 'guided', 'ticketed', 'closed')),
    opened_at timestamptz NOT NULL,
    last_predicted_at timestamptz NOT NULL,
    probability real NOT NULL,
    max_probability real NOT NULL,
    hours_to_empty real,
    reasons text[] NOT NULL DEFAULT '{}',
    model_version integer,
    guide_id text,
    guide_sent_at timestamptz,
    ticket_due_at timestamptz,              -- guide first: the ticket opens then if not recovered
    ticket_id bigint,
    fleet_incident_id bigint REFERENCES fleet_incidents (fleet_incident_id),
    recurrence_of bigint REFERENCES incidents (incident_id),
    recovered_at timestamptz,
    closed_at timestamptz,
    outcome text CHECK (outcome IN ('recovered_after_guide', 'recovered', 'ticket_closed')),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (device_id, fault) WHERE closed_at IS NULL;
CREATE INDEX incidents_device_history ON incidents (device_id, fault, opened_at);
CREATE INDEX incidents_open_state ON incidents (state) WHERE closed_at IS NULL;

CREATE TABLE tickets (
    ticket_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('device', 'fleet')),
    incident_id bigint REFERENCES incidents (incident_id),
    fleet_incident_id bigint REFERENCES fleet_incidents (fleet_incident_id),
    parent_ticket_id bigint REFERENCES tickets (ticket_id),
    customer_id text,
    contact text,
    device_id text,
    model text,
    firmware text,
    fault text NOT NULL,
    symptom text NOT NULL,
    trigger text NOT NULL,
    scope text NOT NULL,
    evidence jsonb NOT NULL DEFAULT '{}',
    segment text,
    priority text NOT NULL CHECK (priority IN ('critical', 'major', 'minor')),
    tier text NOT NULL CHECK (tier IN ('L1', 'L2', 'L3')),
    team text NOT NULL,
    state text NOT NULL DEFAULT 'new'
        CHECK (state IN ('new', 'acknowledged', 'in_progress', 'resolved', 'closed')),
    guide_sent boolean NOT NULL DEFAULT false,
    opened_at timestamptz NOT NULL,
    first_response_due timestamptz NOT NULL,
    resolution_due timestamptz NOT NULL,
    tier_since timestamptz NOT NULL,
    tier_respond_due timestamptz NOT NULL,  -- this tier must acknowledge by then...
    tier_solve_due timestamptz NOT NULL,    -- ...and solve by then, or the ticket escalates
    tier_acknowledged_at timestamptz,
    first_response_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    assignee text,
    resolution_code text,
    reopened integer NOT NULL DEFAULT 0,
    escalations integer NOT NULL DEFAULT 0,
    warned_at timestamptz,                  -- breach warning raised for the current due
    breached_at timestamptz,                -- a due passed at the top tier
    recovery_suggested_at timestamptz,
    recurrence_of bigint REFERENCES tickets (ticket_id),
    recurrences integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX tickets_open_due ON tickets (tier_respond_due) WHERE state NOT IN ('resolved', 'closed');
CREATE INDEX tickets_device ON tickets (device_id, fault, opened_at);
CREATE INDEX tickets_parent ON tickets (parent_ticket_id);
ALTER TABLE incidents ADD FOREIGN KEY (ticket_id) REFERENCES tickets (ticket_id);
ALTER TABLE fleet_incidents ADD FOREIGN KEY (ticket_id) REFERENCES tickets (ticket_id);

-- A ticket's timeline: every state change, escalation, warning, comment and link.
CREATE TABLE ticket_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets (ticket_id),
    at timestamptz NOT NULL,
    kind text NOT NULL,
    actor text NOT NULL DEFAULT 'forewarn',
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, at);

-- The outbox: written in the same transaction as the decision that caused it, sent by the
-- dispatcher. `key` makes a decision taken twice one notification. A row claimed for sending
-- ('sending') that never got a result was interrupted by a crash: it is never sent again.
CREATE TABLE notifications (
    notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE,
    channel text NOT NULL CHECK (channel IN ('apprise', 'ticket_sink')),
    audience text NOT NULL CHECK (audience IN ('owner', 'staff', 'helpdesk')),
    target text NOT NULL,                   -- an Apprise URL, 'tag:<tags>', or a sink name
    title text NOT NULL,
    body text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    owner_id text,
    device_id text,
    incident_id bigint REFERENCES incidents (incident_id),
    ticket_id bigint REFERENCES tickets (ticket_id),
    guide_id text,
    locale text,
    created_at timestamptz NOT NULL,
    not_before timestamptz NOT NULL,        -- business time: quiet hours push this later
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'interrupted')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),  -- wall time: backoff
    claimed_by text,
    claimed_at timestamptz,
    sent_at timestamptz,
    last_error text
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_owner ON notifications (owner_id, created_at);

CREATE TABLE notification_attempts (
    notification_id bigint NOT NULL REFERENCES notifications (notification_id),
    attempt integer NOT NULL,
    target text NOT NULL,                   -- redacted: no tokens or passwords
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    ok boolean,
    error text,
    PRIMARY KEY (notification_id, attempt)
);

-- Where the responder has read predictions up to (one row per responder name).
CREATE TABLE responder_cursors (
    name text PRIMARY KEY,
    updated_after timestamptz NOT NULL
);
"""
