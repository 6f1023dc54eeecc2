"""Checking a tool YAML document's values against the Higress rules, collecting every error, and building the specs."""
from __future__ import annotations

import re
from typing import Any

from yaml.nodes import SequenceNode

from .loader import Builder, Pos, compose
from .specs import Path, SchemeSpec, ServerSpec, ToolDocument, ToolSpec, ToolYamlError, error_entry

# The same rule as console.models.TOOL_NAME_RE (the MCP tool-name rule), kept here so parsing needs no app registry.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
ARG_TYPES = ("string", "number", "integer", "boolean", "array", "object")
ARG_POSITIONS = ("query", "path", "header", "cookie", "body")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ARGS_SWITCHES = ("argsToJsonBody", "argsToUrlParam", "argsToFormBody")
ANNOTATION_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
# JSON Schema keywords an argument may carry beyond Higress's fields (OpenAPI imports keep them); they go into the
# tool's inputSchema as they are. Higress ignores fields it does not know, so files stay loadable there.
ARG_SCHEMA_KEYWORDS: dict[str, tuple[type, ...]] = {
    "format": (str,), "pattern": (str,), "contentEncoding": (str,), "contentMediaType": (str,),
    "minimum": (int, float), "maximum": (int, float), "exclusiveMinimum": (int, float),
    "exclusiveMaximum": (int, float), "multipleOf": (int, float), "minLength": (int,), "maxLength": (int,),
    "minItems": (int,), "maxItems": (int,), "uniqueItems": (bool,), "deprecated": (bool,), "nullable": (bool,),
    "examples": (list,), "allOf": (list,), "oneOf": (list,), "anyOf": (list,), "additionalProperties": (dict, bool),
}

_PLACEHOLDER_RE = re.compile(r"\{([^{}\s]+)\}")
_ACTION_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


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
    """Reads the built values part by part, reporting each problem at its path and line and going on."""

    def __init__(self, positions: dict[Path, Pos], errors: list[dict], *, known_scheme_ids: set[str] | None):
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
        self.errors.append(error_entry(path, line if line is not None else self.line(path), message))

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

    def entry(self, value: Any, path: Path, *, empty: str, what: str = "a mapping") -> dict | None:
        """A part or list item that must be a mapping: left empty, it is reported with `empty`."""
        if value is None:
            self.error(path, empty)
            return None
        return self.mapping(value, path, what=what)

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
        server = self.entry(value, path, empty="The server part is empty; give at least its name.")
        if server is None:
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
        item = self.entry(value, path, empty="Empty security scheme.")
        if item is None:
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
        tool = self.entry(value, path, empty="Empty tool entry.")
        if tool is None:
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
        item = self.entry(value, path, empty="Empty argument entry.")
        if item is None:
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
        for keyword, kinds in ARG_SCHEMA_KEYWORDS.items():
            if keyword not in item or item[keyword] is None:
                continue
            value = item[keyword]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                self.error(path + (keyword,), f"{keyword} must be {' or '.join(k.__name__ for k in kinds)}, "
                                              f"not {_type_name(value)}.")
            elif keyword in ("allOf", "oneOf", "anyOf") and not all(isinstance(s, dict) for s in value):
                self.error(path + (keyword,), f"{keyword} must list JSON Schema mappings.")
            else:
                arg[keyword] = value
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
            header = self.entry(item, header_path, empty="Empty header entry.", what="a {key, value} mapping")
            if header is None:
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

    def fail(message: str, line: int | None = None, path: Path = ()) -> ToolYamlError:
        return ToolYamlError(errors + [error_entry(path, line, message)])

    root = compose(text, max_bytes=max_bytes)
    if root is None:
        if require_server:
            raise fail("The document is empty; it needs a server: part and tools:.", None, ("server",))
        return ToolDocument(server=None, tools=[])

    builder = Builder(errors)
    if isinstance(root, SequenceNode):
        doc: Any = {"tools": builder.build(root, ("tools",))}
    else:
        doc = builder.build(root, ())
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
