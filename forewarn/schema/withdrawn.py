"""Migration 7: work that stops applying without being done. An operator (or a new demo run
replacing the last one's simulated fleet) withdraws open incidents and cancels notifications
that were never sent; both stay in the tables with the reason, and KPIs leave them out."""

from __future__ import annotations

WITHDRAWN = """
ALTER TABLE incidents DROP CONSTRAINT incidents_outcome_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_outcome_check
    CHECK (outcome IN ('recovered_after_guide', 'recovered', 'ticket_closed', 'withdrawn'));

ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'interrupted', 'cancelled'));
"""
