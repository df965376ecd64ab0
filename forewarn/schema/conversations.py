"""Migration 11: talking with owners (issue 16). Tickets remember the tier they opened at (FCR
leaves out tickets opened at L2 or L3), may wait for the owner, may be opened by an owner's
message, and carry a call-back task; surveys after each resolution; owners' replies as they
arrived (their ids are the replay guard); the onboarding each owner got per product kind.
Plain SQL common to both storage paths. Owners themselves are not changed here."""

from __future__ import annotations

CONVERSATIONS = """
-- The tier a ticket opened at. Filled by a trigger so every writer sets it; tickets opened
-- before this migration take the tier their 'opened' event named, else their current tier if
-- they never moved, else L1 (device tickets open at L1 unless a rule said otherwise, and
-- those rules wrote the tier into the event).
ALTER TABLE tickets ADD COLUMN opened_tier text CHECK (opened_tier IN ('L1', 'L2', 'L3'));
UPDATE tickets t SET opened_tier = coalesce(
    (SELECT e.detail->>'tier' FROM ticket_events e
      WHERE e.ticket_id = t.ticket_id AND e.kind = 'opened' AND e.detail->>'tier' IS NOT NULL
      ORDER BY e.event_id LIMIT 1),
    CASE WHEN t.kind = 'fleet' THEN 'L3' END,
    CASE WHEN t.escalations = 0 THEN t.tier END,
    'L1');
CREATE FUNCTION forewarn_ticket_opened_tier() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.opened_tier := coalesce(NEW.opened_tier, NEW.tier);
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_opened_tier BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION forewarn_ticket_opened_tier();
ALTER TABLE tickets ALTER COLUMN opened_tier SET NOT NULL;

-- 'waiting': staff asked the owner for something; the owner's reply puts it back in progress.
ALTER TABLE tickets DROP CONSTRAINT tickets_state_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_state_check CHECK (state IN
    ('new', 'acknowledged', 'in_progress', 'waiting', 'resolved', 'closed'));
-- 'owner': opened by an owner's message that matched no open ticket or incident.
ALTER TABLE tickets DROP CONSTRAINT tickets_kind_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_kind_check CHECK (kind IN ('device', 'fleet', 'owner'));
-- The call-back task: the survey went unanswered; an agent is to call the owner.
ALTER TABLE tickets ADD COLUMN callback_due_at timestamptz, ADD COLUMN callback_done_at timestamptz;
CREATE INDEX tickets_callback ON tickets (callback_due_at)
    WHERE callback_due_at IS NOT NULL AND callback_done_at IS NULL;
CREATE INDEX tickets_customer ON tickets (customer_id, opened_at);

-- One survey per resolution: asked in the resolved notice (a signed link), answered on the
-- public page or on the agent's call-back. Business times throughout.
CREATE TABLE surveys (
    survey_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets (ticket_id),
    owner_id text,
    locale text NOT NULL,
    linked boolean NOT NULL,                -- a link went out (a signing secret is configured)
    created_at timestamptz NOT NULL,        -- the resolution
    answer_by timestamptz NOT NULL,         -- unanswered then: a call-back task
    expires_at timestamptz NOT NULL,        -- the link stops working
    answered_at timestamptz,
    answered_via text CHECK (answered_via IN ('survey', 'call')),
    answered_by text,                       -- the agent, for a call
    fixed boolean,
    rating smallint CHECK (rating BETWEEN 1 AND 5),
    comment text,
    callback_at timestamptz,                -- the call-back task was made
    cancelled_at timestamptz,               -- the ticket was reopened before an answer
    CHECK ((answered_at IS NULL) = (answered_via IS NULL))
);
CREATE INDEX surveys_ticket ON surveys (ticket_id);
CREATE INDEX surveys_created ON surveys (created_at);
CREATE INDEX surveys_waiting ON surveys (answer_by)
    WHERE answered_at IS NULL AND callback_at IS NULL AND cancelled_at IS NULL;

-- Owners' messages posted by relays (WeCom, DingTalk, an e-mail gateway, the app's backend).
-- (channel, message_id) is unique: the same message posted again is a replay and is not
-- recorded twice.
CREATE TABLE inbound_messages (
    inbound_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel text NOT NULL,
    message_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),  -- wall time
    at timestamptz NOT NULL,                -- business time
    signed_at timestamptz NOT NULL,         -- the relay's webhook-timestamp
    owner_id text,
    sender text,
    text text NOT NULL,
    ticket_id bigint REFERENCES tickets (ticket_id),
    incident_id bigint REFERENCES incidents (incident_id),
    outcome text NOT NULL CHECK (outcome IN ('added', 'reopened', 'opened', 'unmatched')),
    UNIQUE (channel, message_id)
);
CREATE INDEX inbound_owner ON inbound_messages (owner_id, at);

-- Novices get their product kind's onboarding guide once per owner and kind: when their
-- device first reports, or with their first fault guide, whichever comes first.
CREATE TABLE onboarded (
    owner_id text NOT NULL,
    kind text NOT NULL,
    device_id text NOT NULL,
    guide_id text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (owner_id, kind)
);
"""
