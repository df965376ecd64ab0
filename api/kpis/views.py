"""Routes: /api/v1/kpis (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"])
