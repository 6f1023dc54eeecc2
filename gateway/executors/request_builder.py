"""From a tool's REST-to-MCP description and a call's arguments to the backend HTTP request.

Everything a description implies that does not depend on the call (argument rules, which templates are
static, compiled templates, where each argument goes, the security scheme) is worked out once per
ToolConfig into a ToolPlan; a call then only checks its arguments and fills the plan in.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote, quote_plus, unquote_plus

from django.conf import settings
from multidict import CIMultiDict
from yarl import URL

from ..boundedjson import loads as bounded_loads
from ..gotemplate import TemplateError, compile_template

from ..readmodel import SchemeConfig, ServerConfig, ToolConfig
from . import template_runs

# Output and time limits for tenants' templates (a slow one leaves the event loop: see template_runs).
URL_TEMPLATE_MAX_OUTPUT = 64 * 1024
BODY_TEMPLATE_MAX_OUTPUT = 8 * 1024 * 1024
TEMPLATE_TIMEOUT_SECONDS = 1.0

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# RFC 3986 pchar minus "/": what may stay unencoded inside one path segment.
_PATH_SAFE = "-._~!$&'()*+,;=:@"
# RFC 6265 cookie-octet, less "%" so that an encoded value is unambiguous.
_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"
_MISSING = object()


class CallError(Exception):
    """A tool call that cannot be made as described; the message is shown to the caller as-is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- templates

Part = Any  # a static str, or a compiled template


def _part(src: Any, what: str) -> Part:
    """A template field as it will be used: plain text stays text, anything with actions is compiled."""
    text = "" if src is None else str(src)
    if "{{" not in text:
        return text
    try:
        return compile_template(text)
    except TemplateError as exc:
        raise CallError(f"The tool's {what} is not a valid template: {exc}") from None


def render(part: Part, data: Any, *, what: str, max_output: int) -> str:
    if type(part) is str:
        return part
    try:
        return part.render(data, max_output=max_output, timeout=TEMPLATE_TIMEOUT_SECONDS,
                           **template_runs.render_options())
    except TemplateError as exc:
        raise CallError(f"Could not render the {what}: {exc}") from None


# ---------------------------------------------------------------- arguments

def show(value: Any) -> str:
    """A value as the caller sent it, for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


class _Invalid(Exception):
    """A value that cannot be read as the declared type; args[0] says what it must be."""


def _to_integer(value: Any) -> Any:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str:
        text = value.strip()
        if text and "_" not in text:
            try:
                return int(text)
            except ValueError:
                pass
    raise _Invalid("must be an integer")


def _to_number(value: Any) -> Any:
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    if type(value) is str:
        text = value.strip()
        if text and "_" not in text:
            try:
                return int(text)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
    raise _Invalid("must be a number")


def _to_boolean(value: Any) -> Any:
    if type(value) is bool:
        return value
    if type(value) is str:
        text = value.strip().lower()
        if text == "true":
            return True
        if text == "false":
            return False
    raise _Invalid("must be a boolean (true or false)")


def _to_string(value: Any) -> Any:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return text_of(value)
    raise _Invalid("must be a string")


def _parsed_json(value: str, kind: type) -> Any:
    # JSON inside a string argument is held to the request body's limits: it joins the arguments templates see.
    try:
        parsed = bounded_loads(value, max_depth=settings.MCP_MAX_JSON_DEPTH, max_values=settings.MCP_MAX_JSON_VALUES)
    except ValueError:
        return _MISSING
    return parsed if type(parsed) is kind else _MISSING


def _to_container(kind: type, opener: str, message: str) -> Callable[[Any], Any]:
    def coerce(value: Any) -> Any:
        if type(value) is kind:
            return value
        # Models often send a JSON array or object as a string; that reading is unambiguous.
        if type(value) is str and value.lstrip().startswith(opener):
            parsed = _parsed_json(value, kind)
            if parsed is not _MISSING:
                return parsed
        raise _Invalid(message)

    return coerce


_to_array = _to_container(list, "[", "must be an array")
_to_object = _to_container(dict, "{", "must be an object")


_COERCERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "array": _to_array,
    "object": _to_object,
}


@dataclass(slots=True)
class ArgSpec:
    name: str
    position: str  # "" | query | path | header | cookie | body
    required: bool
    coerce: Callable[[Any], Any] | None
    enum: tuple | None
    has_default: bool
    default: Any
    item_coerce: Callable[[Any], Any] | None
    item_enum: tuple | None

    def check(self, value: Any) -> Any:
        """The value as the declared type, or _Invalid with the message to show."""
        if self.coerce is not None:
            try:
                value = self.coerce(value)
            except _Invalid as exc:
                raise _Invalid(f'Argument "{self.name}" {exc.args[0]}, got {show(value)}') from None
        if self.enum is not None and value not in self.enum:
            raise _Invalid(f'Argument "{self.name}" must be one of {_choices(self.enum)}; got {show(value)}')
        if (self.item_coerce is not None or self.item_enum is not None) and type(value) is list:
            value = list(value)
            for i, item in enumerate(value):
                if self.item_coerce is not None:
                    try:
                        item = value[i] = self.item_coerce(item)
                    except _Invalid as exc:
                        raise _Invalid(f'Argument "{self.name}[{i}]" {exc.args[0]}, got {show(item)}') from None
                if self.item_enum is not None and item not in self.item_enum:
                    raise _Invalid(f'Argument "{self.name}[{i}]" must be one of {_choices(self.item_enum)}; '
                                   f"got {show(item)}")
        return value


def _choices(values: tuple) -> str:
    return ", ".join(show(v) for v in values)


def _arg_spec(raw: Mapping[str, Any], url_source: str) -> ArgSpec:
    name = str(raw.get("name") or "")
    position = str(raw.get("position") or "").lower()
    declared = raw.get("type") or "string"
    coerce = _COERCERS.get(declared) if isinstance(declared, str) else None
    enum = raw.get("enum")
    items = raw.get("items") if declared == "array" else None
    item_coerce = item_enum = None
    if isinstance(items, Mapping):
        item_type = items.get("type")
        if item_type in ("string", "integer", "number", "boolean"):
            item_coerce = _COERCERS[item_type]
        if isinstance(items.get("enum"), list) and items["enum"]:
            item_enum = tuple(items["enum"])
    spec = ArgSpec(
        name=name,
        position=position,
        # A path argument whose placeholder is in the URL cannot be left out: the URL would be wrong.
        required=bool(raw.get("required")) or (position == "path" and "{" + name + "}" in url_source),
        coerce=coerce,
        enum=tuple(enum) if isinstance(enum, list) and enum else None,
        has_default=raw.get("default") is not None,
        default=None,
        item_coerce=item_coerce,
        item_enum=item_enum,
    )
    if spec.has_default:
        try:
            spec.default = spec.check(raw["default"])
        except _Invalid:
            spec.default = raw["default"]  # the description's own choice; the backend judges it
    return spec


# ---------------------------------------------------------------- the plan

@dataclass(slots=True)
class SecurityPlan:
    scheme: SchemeConfig
    credential: str  # configured: the tool's (or server default's) credential, else the scheme's default
    passthrough: bool


@dataclass(slots=True, eq=False)
class ToolPlan:
    tool: ToolConfig
    invalid: str  # why the description cannot be served ("" when it can); shown on every call
    args: tuple[ArgSpec, ...]
    positions: dict[str, str]
    keep_unknown: bool
    direct: bool
    method: str
    url: Part
    path_args: tuple[tuple[str, str], ...]  # (placeholder, argument name)
    headers: tuple[tuple[str, Part], ...]
    body: Part | None
    body_mode: str  # "template" | "json" | "form" | "query" | "" (position: body args only)
    body_args_as_form: bool
    security: SecurityPlan | None
    response_body: Part | None
    prepend: str
    append: str
    error_template: Part | None
    structured: bool


def _build_plan(tool: ToolConfig) -> ToolPlan:
    request = tool.request or {}
    response = tool.response or {}
    url_source = str(request.get("url") or "").strip()
    args = tuple(_arg_spec(a, url_source) for a in tool.args if isinstance(a, Mapping) and a.get("name"))
    headers_src = [h for h in (request.get("headers") or []) if isinstance(h, Mapping) and h.get("key")]
    if request.get("body"):
        body_mode = "template"
    elif request.get("argsToJsonBody"):
        body_mode = "json"
    elif request.get("argsToFormBody"):
        body_mode = "form"
    elif request.get("argsToUrlParam"):
        body_mode = "query"
    else:
        body_mode = ""
    content_types = [str(h.get("value") or "").lower() for h in headers_src
                     if str(h["key"]).lower() == "content-type"]
    plan = ToolPlan(
        tool=tool,
        invalid="",
        args=args,
        positions={a.name: a.position for a in args},
        # "All arguments" modes forward what the caller sent even if undeclared; elsewhere only declared
        # arguments have a place to go.
        keep_unknown=body_mode in ("json", "form", "query"),
        direct=not url_source,
        method=str(request.get("method") or "GET").upper(),
        url="",
        path_args=tuple(("{" + a.name + "}", a.name) for a in args
                        if a.position == "path" and "{" + a.name + "}" in url_source),
        headers=(),
        body=None,
        body_mode=body_mode,
        body_args_as_form=any(FORM_CONTENT_TYPE in ct for ct in content_types),
        security=None,
        response_body=None,
        prepend=str(response.get("prependBody") or ""),
        append=str(response.get("appendBody") or ""),
        error_template=None,
        structured=bool(tool.output_schema),
    )
    try:
        if response.get("body"):
            plan.response_body = _part(response["body"], "response template")
        elif plan.direct:
            raise CallError(f"Tool {tool.name} has neither a URL nor a response template to answer with.")
        if tool.error_template:
            plan.error_template = _part(tool.error_template, "error response template")
        if not plan.direct:
            plan.url = _part(url_source, "URL template")
            plan.headers = tuple((str(h["key"]), _part(h.get("value"), f'header template "{h["key"]}"'))
                                 for h in headers_src)
            if body_mode == "template":
                plan.body = _part(request["body"], "body template")
        up = tool.upstream_security
        if up is not None:
            plan.security = SecurityPlan(scheme=up.scheme, credential=up.credential or up.scheme.default_credential,
                                         passthrough=up.passthrough)
    except CallError as exc:
        plan.invalid = exc.message
    return plan


_PLAN_CACHE_SIZE = 4096
# id(tool) -> plan. ToolConfig is frozen but unhashable (it holds dicts) and has no weakref slot; the plan
# keeps its tool alive, so an id cannot be reused while its entry exists, and `plan.tool is tool` is exact.
_plans: dict[int, ToolPlan] = {}


def get_plan(tool: ToolConfig) -> ToolPlan:
    plan = _plans.get(id(tool))
    if plan is not None and plan.tool is tool:
        return plan
    plan = _build_plan(tool)
    if len(_plans) >= _PLAN_CACHE_SIZE:
        del _plans[next(iter(_plans))]  # oldest first: snapshots of older config versions go first
    _plans[id(tool)] = plan
    return plan


# ---------------------------------------------------------------- a call

def resolve_arguments(plan: ToolPlan, arguments: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The call's arguments after defaults and type coercion, and the problems found (empty when none).

    A null counts as not given. Undeclared arguments are kept only for the argsTo* modes.
    """
    args: dict[str, Any] = {}
    errors: list[str] = []
    for spec in plan.args:
        value = arguments.get(spec.name)
        if value is None:
            if spec.has_default:
                args[spec.name] = spec.default
            elif spec.required:
                errors.append(f'Argument "{spec.name}" is required')
            continue
        try:
            args[spec.name] = spec.check(value)
        except _Invalid as exc:
            errors.append(exc.args[0])
    if plan.keep_unknown:
        positions = plan.positions
        for name, value in arguments.items():
            if name not in positions:
                args[name] = value
    return args, errors


def text_of(value: Any) -> str:
    """An argument as text in a URL, header, cookie or form: JSON spelling for everything but strings."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _form_pairs(items: list[tuple[str, Any]]) -> list[str]:
    """name=value pairs, form-encoded; an array of scalars repeats its name (OpenAPI form style, explode)."""
    out = []
    for name, value in items:
        key = quote_plus(name)
        if type(value) is list and all(type(v) not in (list, dict) for v in value):
            out.extend(f"{key}={quote_plus(text_of(v))}" for v in value)
        else:
            out.append(f"{key}={quote_plus(text_of(value))}")
    return out


def _with_query(url: str, items: list[tuple[str, Any]]) -> str:
    """The URL with the arguments' query parameters; the template's own parameters stay unless replaced."""
    url = url.partition("#")[0]
    pairs = _form_pairs(items)
    if "?" not in url:
        return url + "?" + "&".join(pairs)
    head, _, query = url.partition("?")
    names = {name for name, _ in items}
    kept = [seg for seg in query.split("&") if seg and unquote_plus(seg.partition("=")[0]) not in names]
    return head + "?" + "&".join(kept + pairs)


def _header_value(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise CallError(f"{what} cannot contain a line break (it is sent as an HTTP header)")
    return value


@dataclass(slots=True)
class BackendRequest:
    method: str
    url: URL
    public_url: URL  # what messages show: the URL without a query-string credential
    headers: CIMultiDict
    body: bytes | None
    skip_auto_headers: tuple[str, ...] | None


def build_request(plan: ToolPlan, *, server: ServerConfig, args: dict[str, Any], data: dict[str, Any],
                  request_headers: Mapping[str, str] | None) -> BackendRequest:
    url = render(plan.url, data, what="URL template", max_output=URL_TEMPLATE_MAX_OUTPUT).strip()
    for placeholder, name in plan.path_args:
        url = url.replace(placeholder, quote(text_of(args[name]), safe=_PATH_SAFE))

    headers: CIMultiDict = CIMultiDict()
    for key, part in plan.headers:
        value = render(part, data, what=f'header template "{key}"', max_output=URL_TEMPLATE_MAX_OUTPUT)
        headers[key] = _header_value(value, f'The rendered header "{key}"')

    query: list[tuple[str, Any]] = []
    cookies: list[str] = []
    carried: list[tuple[str, Any]] = []  # body arguments and those without a position: the argsTo* modes' load
    body_args: list[tuple[str, Any]] = []
    positions = plan.positions
    for name, value in args.items():
        position = positions.get(name, "")
        if position == "query":
            query.append((name, value))
        elif position == "header":
            headers[name] = _header_value(text_of(value), f'Argument "{name}"')
        elif position == "cookie":
            cookies.append(f"{name}={quote(text_of(value), safe=_COOKIE_SAFE)}")
        elif position == "body":
            body_args.append((name, value))
            carried.append((name, value))
        elif position != "path":
            carried.append((name, value))

    body: bytes | None = None
    content_type = ""
    skip: tuple[str, ...] | None = None
    mode = plan.body_mode
    if mode == "template":
        text = render(plan.body, data, what="body template", max_output=BODY_TEMPLATE_MAX_OUTPUT)
        body = text.encode("utf-8")
        stripped = text.strip()
        if stripped[:1] in ("{", "[") and _parsed_json(stripped, dict if stripped[0] == "{" else list) is not _MISSING:
            content_type = JSON_CONTENT_TYPE
        elif "Content-Type" not in headers:
            skip = ("Content-Type",)  # Higress sends a non-JSON template body without a Content-Type
    elif mode == "json":
        body = _json_bytes(dict(carried))
        content_type = JSON_CONTENT_TYPE
    elif mode == "form":
        body = "&".join(_form_pairs(carried)).encode("ascii")
        content_type = FORM_CONTENT_TYPE
    elif mode == "query":
        query.extend(carried)
    elif body_args:
        if plan.body_args_as_form:
            body = "&".join(_form_pairs(body_args)).encode("ascii")
        else:
            body = _json_bytes(dict(body_args))
            content_type = JSON_CONTENT_TYPE
    if content_type and "Content-Type" not in headers:
        headers["Content-Type"] = content_type

    if query:
        url = _with_query(url, query)
    try:
        target = URL(url)
    except (ValueError, TypeError):
        target = None
    if target is None or target.scheme not in ("http", "https") or not target.host:
        raise CallError(f'The tool\'s URL "{url}" is not an absolute http:// or https:// URL '
                        "(check the URL template and the MCP server's config)")
    public_url = target

    if plan.security is not None:
        target = _apply_security(plan, server, target, headers, cookies, request_headers)
    if cookies:
        existing = headers.get("Cookie")
        headers["Cookie"] = "; ".join(([existing] if existing else []) + cookies)
    return BackendRequest(method=plan.method, url=target, public_url=public_url, headers=headers, body=body,
                          skip_auto_headers=skip)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------- backend security

def _client_header(headers: Mapping[str, str] | None, name: str) -> str:
    if not headers:
        return ""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
        return ""
    return value


def _passthrough_credential(plan: ToolPlan, server: ServerConfig, headers: Mapping[str, str] | None) -> str:
    """The credential the client sent, read the way the tool's client-side scheme (else the backend's) says."""
    upstream = plan.security.scheme
    client_scheme = server.schemes.get(str((plan.tool.downstream_security or {}).get("id") or "")) or upstream
    if client_scheme.type == "apiKey":
        if client_scheme.location == "header" and client_scheme.name:
            return _client_header(headers, client_scheme.name.lower()).strip()
        return ""
    value = _client_header(headers, "authorization").strip()
    word, space, token = value.partition(" ")
    if not space:
        return value
    if client_scheme.scheme and word.lower() != client_scheme.scheme.lower():
        return ""  # e.g. a Basic header where the scheme expects Bearer: not a credential for this backend
    return token.strip()


def _apply_security(plan: ToolPlan, server: ServerConfig, url: URL, headers: CIMultiDict, cookies: list[str],
                    request_headers: Mapping[str, str] | None) -> URL:
    security = plan.security
    scheme = security.scheme
    credential = _passthrough_credential(plan, server, request_headers) if security.passthrough else ""
    if not credential:
        credential = security.credential
    if not credential:
        raise CallError(f'No credential is configured for the backend security scheme "{scheme.id}" '
                        "(set one on the MCP server or the tool)")
    kind = (scheme.type or "").lower()
    if kind == "http":
        how = (scheme.scheme or "").lower()
        if how == "basic":
            if credential[:6].lower() == "basic ":
                value = credential
            elif ":" in credential:  # user:pass; base64 never contains ":", so an encoded token is left alone
                value = "Basic " + base64.b64encode(credential.encode("utf-8")).decode("ascii")
            else:
                value = "Basic " + credential
        elif how == "bearer":
            value = credential if credential[:7].lower() == "bearer " else "Bearer " + credential
        else:
            raise CallError(f'The backend security scheme "{scheme.id}" uses HTTP scheme "{scheme.scheme}", '
                            "which the gateway cannot apply (basic and bearer are supported)")
        headers["Authorization"] = _header_value(value, "The backend credential")
        return url
    if kind == "apikey" and scheme.name:
        where = (scheme.location or "header").lower()
        if where == "header":
            headers[scheme.name] = _header_value(credential, "The backend credential")
            return url
        if where == "query":
            return url.update_query({scheme.name: credential})
        if where == "cookie":
            cookies.append(f"{scheme.name}={quote(credential, safe=_COOKIE_SAFE)}")
            return url
    raise CallError(f'The backend security scheme "{scheme.id}" (type {scheme.type or "unset"}) cannot be applied '
                    "by the gateway: use http basic/bearer, or apiKey in a header, query or cookie with a name")
