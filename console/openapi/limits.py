"""The bounds every import is held to, and the error that lists a document's problems with their locations."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ..errors import DomainError


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int = 20 * 1024 * 1024  # all uploaded files (or a zip's contents) together
    max_files: int = 200
    max_depth: int = 100  # nesting of the documents themselves
    max_values: int = 3_000_000  # values of all documents after YAML alias expansion
    max_aliases: int = 10_000
    max_operations: int = 5_000
    # $ref expansion: per tool, the schema values it may grow to, and how deep schemas are followed.
    max_schema_values: int = 20_000
    max_schema_depth: int = 24
    max_output_schema_values: int = 250

    @classmethod
    def from_settings(cls) -> "ImportLimits":
        return cls(max_bytes=int(getattr(settings, "OPENAPI_IMPORT_MAX_BYTES", cls.max_bytes)))


def location(file: str | None = None, pointer: str | None = None, line: int | None = None) -> dict[str, Any]:
    """Where a problem is: a file, a JSON pointer inside it, a line; only what is known."""
    out: dict[str, Any] = {}
    if file:
        out["file"] = file
    if pointer is not None:
        out["pointer"] = pointer
    if line is not None:
        out["line"] = line
    return out


def problem(message: str, **where: Any) -> dict[str, Any]:
    return {"message": message, "location": location(**where)}


class SpecError(DomainError):
    """The description cannot be imported; `problems` lists each reason with its location."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems
        first = problems[0]["message"] if problems else "The description cannot be imported."
        super().__init__(first, {"spec": [p["message"] for p in problems]}, code="invalid_spec")


def pointer_escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer_of(parts) -> str:
    return "".join("/" + pointer_escape(p) for p in parts)
