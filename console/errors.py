"""The one domain exception, translated at each edge (form error, 400 field map, JSON-RPC error)."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the product was broken; `details` maps a field (or "non_field") to messages."""

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.code = code

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.message, "code": self.code, "errors": self.details}


class NotFound(DomainError):
    def __init__(self, message: str = "Not found."):
        super().__init__(message, code="not_found")
