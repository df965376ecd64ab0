"""Decisions per prediction and owner (guide, ticket, escalate). Not built yet: issue 4."""
