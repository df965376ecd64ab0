"""The error bodies routes declare, so the OpenAPI document shows every status they return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """Every error the API returns on purpose."""

    detail: str = Field(description="What went wrong, in words")


def error(description: str) -> dict[str, Any]:
    """An error response of the document, with its description."""
    return {"model": ErrorBody, "description": description}


AUTH: Responses = {
    401: error("Missing, unknown or revoked API key"),
    403: error("The key's role may not do this"),
}


class InvalidBody(BaseModel):
    """A request that is not valid: our checks say why in words; FastAPI's own validation
    lists each bad field."""

    detail: str | list[dict[str, Any]] = Field(description="Why, in words or per field")


NOT_FOUND: Responses = {404: error("No such thing")}
CONFLICT: Responses = {409: error("Its current state does not allow this")}
INVALID: Responses = {
    422: {"model": InvalidBody, "description": "The request is not valid; the detail says why"}
}
