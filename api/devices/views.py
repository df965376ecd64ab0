"""Routes: /api/v1/devices (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["devices"])
