"""Guides to owners through Apprise, tickets to helpdesks. Not built yet: issue 4."""
