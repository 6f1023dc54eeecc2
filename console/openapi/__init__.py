"""OpenAPI (Swagger 2.0, OpenAPI 3.0 and 3.1) descriptions turned into REST-to-MCP tool YAML."""
from .convert import Conversion, ToolDraft, convert
from .limits import ImportLimits, SpecError

__all__ = ["Conversion", "ImportLimits", "SpecError", "ToolDraft", "convert"]
