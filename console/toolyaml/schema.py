"""A tool's args turned into the JSON Schema that MCP clients see as its inputSchema."""
from __future__ import annotations

import copy
from typing import Any

# Carried from an argument into its property as they are (see toolyaml.validate.ARG_SCHEMA_KEYWORDS).
_KEYWORDS = ("format", "pattern", "contentEncoding", "contentMediaType", "minimum", "maximum", "exclusiveMinimum",
             "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
             "deprecated", "examples", "allOf", "oneOf", "anyOf", "additionalProperties")


def input_schema_from_args(args: list[dict]) -> dict:
    """The MCP inputSchema of a tool, built from its args the way Higress builds it."""
    properties: dict[str, dict] = {}
    required: list[str] = []
    for arg in args or []:
        name = arg.get("name")
        if not name:
            continue
        type_ = arg.get("type") or "string"
        prop: dict[str, Any] = {"type": type_}
        if arg.get("description"):
            prop["description"] = arg["description"]
        if arg.get("enum"):
            prop["enum"] = copy.deepcopy(arg["enum"])
        if arg.get("default") is not None:
            prop["default"] = copy.deepcopy(arg["default"])
        if type_ == "array" and arg.get("items") is not None:
            prop["items"] = copy.deepcopy(arg["items"])
        if type_ == "object" and arg.get("properties") is not None:
            prop["properties"] = copy.deepcopy(arg["properties"])
        for keyword in _KEYWORDS:
            if keyword in arg and arg[keyword] is not None:
                prop[keyword] = copy.deepcopy(arg[keyword])
        if arg.get("nullable") is True:
            prop["type"] = [type_, "null"]
        properties[name] = prop
        if arg.get("required") is True:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema
