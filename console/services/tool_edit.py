"""Editing one tool through its own YAML (the console's "Edit YAML" and PUT /api/v1/tools/{id}/yaml)."""
from __future__ import annotations

from django.db import transaction

from ..models import Tool
from ..toolyaml import ToolYamlError, parse_tool_yaml
from .common import require_write
from .tools import ToolsApplyResult, tool_delete, tools_apply_yaml


@transaction.atomic
def tool_update_yaml(*, actor, tool: Tool, text: str) -> tuple[Tool, ToolsApplyResult]:
    """Replace one tool by the single tool a `tools:` document describes; a new name renames it."""
    server = tool.mcp_server
    require_write(actor=actor, team=server.instance.team)
    known = set(server.security_schemes.values_list("scheme_id", flat=True))
    doc = parse_tool_yaml(text, known_scheme_ids=known)
    if doc.server is not None:
        raise ToolYamlError([{"line": 1, "field": "server", "message": (
            "Edit one tool here, without a server: part; change server settings with Add Tool or Backend "
            "authentication.")}])
    if len(doc.tools) != 1:
        raise ToolYamlError([{"line": None, "field": "tools", "message": (
            f"Describe exactly one tool here (found {len(doc.tools)}); add more with Add Tool.")}])
    new_name = doc.tools[0].name
    if new_name != tool.name and Tool.objects.filter(mcp_server=server, name=new_name).exists():
        raise ToolYamlError([{"line": None, "field": "tools[0].name", "message": (
            f"Another tool of this server is named “{new_name}”; choose another name.")}])
    result = tools_apply_yaml(actor=actor, mcp_server=server, text=text, origin=tool.origin, origin_ref=tool.origin_ref)
    updated = Tool.objects.get(mcp_server=server, name=new_name)
    if new_name != tool.name:
        if not tool.enabled:
            updated.enabled = False
            updated.save(update_fields=["enabled", "updated_at"])
        tool_delete(actor=actor, tool=tool)
    return updated, result
