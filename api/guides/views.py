"""Routes: /api/v1/guides (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/guides", tags=["guides"])
