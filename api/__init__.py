"""FastAPI service for support staff and integrations. Not built yet: issue 5."""
