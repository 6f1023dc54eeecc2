"""The REST-to-MCP tool YAML (Higress `mcp-server` format): parse and validate it with line numbers, export it back."""
from .export import export_tool_yaml, tool_to_yaml
from .schema import input_schema_from_args
from .specs import MASKED_CREDENTIAL, SchemeSpec, ServerSpec, ToolDocument, ToolSpec, ToolYamlError
from .validate import parse_tool_yaml

__all__ = [
    "MASKED_CREDENTIAL",
    "SchemeSpec",
    "ServerSpec",
    "ToolDocument",
    "ToolSpec",
    "ToolYamlError",
    "export_tool_yaml",
    "input_schema_from_args",
    "parse_tool_yaml",
    "tool_to_yaml",
]
