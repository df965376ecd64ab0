"""Migration 6: what the staff API and console need (API keys, staff feedback on tickets,
guide embeddings and phrases for search). Plain SQL common to both storage paths."""

from __future__ import annotations

CONSOLE = """
-- API keys. Only the SHA-256 of the secret is kept: keys are long random tokens, so a fast
-- hash is enough (there is no password to guess), and the secret is shown once at creation.
CREATE TABLE api_keys (
    key_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'agent', 'admin', 'integration')),
    prefix text NOT NULL,                   -- the key's first characters, to recognise it
    sha256 text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

-- Staff feedback on a ticket's prediction; it also becomes a 'staff' row of fault_labels.
ALTER TABLE tickets
    ADD COLUMN feedback text CHECK (feedback IN ('confirmed', 'false_alarm')),
    ADD COLUMN feedback_at timestamptz,
    ADD COLUMN feedback_by text;
CREATE INDEX tickets_opened ON tickets (opened_at);
-- The queue's order (api/tickets/repository.py: open first, then the due the ticket works to
-- now). The expression must stay the same as the query's, or the planner sorts every open
-- ticket instead of reading the first page off the index (bench/api.py measured the queue's
-- p50 halve with it).
CREATE INDEX tickets_queue_urgency ON tickets (
    (state IN ('resolved', 'closed')),
    (CASE WHEN state IN ('resolved', 'closed') THEN NULL
          ELSE CASE WHEN tier_acknowledged_at IS NULL
                    THEN least(tier_respond_due, tier_solve_due) ELSE tier_solve_due END END),
    ticket_id);
CREATE INDEX tickets_state ON tickets (state);
CREATE INDEX tickets_open_resolution_due ON tickets (resolution_due)
    WHERE state NOT IN ('resolved', 'closed');

-- How owners word each guide's problem (a guide file's `phrases:`), in the guide's language:
-- search matches questions against them; nothing shows them. Not in an existing column:
-- every text column is shown to owners or staff as the guide's content.
ALTER TABLE guides ADD COLUMN phrases text[] NOT NULL DEFAULT '{}';

-- One sentence embedding per guide and locale, for search by meaning. `sha256` is the guide's
-- own: a changed guide gets a new vector. `model` names the embedding model that made it.
CREATE TABLE guide_embeddings (
    guide_id text NOT NULL,
    locale text NOT NULL,
    model text NOT NULL,
    sha256 text NOT NULL,
    vector real[] NOT NULL,
    PRIMARY KEY (guide_id, locale),
    FOREIGN KEY (guide_id, locale) REFERENCES guides (guide_id, locale) ON DELETE CASCADE
);
"""
