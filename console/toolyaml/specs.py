"""What a parsed tool YAML document becomes (server, scheme and tool specs) and the error that lists its problems."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import DomainError

# Exported files show this instead of a secret; importing it back keeps the stored secret (see services.tools).
MASKED_CREDENTIAL = "••••••••"

Path = tuple  # ("tools", 0, "requestTemplate", "url")


@dataclass
class SchemeSpec:
    scheme_id: str
    type: str  # "http" | "apiKey"
    scheme: str = ""  # "basic" | "bearer" (http)
    location: str = ""  # "header" | "query" (apiKey)
    param_name: str = ""  # header or query parameter name (apiKey)
    default_credential: str = ""


@dataclass
class ServerSpec:
    name: str
    config: dict
    security_schemes: list[SchemeSpec]
    default_downstream_security: dict  # {id, passthrough?}
    default_upstream_security: dict  # {id, passthrough?}, the credential is kept apart
    default_upstream_credential: str
    allow_tools: list[str] | None


@dataclass
class ToolSpec:
    name: str
    description: str
    title: str = ""
    args: list[dict] = field(default_factory=list)
    request_template: dict = field(default_factory=dict)  # Higress names; security {id, passthrough?} only
    request_credential: str = ""  # requestTemplate.security.credential
    response_template: dict = field(default_factory=dict)
    error_response_template: str = ""
    output_schema: dict | None = None
    annotations: dict | None = None
    security: dict = field(default_factory=dict)  # downstream {id, passthrough?}

    def content_hash(self) -> str:
        """SHA-256 of the tool's canonical JSON; the credential enters only as its own digest."""
        credential = hashlib.sha256(self.request_credential.encode()).hexdigest() if self.request_credential else ""
        doc = {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "args": self.args,
            "requestTemplate": self.request_template,
            "requestCredential": credential,
            "responseTemplate": self.response_template,
            "errorResponseTemplate": self.error_response_template,
            "outputSchema": self.output_schema,
            "annotations": self.annotations,
            "security": self.security,
        }
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ToolDocument:
    server: ServerSpec | None
    tools: list[ToolSpec]


def field_name(path: Path) -> str:
    """A value's path as an error field: `tools[0].requestTemplate.url`, or "non_field" for the document."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "non_field"


def error_entry(path: Path, line: int | None, message: str) -> dict:
    """One problem as ToolYamlError lists it."""
    return {"line": line, "field": field_name(path), "message": message}


class ToolYamlError(DomainError):
    """Every problem found in a tool YAML document, each with its field path and 1-based line."""

    def __init__(self, errors: list[dict]):
        self.errors = sorted(errors, key=lambda e: (e["line"] is not None, e["line"] or 0))
        details: dict[str, list[str]] = {}
        for error in self.errors:
            text = f"line {error['line']}: {error['message']}" if error["line"] is not None else error["message"]
            details.setdefault(error["field"], []).append(text)
        super().__init__(f"The tool YAML has {len(self.errors)} error(s).", details, code="invalid_yaml")

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.message, "code": self.code, "errors": self.errors, "fields": self.details}
