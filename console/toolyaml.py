"""The REST-to-MCP tool YAML (Higress `mcp-server` format): parse and validate it with line numbers, export it back."""
from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import DomainError

if TYPE_CHECKING:
    from .models import McpServer, Tool

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

# The same rule as console.models.TOOL_NAME_RE (the MCP tool-name rule), kept here so parsing needs no app registry.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
ARG_TYPES = ("string", "number", "integer", "boolean", "array", "object")
ARG_POSITIONS = ("query", "path", "header", "cookie", "body")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ARGS_SWITCHES = ("argsToJsonBody", "argsToUrlParam", "argsToFormBody")
ANNOTATION_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
# Exported files show this instead of a secret; importing it back keeps the stored secret (see services.tools).
MASKED_CREDENTIAL = "••••••••"

MAX_ALIASES = 200
MAX_VALUES = 200_000  # values after alias expansion: stops "billion laughs" documents
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_PLACEHOLDER_RE = re.compile(r"\{([^{}\s]+)\}")
_ACTION_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)

Path = tuple  # ("tools", 0, "requestTemplate", "url")


# --------------------------------------------------------------------------------------------------------------------
# Result types


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


# --------------------------------------------------------------------------------------------------------------------
# YAML reading: nodes with marks, YAML 1.2 core scalars (as Go's yaml.v3 in Higress reads them)


class _Loader(yaml.SafeLoader):
    """A safe composer whose plain scalars resolve as in YAML 1.2 (`yes`, `on`, `1:30` stay text), counting aliases."""

    yaml_implicit_resolvers: dict = {}

    def __init__(self, stream: str):
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise yaml.MarkedYAMLError(
                    problem=f"more than {MAX_ALIASES} YAML aliases (*name); write the values out",
                    problem_mark=self.peek_event().start_mark,
                )
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(_TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(_TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    _TAG + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(_TAG + "merge", re.compile(r"^(?:<<)$"), ["<"])


class _TooBig(Exception):
    pass


@dataclass
class _Pos:
    key_line: int | None  # 1-based line of `key:` (None for sequence items)
    value_line: int  # 1-based line where the value starts
    content_line: int  # 1-based line of the first line of a scalar's text
    literal: bool  # a `|` block: template line N is content_line + N - 1


def _field(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "non_field"


class _Builder:
    """Turns composed nodes into plain values, remembering each value's lines by path."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        self.positions: dict[Path, _Pos] = {}
        self.values = 0

    def _error(self, path: Path, line: int | None, message: str) -> None:
        self.errors.append({"line": line, "field": _field(path), "message": message})

    def build(self, node, path: Path, key_line: int | None = None, stack: tuple = ()) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise _TooBig(f"The document expands to more than {MAX_VALUES} values (YAML aliases?).")
        line = node.start_mark.line + 1
        literal = isinstance(node, ScalarNode) and node.style == "|"
        content = line + 1 if isinstance(node, ScalarNode) and node.style in ("|", ">") else line
        self.positions.setdefault(path, _Pos(key_line, line, content, literal))
        if id(node) in stack:
            self._error(path, line, "A YAML alias refers to its own anchor (a recursive value).")
            return None
        if len(stack) >= MAX_DEPTH:
            self._error(path, line, f"Values are nested more than {MAX_DEPTH} levels deep.")
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        stack = stack + (id(node),)
        if node.tag not in (_TAG + "seq", _TAG + "map"):
            self._error(path, line, f"Unsupported YAML tag {node.tag}; use plain values.")
            return None
        if isinstance(node, SequenceNode):
            return [self.build(item, path + (i,), None, stack) for i, item in enumerate(node.value)]
        return self._mapping(node, path, stack)

    def _mapping(self, node: MappingNode, path: Path, stack: tuple) -> dict:
        result: dict[str, Any] = {}
        key_lines: dict[str, int] = {}
        merges = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if isinstance(key_node, ScalarNode) and key_node.tag == _TAG + "merge":
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self._error(path, key_line, "A mapping key must be plain text.")
                continue
            key = key_node.value
            if key in result:
                self._error(path + (key,), key_line, f"Duplicate key “{key}” (first given on line {key_lines[key]}).")
                continue
            key_lines[key] = key_line
            result[key] = self.build(value_node, path + (key,), key_line, stack)
        # YAML merge keys (`<<: *base`): explicit keys win, then earlier merged mappings over later ones.
        for merge_node in merges:
            sources = merge_node.value if isinstance(merge_node, SequenceNode) else [merge_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self._error(path, source.start_mark.line + 1, "A merge key (<<) needs a mapping.")
                    continue
                merged = self.build(source, path, None, stack)
                for key, value in (merged or {}).items():
                    result.setdefault(key, value)
        return result

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag, value = node.tag, node.value
        line = node.start_mark.line + 1
        if tag == _TAG + "str":
            return value
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if tag == _TAG + "int":
            try:
                text = value.replace("_", "")
                if text.startswith(("0o", "0x")):
                    return int(text, 0)
                return int(text, 10)
            except ValueError:
                pass
        if tag == _TAG + "float":
            try:
                number = float(value.replace("_", "").replace(".inf", "inf").replace(".Inf", "inf")
                               .replace(".INF", "inf"))
            except ValueError:
                number = None
            if number is not None and math.isfinite(number):
                return number
            if number is not None or value.lower() == ".nan":
                self._error(path, line, "Infinite and NaN numbers cannot be used (they have no JSON form).")
                return None
        if tag in (_TAG + "bool", _TAG + "int", _TAG + "float"):
            self._error(path, line, f"“{value}” is not a valid {tag.rsplit(':', 1)[1]}.")
            return None
        self._error(path, line, f"Unsupported YAML tag {tag}; use plain values.")
        return None


# --------------------------------------------------------------------------------------------------------------------
# Validation


_MISSING = object()


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the text “{value}”" if len(value) <= 40 else "text"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _fits(type_: str, value: Any) -> bool:
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


class _Validator:
    def __init__(self, positions: dict[Path, _Pos], errors: list[dict], *, known_scheme_ids: set[str] | None):
        self.positions = positions
        self.errors = errors
        self.known_scheme_ids = known_scheme_ids
        self.scheme_refs: list[tuple[Path, str]] = []
        self._compile = None

    # -- error helpers

    def line(self, path: Path) -> int | None:
        while True:
            pos = self.positions.get(path)
            if pos is not None:
                return pos.key_line or pos.value_line
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Path, message: str, *, line: int | None = None) -> None:
        self.errors.append({"line": line if line is not None else self.line(path), "field": _field(path),
                            "message": message})

    # -- typed getters: report a wrong type and answer None, so validation goes on

    def string(self, mapping: dict, key: str, path: Path, *, required: bool = False, what: str = "") -> str | None:
        value = mapping.get(key)
        if value is None or (required and isinstance(value, str) and not value.strip()):
            if required:
                self.error(path + (key,), f"{what or key} is required.")
            return None
        if not isinstance(value, str):
            self.error(path + (key,), f"Must be text, not {_type_name(value)}; put it in quotes.")
            return None
        return value

    def boolean(self, mapping: dict, key: str, path: Path) -> bool | None:
        value = mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            hint = " (without quotes)" if isinstance(value, str) and value.lower() in ("true", "false") else ""
            self.error(path + (key,), f"Must be true or false{hint}, not {_type_name(value)}.")
            return None
        return value

    def mapping(self, value: Any, path: Path, *, what: str = "a mapping") -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(path, f"Must be {what} (key: value lines), not {_type_name(value)}.")
            return None
        return value

    def sequence(self, value: Any, path: Path) -> list | None:
        if value is None:
            return None
        if not isinstance(value, list):
            self.error(path, f"Must be a list (lines starting with “- ”), not {_type_name(value)}.")
            return None
        return value

    def template(self, path: Path, text: str | None) -> None:
        if not text:
            return
        if self._compile is None:
            from gateway.gotemplate import TemplateSyntaxError, compile_template

            self._compile = (compile_template, TemplateSyntaxError)
        compile_template, syntax_error = self._compile
        try:
            compile_template(text)
        except syntax_error as exc:
            pos = self.positions.get(path)
            line = self.line(path)
            template_line = getattr(exc, "line", None) or 1
            if pos is not None:
                line = pos.content_line + (template_line - 1 if pos.literal else 0)
            message = getattr(exc, "message", None) or str(exc)
            self.error(path, f"Template error (template line {template_line}): {message}", line=line)

    # -- security references

    def security_ref(self, value: Any, path: Path, *, allow_credential: bool) -> tuple[dict, str]:
        """{id, passthrough?} and the credential (when this place may carry one)."""
        sec = self.mapping(value, path)
        if not sec:
            return {}, ""
        scheme_id = self.string(sec, "id", path, required=True, what="The security scheme id")
        passthrough = self.boolean(sec, "passthrough", path)
        credential = (self.string(sec, "credential", path) or "") if allow_credential else ""
        if scheme_id is None:
            return {}, ""
        self.scheme_refs.append((path + ("id",), scheme_id))
        out: dict[str, Any] = {"id": scheme_id}
        if passthrough:
            out["passthrough"] = True
        return out, credential

    def check_scheme_refs(self, declared: set[str] | None) -> None:
        allowed = declared if declared is not None else self.known_scheme_ids
        if allowed is None:
            return
        where = "server.securitySchemes" if declared is not None else "the server's security schemes"
        for path, scheme_id in self.scheme_refs:
            if scheme_id not in allowed:
                self.error(path, f"No security scheme “{scheme_id}” in {where}.")

    # -- server part

    def server(self, value: Any, path: Path) -> tuple[ServerSpec | None, set[str]]:
        server = self.mapping(value, path)
        if server is None:
            if value is None:
                self.error(path, "The server part is empty; give at least its name.")
            return None, set()
        name = self.string(server, "name", path, required=True, what="The server name")
        config = self.mapping(server.get("config"), path + ("config",)) or {}
        schemes: list[SchemeSpec] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.sequence(server.get("securitySchemes"), path + ("securitySchemes",)) or []):
            scheme = self.scheme(item, path + ("securitySchemes", i), seen, i)
            if scheme is not None:
                schemes.append(scheme)
        downstream, _ = self.security_ref(server.get("defaultDownstreamSecurity"),
                                          path + ("defaultDownstreamSecurity",), allow_credential=False)
        upstream, credential = self.security_ref(server.get("defaultUpstreamSecurity"),
                                                 path + ("defaultUpstreamSecurity",), allow_credential=True)
        allow_tools = self.allow_tools(server, path)
        spec = ServerSpec(
            name=name or "",
            config=config,
            security_schemes=schemes,
            default_downstream_security=downstream,
            default_upstream_security=upstream,
            default_upstream_credential=credential,
            allow_tools=allow_tools,
        )
        return spec, set(seen)

    def scheme(self, value: Any, path: Path, seen: dict[str, int], index: int) -> SchemeSpec | None:
        item = self.mapping(value, path)
        if item is None:
            if value is None:
                self.error(path, "Empty security scheme.")
            return None
        scheme_id = self.string(item, "id", path, required=True, what="The scheme id")
        if scheme_id is not None:
            if scheme_id in seen:
                self.error(path + ("id",), f"Security scheme id “{scheme_id}” is already used by "
                                           f"securitySchemes[{seen[scheme_id]}].")
            else:
                seen[scheme_id] = index
        type_ = self.string(item, "type", path, required=True, what="The scheme type")
        credential = self.string(item, "defaultCredential", path) or ""
        spec = SchemeSpec(scheme_id=scheme_id or "", type="", default_credential=credential)
        if type_ is None:
            return None
        if type_.lower() == "http":
            spec.type = "http"
            scheme = self.string(item, "scheme", path, required=True, what="scheme (basic or bearer)")
            if scheme is not None:
                if scheme.lower() not in ("basic", "bearer"):
                    self.error(path + ("scheme",), f"scheme must be basic or bearer, not “{scheme}”.")
                spec.scheme = scheme.lower()
        elif type_.lower() == "apikey":
            spec.type = "apiKey"
            location = self.string(item, "in", path, required=True, what="in (header or query)")
            if location is not None:
                if location.lower() not in ("header", "query"):
                    self.error(path + ("in",), f"in must be header or query, not “{location}”.")
                spec.location = location.lower()
            param = self.string(item, "name", path, required=True,
                                what="name (the header or query parameter that carries the key)")
            spec.param_name = param or ""
        else:
            self.error(path + ("type",), f"type must be http or apiKey, not “{type_}”.")
            return None
        return spec if scheme_id else None

    def allow_tools(self, mapping: dict, path: Path) -> list[str] | None:
        if "allowTools" not in mapping or mapping["allowTools"] is None:
            return None
        items = self.sequence(mapping["allowTools"], path + ("allowTools",))
        if items is None:
            return None
        names = []
        for i, name in enumerate(items):
            if not isinstance(name, str) or not name:
                self.error(path + ("allowTools", i), f"A tool name must be text, not {_type_name(name)}.")
            else:
                names.append(name)
        return names

    # -- tools

    def tool(self, value: Any, path: Path) -> ToolSpec | None:
        tool = self.mapping(value, path)
        if tool is None:
            if value is None:
                self.error(path, "Empty tool entry.")
            return None
        name = self.string(tool, "name", path, required=True, what="The tool name")
        if name is not None and not TOOL_NAME_RE.match(name):
            self.error(path + ("name",), f"Tool name “{name}” must be 1-128 letters, digits, '_', '-' or '.'.")
        description = self.string(tool, "description", path, required=True, what="The tool description")
        title = self.string(tool, "title", path) or ""
        args = self.args(tool.get("args"), path + ("args",))
        request, credential = self.request_template(tool.get("requestTemplate"), path + ("requestTemplate",), args)
        response = self.response_template(tool.get("responseTemplate"), path + ("responseTemplate",))
        error_template = self.string(tool, "errorResponseTemplate", path) or ""
        self.template(path + ("errorResponseTemplate",), error_template)
        request_given = isinstance(tool.get("requestTemplate"), (dict, type(None)))
        if request_given and not request.get("url") and not response.get("body"):
            self.error(path + ("responseTemplate", "body"), "A tool without requestTemplate.url answers directly: "
                                                            "responseTemplate.body is required.")
        output_schema = self.mapping(tool.get("outputSchema"), path + ("outputSchema",), what="a JSON Schema mapping")
        if output_schema is not None and output_schema.get("type") != "object":
            self.error(path + ("outputSchema", "type") if "type" in output_schema else path + ("outputSchema",),
                       "outputSchema must be a JSON Schema with type: object.")
        annotations = self.annotations(tool.get("annotations"), path + ("annotations",))
        security, _ = self.security_ref(tool.get("security"), path + ("security",), allow_credential=False)
        if name is None or description is None:
            return None
        return ToolSpec(
            name=name,
            description=description,
            title=title,
            args=[arg for _, arg in args],
            request_template=request,
            request_credential=credential,
            response_template=response,
            error_response_template=error_template,
            output_schema=output_schema,
            annotations=annotations,
            security=security,
        )

    def args(self, value: Any, path: Path) -> list[tuple[int, dict]]:
        """The valid args, each with its index in the document (for error paths)."""
        out: list[tuple[int, dict]] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.sequence(value, path) or []):
            arg = self.arg(item, path + (i,))
            if arg is None:
                continue
            if arg["name"] in seen:
                self.error(path + (i, "name"),
                           f"Argument “{arg['name']}” is already declared as args[{seen[arg['name']]}].")
                continue
            seen[arg["name"]] = i
            out.append((i, arg))
        return out

    def arg(self, value: Any, path: Path) -> dict | None:
        item = self.mapping(value, path)
        if item is None:
            if value is None:
                self.error(path, "Empty argument entry.")
            return None
        name = self.string(item, "name", path, required=True, what="The argument name")
        description = self.string(item, "description", path)
        type_ = self.string(item, "type", path) or "string"
        if type_ not in ARG_TYPES:
            self.error(path + ("type",), f"type must be one of {', '.join(ARG_TYPES)}, not “{type_}”.")
            type_ = None
        position = self.string(item, "position", path)
        if position is not None:
            if position.lower() not in ARG_POSITIONS:
                self.error(path + ("position",), f"position must be one of {', '.join(ARG_POSITIONS)}, "
                                                 f"not “{position}”.")
                position = None
            else:
                position = position.lower()
        required = self.boolean(item, "required", path)
        enum = self.sequence(item.get("enum"), path + ("enum",))
        if enum is not None and not enum:
            self.error(path + ("enum",), "enum must list at least one value.")
            enum = None
        if enum and type_:
            for j, choice in enumerate(enum):
                if not _fits(type_, choice):
                    self.error(path + ("enum", j), f"{_type_name(choice).capitalize()} is not a valid {type_}.")
        items = properties = None
        if item.get("items") is not None:
            if type_ and type_ != "array":
                self.error(path + ("items",), f"items applies to type array only (this argument is {type_}).")
            items = self.mapping(item["items"], path + ("items",), what="a JSON Schema mapping")
        if item.get("properties") is not None:
            if type_ and type_ != "object":
                self.error(path + ("properties",),
                           f"properties applies to type object only (this argument is {type_}).")
            properties = self.mapping(item["properties"], path + ("properties",), what="a mapping of JSON Schemas")
        default = item.get("default")
        if default is not None and type_:
            if not _fits(type_, default):
                self.error(path + ("default",), f"default must be a{'n' if type_[0] in 'aeiou' else ''} {type_}, "
                                                f"not {_type_name(default)}.")
            elif enum and default not in enum:
                self.error(path + ("default",), "default must be one of the enum values.")
        if name is None:
            return None
        arg: dict[str, Any] = {"name": name}
        if description:
            arg["description"] = description
        arg["type"] = type_ or "string"
        if required:
            arg["required"] = True
        if default is not None:
            arg["default"] = default
        if enum:
            arg["enum"] = enum
        if items is not None:
            arg["items"] = items
        if properties is not None:
            arg["properties"] = properties
        if position:
            arg["position"] = position
        return arg

    def request_template(self, value: Any, path: Path, args: list[tuple[int, dict]]) -> tuple[dict, str]:
        request = self.mapping(value, path) or {}
        url = self.string(request, "url", path) or ""
        method = self.string(request, "method", path)
        if method is not None and method.upper() not in HTTP_METHODS:
            self.error(path + ("method",), f"method must be one of {', '.join(HTTP_METHODS)}, not “{method}”.")
        out: dict[str, Any] = {"url": url, "method": (method or "GET").upper()}
        headers = []
        for i, item in enumerate(self.sequence(request.get("headers"), path + ("headers",)) or []):
            header_path = path + ("headers", i)
            header = self.mapping(item, header_path, what="a {key, value} mapping")
            if header is None:
                if item is None:
                    self.error(header_path, "Empty header entry.")
                continue
            key = self.string(header, "key", header_path, required=True, what="The header key")
            header_value = self.string(header, "value", header_path) or ""
            self.template(header_path + ("value",), header_value)
            if key is not None:
                headers.append({"key": key, "value": header_value})
        if headers:
            out["headers"] = headers
        body = self.string(request, "body", path) or ""
        self.template(path + ("url",), url)
        self.template(path + ("body",), body)
        if body:
            out["body"] = body
        switches = []
        for switch in ARGS_SWITCHES:
            if self.boolean(request, switch, path):
                out[switch] = True
                if switches:
                    self.error(path + (switch,), f"Only one of {', '.join(ARGS_SWITCHES)} may be true "
                                                 f"({switches[0]} is already).")
                switches.append(switch)
        if body and switches:
            self.error(path + ("body",), f"body cannot be used together with {switches[0]}: "
                                         "the body template already says what is sent.")
        security, credential = self.security_ref(request.get("security"), path + ("security",), allow_credential=True)
        if security:
            out["security"] = security
        self.path_placeholders(url, path, args)
        return out, credential

    def path_placeholders(self, url: str, path: Path, indexed_args: list[tuple[int, dict]]) -> None:
        declared = {arg["name"]: arg for _, arg in indexed_args}
        plain = _ACTION_RE.sub(" ", url)
        used = set()
        for placeholder in _PLACEHOLDER_RE.findall(plain):
            used.add(placeholder)
            arg = declared.get(placeholder)
            if arg is None:
                self.error(path + ("url",), f"The url uses {{{placeholder}}} but no argument “{placeholder}” "
                                            "is declared.")
            elif arg.get("position") != "path":
                self.error(path + ("url",), f"The url uses {{{placeholder}}} but argument “{placeholder}” "
                                            "does not have position: path.")
        args_path = path[:-1] + ("args",)
        for index, arg in indexed_args:
            if arg.get("position") != "path" or arg["name"] in used:
                continue
            if url and re.search(r"\.args\." + re.escape(arg["name"]) + r"\b", url):
                continue  # substituted by the url template itself
            self.error(args_path + (index, "position"),
                       f"Path argument “{arg['name']}” is not used in requestTemplate.url as {{{arg['name']}}}.")

    def response_template(self, value: Any, path: Path) -> dict:
        response = self.mapping(value, path) or {}
        out: dict[str, str] = {}
        for key in ("body", "prependBody", "appendBody"):
            text = self.string(response, key, path) or ""
            self.template(path + (key,), text)
            if text:
                out[key] = text
        if out.get("body"):
            for key in ("prependBody", "appendBody"):
                if key in out:
                    self.error(path + (key,), f"{key} cannot be used together with body.")
        return out

    def annotations(self, value: Any, path: Path) -> dict | None:
        annotations = self.mapping(value, path)
        if annotations is None:
            return None
        for hint in ANNOTATION_HINTS:
            self.boolean(annotations, hint, path)
        self.string(annotations, "title", path)
        return annotations


# --------------------------------------------------------------------------------------------------------------------
# Parsing


def parse_tool_yaml(
    text: str | bytes,
    *,
    require_server: bool = False,
    max_bytes: int = 2_000_000,
    known_scheme_ids: set[str] | None = None,
) -> ToolDocument:
    """Read a tool YAML document (`server:` + `tools:`, only `tools:`, or a bare list of tools).

    Raises ToolYamlError listing every problem found. `known_scheme_ids` are the scheme ids of the target server,
    which a document without a `server:` part may refer to (None: not checked).
    """
    errors: list[dict] = []

    def fail(message: str, line: int | None = None, field_name: str = "non_field") -> ToolYamlError:
        return ToolYamlError(errors + [{"line": line, "field": field_name, "message": message}])

    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw) > max_bytes:
        raise fail(f"The document is {len(raw):,} bytes; the limit is {max_bytes:,}.")
    if not isinstance(text, str):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"The document is not UTF-8 text (byte {exc.start}).") from None

    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "Invalid YAML."
        raise fail(f"YAML syntax: {message}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise fail(f"YAML syntax: {exc}") from None
    except RecursionError:
        raise fail("The document is nested too deeply.") from None
    finally:
        loader.dispose()

    if root is None:
        if require_server:
            raise fail("The document is empty; it needs a server: part and tools:.", None, "server")
        return ToolDocument(server=None, tools=[])

    builder = _Builder(errors)
    try:
        if isinstance(root, SequenceNode):
            tools_value = builder.build(root, ("tools",))
            doc: dict = {"tools": tools_value}
        else:
            doc = builder.build(root, ())
    except _TooBig as exc:
        raise fail(str(exc)) from None
    if not isinstance(doc, dict):
        raise fail("The document must be a mapping with server: and tools:, or a list of tools.",
                   root.start_mark.line + 1)

    v = _Validator(builder.positions, errors, known_scheme_ids=known_scheme_ids)
    if "server" not in doc and "tools" not in doc and "allowTools" not in doc:
        hint = " This looks like an OpenAPI document: import it as OpenAPI instead." if (
            "openapi" in doc or "swagger" in doc) else ""
        v.error((), "Expected a server: part and/or tools:." + hint, line=root.start_mark.line + 1)
        raise ToolYamlError(errors)

    server = None
    declared: set[str] | None = None
    if "server" in doc:
        server, declared = v.server(doc["server"], ("server",))
    elif require_server:
        v.error(("server",), "A server: part (with its name) is required here.", line=1)

    top_allow = v.allow_tools(doc, ())
    if top_allow is not None:
        if server is None:
            if "server" not in doc:
                v.error(("allowTools",), "allowTools belongs to a server: add a server: part.")
        elif server.allow_tools is not None and server.allow_tools != top_allow:
            v.error(("allowTools",), "allowTools is given both here and under server, with different names.")
        else:
            server.allow_tools = top_allow

    tools: list[ToolSpec] = []
    names: dict[str, int] = {}
    tool_items = v.sequence(doc.get("tools"), ("tools",)) or []
    for i, item in enumerate(tool_items):
        spec = v.tool(item, ("tools", i))
        if spec is None:
            continue
        if spec.name in names:
            v.error(("tools", i, "name"), f"Tool “{spec.name}” is already defined as tools[{names[spec.name]}].")
            continue
        names[spec.name] = i
        tools.append(spec)

    v.check_scheme_refs(declared if "server" in doc else None)
    if errors:
        raise ToolYamlError(errors)
    return ToolDocument(server=server, tools=tools)


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
        properties[name] = prop
        if arg.get("required") is True:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


# --------------------------------------------------------------------------------------------------------------------
# Export


class _Dumper(yaml.SafeDumper):
    """Quotes any text a YAML 1.1 or 1.2 reader would take for a number or boolean; multi-line text as `|` blocks."""

    def ignore_aliases(self, data):
        return True


_Dumper.add_implicit_resolver(_TAG + "int", re.compile(r"^(?:0o[0-7]+)$"), ["0"])
_Dumper.add_implicit_resolver(
    _TAG + "float", re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$"),
    list("-+0123456789."),
)


def _represent_str(dumper: yaml.SafeDumper, data: str):
    return dumper.represent_scalar(_TAG + "str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _represent_str)


def _dump(doc: Any, *, masked: bool) -> str:
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000)
    if masked:
        text = (f"# Credentials are shown as {MASKED_CREDENTIAL}; importing this file keeps the stored ones.\n"
                + text)
    return text


def _secret(value: str, include: bool) -> str:
    return value if include else MASKED_CREDENTIAL


_ARG_ORDER = ("name", "description", "type", "required", "default", "enum", "items", "properties", "position")
_REQUEST_ORDER = ("url", "method", "headers", "body", "argsToJsonBody", "argsToUrlParam", "argsToFormBody",
                  "security")
_RESPONSE_ORDER = ("body", "prependBody", "appendBody")


def _ordered(mapping: dict, order: tuple[str, ...]) -> dict:
    """Keys in the documented order: PostgreSQL's jsonb does not keep the order they were written in."""
    out = {key: mapping[key] for key in order if key in mapping}
    out.update((key, mapping[key]) for key in sorted(mapping) if key not in out)
    return out


def _tool_dict(tool: "Tool", include_credentials: bool) -> tuple[dict, bool]:
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
        security["credential"] = _secret(tool.request_credential, include_credentials)
        masked = not include_credentials
    if security:
        request["security"] = security
    else:
        request.pop("security", None)
    if request:
        out["requestTemplate"] = _ordered(request, _REQUEST_ORDER)
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


def export_tool_yaml(*, server: "McpServer", tools: Iterable["Tool"], include_credentials: bool = False) -> str:
    """The server and its tools as a Higress REST-to-MCP YAML file; credentials masked unless asked for."""
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
            scheme["defaultCredential"] = _secret(row.default_credential, include_credentials)
            masked = masked or not include_credentials
        schemes.append(scheme)
    if schemes:
        server_part["securitySchemes"] = schemes
    if server.default_downstream_security:
        server_part["defaultDownstreamSecurity"] = copy.deepcopy(dict(server.default_downstream_security))
    upstream = copy.deepcopy(dict(server.default_upstream_security or {}))
    if upstream.get("id") and server.default_upstream_credential:
        upstream["credential"] = _secret(server.default_upstream_credential, include_credentials)
        masked = masked or not include_credentials
    if upstream:
        server_part["defaultUpstreamSecurity"] = upstream
    doc: dict[str, Any] = {"server": server_part}
    if server.allow_tools is not None:
        doc["allowTools"] = list(server.allow_tools)  # top level, where Higress reads it
    doc["tools"] = []
    for tool in tools:
        item, tool_masked = _tool_dict(tool, include_credentials)
        masked = masked or tool_masked
        doc["tools"].append(item)
    return _dump(doc, masked=masked)


def tool_to_yaml(tool: "Tool", *, include_credentials: bool = False) -> str:
    """One tool as a `tools: [...]` document, for editing that tool's YAML."""
    item, masked = _tool_dict(tool, include_credentials)
    return _dump({"tools": [item]}, masked=masked)
