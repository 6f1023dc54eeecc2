"""Writing a server and its tools back out as Higress REST-to-MCP YAML; a secret never leaves, only its mask."""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml

from .loader import TAG
from .specs import MASKED_CREDENTIAL

if TYPE_CHECKING:
    from ..models import McpServer, Tool


class _Dumper(yaml.SafeDumper):
    """Quotes any text a YAML 1.1 or 1.2 reader would take for a number or boolean; multi-line text as `|` blocks."""

    def ignore_aliases(self, data):
        return True


_Dumper.add_implicit_resolver(TAG + "int", re.compile(r"^(?:0o[0-7]+)$"), ["0"])
_Dumper.add_implicit_resolver(
    TAG + "float", re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$"),
    list("-+0123456789."),
)


def _represent_str(dumper: yaml.SafeDumper, data: str):
    return dumper.represent_scalar(TAG + "str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _represent_str)


def _dump(doc: Any, *, masked: bool) -> str:
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000)
    if masked:
        text = (f"# Credentials are shown as {MASKED_CREDENTIAL}; importing this file keeps the stored ones.\n"
                + text)
    return text


def _secret(value: str) -> str:
    """Every stored secret exports as the same mask: nothing of it (not even a tail) goes into a file that gets shared."""
    return MASKED_CREDENTIAL


_ARG_ORDER = ("name", "description", "type", "required", "default", "enum", "items", "properties", "position")
_REQUEST_ORDER = ("url", "method", "headers", "body", "argsToJsonBody", "argsToUrlParam", "argsToFormBody",
                  "security")
_RESPONSE_ORDER = ("body", "prependBody", "appendBody")


def _ordered(mapping: dict, order: tuple[str, ...]) -> dict:
    """Keys in the documented order: PostgreSQL's jsonb does not keep the order they were written in."""
    out = {key: mapping[key] for key in order if key in mapping}
    out.update((key, mapping[key]) for key in sorted(mapping) if key not in out)
    return out


def _tool_dict(tool: "Tool") -> tuple[dict, bool]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.title:
        out["title"] = tool.title
    out["description"] = tool.description or ""
    if tool.args:
        out["args"] = [_ordered(arg, _ARG_ORDER) for arg in copy.deepcopy(list(tool.args))]
    request = _ordered(copy.deepcopy(dict(tool.request_template or {})), _REQUEST_ORDER)
    masked = False
    security = dict(request.get("security") or {})
    if security.get("id") and tool.request_credential:
        security["credential"] = _secret(tool.request_credential)
        masked = True
    if security:
        request["security"] = security  # replaces the key in place, so the order above holds
    else:
        request.pop("security", None)
    if request:
        out["requestTemplate"] = request
    if tool.response_template:
        out["responseTemplate"] = _ordered(copy.deepcopy(dict(tool.response_template)), _RESPONSE_ORDER)
    if tool.error_response_template:
        out["errorResponseTemplate"] = tool.error_response_template
    if tool.output_schema is not None:
        out["outputSchema"] = copy.deepcopy(tool.output_schema)
    if tool.annotations is not None:
        out["annotations"] = copy.deepcopy(tool.annotations)
    if tool.security:
        out["security"] = copy.deepcopy(dict(tool.security))
    return out, masked


def export_tool_yaml(*, server: "McpServer", tools: Iterable["Tool"]) -> str:
    """The server and its tools as a Higress REST-to-MCP YAML file, credentials masked (importing it keeps them)."""
    masked = False
    server_part: dict[str, Any] = {"name": server.name}
    if server.config:
        server_part["config"] = copy.deepcopy(server.config)
    schemes = []
    for row in server.security_schemes.all():
        scheme: dict[str, Any] = {"id": row.scheme_id, "type": row.type}
        if row.type == "http":
            scheme["scheme"] = row.scheme
        else:
            scheme["in"] = row.location
            scheme["name"] = row.param_name
        if row.default_credential:
            scheme["defaultCredential"] = _secret(row.default_credential)
            masked = True
        schemes.append(scheme)
    if schemes:
        server_part["securitySchemes"] = schemes
    if server.default_downstream_security:
        server_part["defaultDownstreamSecurity"] = copy.deepcopy(dict(server.default_downstream_security))
    upstream = copy.deepcopy(dict(server.default_upstream_security or {}))
    if upstream.get("id") and server.default_upstream_credential:
        upstream["credential"] = _secret(server.default_upstream_credential)
        masked = True
    if upstream:
        server_part["defaultUpstreamSecurity"] = upstream
    doc: dict[str, Any] = {"server": server_part}
    if server.allow_tools is not None:
        doc["allowTools"] = list(server.allow_tools)  # top level, where Higress reads it
    doc["tools"] = []
    for tool in tools:
        item, tool_masked = _tool_dict(tool)
        masked = masked or tool_masked
        doc["tools"].append(item)
    return _dump(doc, masked=masked)


def tool_to_yaml(tool: "Tool") -> str:
    """One tool as a `tools: [...]` document, for editing that tool's YAML (its credential masked)."""
    item, masked = _tool_dict(tool)
    return _dump({"tools": [item]}, masked=masked)
