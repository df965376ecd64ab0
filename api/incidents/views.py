"""Routes: /api/v1/incidents (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["incidents"])
