"""Routes: /api/v1/rules (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["rules"])
