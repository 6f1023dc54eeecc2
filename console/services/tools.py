"""Tools of HTTP-to-MCP servers, written from REST-to-MCP YAML."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from ..crypto import is_masked
from ..errors import DomainError
from ..models import McpServer, SecurityScheme, Tool
from ..toolyaml import ToolDocument, ToolSpec, parse_tool_yaml
from .common import audit, config_changed, require_write


@dataclass
class ToolsApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def _apply_server_part(server: McpServer, doc: ToolDocument) -> None:
    spec = doc.server
    if spec is None:
        return
    server.config = spec.config or {}
    server.default_downstream_security = spec.default_downstream_security or {}
    server.default_upstream_security = spec.default_upstream_security or {}
    if spec.default_upstream_credential and not is_masked(spec.default_upstream_credential):
        server.default_upstream_credential = spec.default_upstream_credential
    server.allow_tools = spec.allow_tools
    server.save()
    existing = {s.scheme_id: s for s in server.security_schemes.all()}
    for scheme in spec.security_schemes:
        row = existing.get(scheme.scheme_id) or SecurityScheme(mcp_server=server, scheme_id=scheme.scheme_id)
        row.type, row.scheme, row.location, row.param_name = scheme.type, scheme.scheme, scheme.location, scheme.param_name
        # An exported file carries masked credentials; keep the stored secret unless a new one is given.
        if scheme.default_credential and not is_masked(scheme.default_credential):
            row.default_credential = scheme.default_credential
        row.save()


def _fill(tool: Tool, spec: ToolSpec, *, origin: str, origin_ref: str) -> None:
    tool.title = spec.title or ""
    tool.description = spec.description
    tool.args = spec.args
    tool.request_template = spec.request_template
    if spec.request_credential and not is_masked(spec.request_credential):
        tool.request_credential = spec.request_credential
    tool.response_template = spec.response_template
    tool.error_response_template = spec.error_response_template or ""
    tool.output_schema = spec.output_schema
    tool.annotations = spec.annotations
    tool.security = spec.security or {}
    tool.origin = origin
    tool.origin_ref = origin_ref
    tool.content_hash = spec.content_hash()


@transaction.atomic
def tools_apply_yaml(
    *, actor, mcp_server: McpServer, text: str, origin: str = Tool.Origin.MANUAL, origin_ref: str = "",
    origin_refs: dict[str, str] | None = None,
) -> ToolsApplyResult:
    """Create or update the tools a YAML document describes (and the server part, when present).

    `origin_refs` gives some tools their own origin_ref (an OpenAPI import records each tool's operation).
    """
    require_write(actor=actor, team=mcp_server.instance.team)
    if mcp_server.server_type != McpServer.Type.HTTP_TO_MCP:
        raise DomainError("Tools are written by hand only for HTTP-to-MCP servers.", {"non_field": [
            "A Direct Proxy server lists the tools of its backend MCP server."]})
    known = set(mcp_server.security_schemes.values_list("scheme_id", flat=True))
    doc = parse_tool_yaml(text, known_scheme_ids=known)
    if not doc.tools and doc.server is None:
        raise DomainError("The document has no tools.", {"tools": ["Add at least one tool under “tools:”."]})
    _apply_server_part(mcp_server, doc)
    result = ToolsApplyResult()
    # Only the tools this document names (an import applies its tools in parts, each part reads its own), within
    # SQLite's limit on query parameters.
    names = [spec.name for spec in doc.tools]
    tools = mcp_server.tools.filter(name__in=names) if len(names) <= 900 else mcp_server.tools.all()
    existing = {t.name: t for t in tools}
    for spec in doc.tools:
        tool = existing.get(spec.name)
        if tool is not None and tool.content_hash == spec.content_hash():
            result.unchanged.append(spec.name)
            continue
        is_new = tool is None
        tool = tool or Tool(mcp_server=mcp_server, name=spec.name)
        _fill(tool, spec, origin=origin, origin_ref=(origin_refs or {}).get(spec.name, origin_ref))
        tool.save()
        (result.created if is_new else result.updated).append(spec.name)
    audit(actor=actor, team=mcp_server.instance.team, action="tools.apply_yaml", obj=mcp_server,
          detail=result.as_dict())
    config_changed()
    return result


@transaction.atomic
def tool_set_enabled(*, actor, tool: Tool, enabled: bool) -> Tool:
    require_write(actor=actor, team=tool.mcp_server.instance.team)
    tool.enabled = enabled
    tool.save(update_fields=["enabled", "updated_at"])
    audit(actor=actor, team=tool.mcp_server.instance.team, action="tool.enable" if enabled else "tool.disable",
          obj=tool, detail={"name": tool.name})
    config_changed()
    return tool


@transaction.atomic
def tool_delete(*, actor, tool: Tool) -> None:
    require_write(actor=actor, team=tool.mcp_server.instance.team)
    audit(actor=actor, team=tool.mcp_server.instance.team, action="tool.delete", obj=tool, detail={"name": tool.name})
    tool.delete()
    config_changed()
