"""A whole description to tools: version, base URL, security schemes, one tool per operation, the YAML text."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urljoin, urlparse

from .limits import ImportLimits, SpecError, pointer_of, problem
from .loading import Sources, load_sources
from .operations import Operation, OperationBuilder, op_pointer, trim
from .refs import Refs
from .schemas import SchemaReader

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")  # trace has no place in the tool YAML
NAME_LIMIT = 64
VALIDATE_MAX_BYTES = 4 * 1024 * 1024
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ToolDraft:
    """One tool the import proposes, with what the preview shows about it."""

    name: str
    method: str
    path: str
    summary: str
    tags: list[str]
    deprecated: bool
    operation: str  # "GET /pets/{petId}": stable across re-imports, kept in Tool.origin_ref
    tool: dict  # the tool as written under `tools:`
    warnings: list[dict] = field(default_factory=list)


@dataclass
class Conversion:
    title: str
    version: str  # "2.0" | "3.0" | "3.1"
    tools: list[ToolDraft]
    server: dict  # the proposed `server:` part: config.baseUrl, securitySchemes, defaultUpstreamSecurity
    security: list[dict]  # every scheme the description declares, with whether the gateway can apply it
    warnings: list[dict]
    counts: dict[str, int]

    def document(self, names: list[str] | None = None, *, server_name: str = "imported") -> dict:
        chosen = self.tools if names is None else [t for t in self.tools if t.name in set(names)]
        doc: dict[str, Any] = {}
        if self.server:
            doc["server"] = {"name": server_name, **self.server}
        doc["tools"] = [t.tool for t in chosen]
        return doc


def dump_yaml(doc: Any) -> str:
    from .yamltext import dump

    return dump(doc)


def _version(doc: dict, name: str) -> str:
    if "swagger" in doc:
        if str(doc["swagger"]).strip() != "2.0":
            raise SpecError([problem(f"Swagger {doc['swagger']} is not supported; convert it to 2.0 or OpenAPI 3.",
                                     file=name, pointer="/swagger")])
        return "2.0"
    text = str(doc.get("openapi", "")).strip()
    if re.match(r"^3\.0(\.\d+)?", text):
        return "3.0"
    if re.match(r"^3\.[1-9](\.\d+)?", text):
        return "3.1"
    raise SpecError([problem(f"openapi: {text or '(empty)'} is not a version this import reads (2.0, 3.0, 3.1).",
                             file=name, pointer="/openapi")])


def _server_url(server: Any) -> str | None:
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        return None
    url = server["url"]
    for name, var in (server.get("variables") or {}).items():
        if isinstance(var, dict) and var.get("default") is not None:
            url = url.replace("{" + str(name) + "}", str(var["default"]))
    return url


def spec_base_url(doc: dict, version: str, source_url: str | None) -> str:
    """Where the API lives according to the description (servers, or host + basePath + schemes)."""
    if version == "2.0":
        schemes = [s for s in doc.get("schemes") or [] if s in ("https", "http")]
        host = doc.get("host")
        base_path = str(doc.get("basePath") or "")
        if isinstance(host, str) and host:
            scheme = "https" if "https" in schemes or not schemes else schemes[0]
            url = f"{scheme}://{host}{base_path}"
        else:
            url = base_path
    else:
        servers = doc.get("servers") if isinstance(doc.get("servers"), list) else []
        url = next((u for u in (_server_url(s) for s in servers) if u is not None), "") or ""
    if url.startswith("//"):
        url = "https:" + url
    if source_url and not urlparse(url).scheme:
        url = urljoin(source_url, url or "/")
    return url.rstrip("/")


def tool_name(raw: str) -> str:
    name = _NAME_BAD.sub("_", raw).strip("_") or "operation"
    return name[:NAME_LIMIT].rstrip("_") or name[:NAME_LIMIT]


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while True:
        suffix = f"_{n}"
        candidate = name[:NAME_LIMIT - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _description(node: dict, method: str, path: str) -> tuple[str, str]:
    summary = str(node.get("summary") or "").strip()
    description = str(node.get("description") or "").strip()
    if summary and description and not description.lower().startswith(summary.lower().rstrip(".")):
        text = f"{summary.rstrip('.')}. {description}" if "\n" not in description else f"{summary}\n\n{description}"
    else:
        text = description or summary or f"{method.upper()} {path}"
    if node.get("deprecated"):
        text = "Deprecated. " + text
    return summary, trim(text)


def _security_schemes(doc: dict, version: str) -> dict[str, dict]:
    raw = (doc.get("securityDefinitions") if version == "2.0"
           else (doc.get("components") or {}).get("securitySchemes")) or {}
    out: dict[str, dict] = {}
    for scheme_id, scheme in raw.items() if isinstance(raw, dict) else []:
        if not isinstance(scheme, dict):
            continue
        kind = str(scheme.get("type") or "")
        entry: dict[str, Any] = {"id": scheme_id, "type": kind, "supported": False}
        if kind == "basic" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
            entry.update(type="http", scheme="basic", supported=True, label="HTTP Basic")
        elif kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            entry.update(scheme="bearer", supported=True, label="Bearer token")
        elif kind == "apiKey" and scheme.get("in") in ("header", "query") and scheme.get("name"):
            entry.update(**{"in": scheme["in"], "name": scheme["name"]}, supported=True,
                         label=f"API key in {scheme['in']} {scheme['name']}")
        elif kind == "apiKey":
            entry.update(**{"in": scheme.get("in"), "name": scheme.get("name")},
                         note="API keys in a cookie are not supported yet.", label="API key in a cookie")
        elif kind in ("oauth2", "openIdConnect"):
            entry.update(note="OAuth2 / OpenID Connect is not supported yet: set a Bearer token or API key by hand "
                              "if the API also accepts one.", label="OAuth2" if kind == "oauth2" else "OpenID Connect")
        else:
            entry.update(note=f"{kind or 'This'} authentication is not supported yet.", label=kind or "unknown")
        out[scheme_id] = entry
    return out


def _first_supported(requirements: Any, schemes: dict[str, dict]) -> str | None:
    for requirement in requirements if isinstance(requirements, list) else []:
        if isinstance(requirement, dict) and len(requirement) == 1:
            scheme_id = next(iter(requirement))
            if schemes.get(scheme_id, {}).get("supported"):
                return scheme_id
    return None


def _yaml_scheme(entry: dict) -> dict:
    out = {"id": entry["id"], "type": entry["type"]}
    if entry["type"] == "http":
        out["scheme"] = entry["scheme"]
    else:
        out["in"], out["name"] = entry["in"], entry["name"]
    return out


def _operations(doc: dict, sources: Sources, refs: Refs, warnings: list[dict]):
    paths = doc.get("paths")
    if paths is None:
        return
    if not isinstance(paths, dict):
        raise SpecError([problem("paths must be a mapping of paths to operations.", file=sources.entry,
                                 pointer="/paths")])
    place = refs.place(sources.entry)
    for path, item in paths.items():
        if not isinstance(path, str) or path.startswith("x-"):
            continue
        item_place = place
        if isinstance(item, dict) and "$ref" in item:
            try:
                item, item_place, _ = refs.follow(item, place)
            except Exception as exc:  # RefError: reported, the rest goes on
                warnings.append(problem(f"Path {path}: {exc}; it is left out.", file=sources.entry,
                                        pointer=pointer_of(("paths", path))))
                continue
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            node = item.get(method)
            if isinstance(node, dict):
                yield Operation(method=method, path=path, node=node, path_item=item, place=item_place,
                                pointer=op_pointer(path, method))


def convert(
    files: list[tuple[str, bytes]],
    *,
    limits: ImportLimits | None = None,
    entry: str | None = None,
    backend_url: str | None = None,
    source_url: str | None = None,
    base_url: str | None = None,
    fetch: Callable[[str], Any] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Conversion:
    """Convert a description. `backend_url`: the MCP server's backend service (URLs become relative to it)."""
    limits = limits or ImportLimits.from_settings()
    report = progress or (lambda step, percent: None)
    report("reading", 5)
    sources = load_sources(files, limits, entry=entry)
    doc = sources.documents[sources.entry]
    version = _version(doc, sources.entry)
    warnings = list(sources.warnings)
    refs = Refs(sources.documents, swagger2=version == "2.0", fetch=fetch)
    reader = SchemaReader(refs, version=version)
    builder = OperationBuilder(refs, reader, version=version, doc=doc, limits=limits)
    report("checking", 15)
    warnings += diagnostics(doc, version, sources, size=sum(len(data) for _, data in files))

    spec_base = base_url.rstrip("/") if base_url else spec_base_url(doc, version, source_url)
    server: dict[str, Any] = {}
    if backend_url:
        spec_path = urlparse(spec_base).path.rstrip("/") if spec_base else ""
        backend_path = urlparse(backend_url).path.rstrip("/")
        prefix = "" if not spec_path or backend_path.endswith(spec_path) else spec_path
    elif urlparse(spec_base).scheme in ("http", "https"):
        server["config"] = {"baseUrl": spec_base}
        prefix = "{{.config.baseUrl}}"
    else:
        prefix = spec_base
        warnings.append(problem("The description gives no absolute server URL: choose a backend service for this "
                                "MCP server (the tools' URLs are relative to it).", file=sources.entry,
                                pointer="/servers" if version != "2.0" else "/host"))

    schemes = _security_schemes(doc, version)
    default_scheme = _first_supported(doc.get("security"), schemes)
    used = {default_scheme} if default_scheme else set()

    report("converting", 25)
    ops = list(_operations(doc, sources, refs, warnings))
    if len(ops) > limits.max_operations:
        raise SpecError([problem(f"The description has {len(ops):,} operations; the limit is "
                                 f"{limits.max_operations:,}.", file=sources.entry, pointer="/paths")])
    drafts: list[ToolDraft] = []
    taken: set[str] = set()
    step = max(1, len(ops) // 20)
    for index, op in enumerate(ops):
        if index % step == 0:
            report("converting", 25 + int(60 * index / max(1, len(ops))))
        raw_name = op.node.get("operationId") if isinstance(op.node.get("operationId"), str) else ""
        name = _unique(tool_name(raw_name) if raw_name.strip() else tool_name(re.sub(
            r"[^A-Za-z0-9]+", "_", f"{op.method}_{op.path}")), taken)
        taken.add(name)
        path_servers = op.node.get("servers") or op.path_item.get("servers")
        op_prefix = prefix
        if version != "2.0" and isinstance(path_servers, list) and path_servers:
            own = _server_url(path_servers[0])
            if own and backend_url:
                # With a backend service every URL is relative to it: an operation's own server gives its path.
                own_path = urlparse(own).path.rstrip("/")
                op_prefix = "" if urlparse(backend_url).path.rstrip("/").endswith(own_path) else own_path
            elif own and urlparse(own).scheme in ("http", "https"):
                op_prefix = own.rstrip("/")
        built = builder.build(op, op_prefix)
        summary, description = _description(op.node, op.method, op.path)
        tool = {"name": name, "description": description}
        if summary:
            tool["title"] = trim(summary, 200)
        tool.update({k: v for k, v in built.tool.items() if k != "description"})
        method = op.method.upper()
        tool["annotations"] = {"readOnlyHint": method in ("GET", "HEAD", "OPTIONS"),
                               "destructiveHint": method == "DELETE",
                               "idempotentHint": method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")}
        op_warnings = [dict(w, location={"file": sources.entry, **w["location"]}) for w in built.warnings]
        if built.security is not None:
            own_scheme = _first_supported(built.security, schemes)
            if own_scheme and own_scheme != default_scheme:
                tool["requestTemplate"]["security"] = {"id": own_scheme}
                used.add(own_scheme)
            elif built.security and not own_scheme:
                labels = ", ".join(schemes.get(k, {}).get("label", k) for r in built.security for k in r)
                op_warnings.append(problem(f"Needs {labels}, which the gateway cannot apply yet; calls go without it.",
                                           file=sources.entry, pointer=op.pointer + "/security"))
        elif not default_scheme and doc.get("security"):
            labels = ", ".join(schemes.get(k, {}).get("label", k) for r in doc["security"] if isinstance(r, dict)
                               for k in r)
            op_warnings.append(problem(f"Needs {labels}, which the gateway cannot apply yet; calls go without it.",
                                       file=sources.entry, pointer="/security"))
        tags = [t for t in op.node.get("tags") or [] if isinstance(t, str)]
        drafts.append(ToolDraft(name=name, method=method, path=op.path, summary=summary, tags=tags,
                                deprecated=bool(op.node.get("deprecated")),
                                operation=f"{method} {op.path}", tool=tool, warnings=op_warnings))
    if used:
        server["securitySchemes"] = [_yaml_scheme(schemes[s]) for s in sorted(used)]
        if default_scheme:
            server["defaultUpstreamSecurity"] = {"id": default_scheme}
    webhooks = doc.get("webhooks") if isinstance(doc.get("webhooks"), dict) else {}
    if webhooks:
        warnings.append(problem(f"{len(webhooks)} webhook(s) describe calls the API makes to you; they are not "
                                "tools.", file=sources.entry, pointer="/webhooks"))
    if not drafts and not webhooks:
        raise SpecError([problem("The description has no operations under paths.", file=sources.entry,
                                 pointer="/paths")])
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    report("converting", 90)
    security = [dict(v, used=v["id"] in used, default=v["id"] == default_scheme) for v in schemes.values()]
    return Conversion(
        title=str(info.get("title") or sources.entry),
        version=version,
        tools=drafts,
        server=server,
        security=security,
        warnings=warnings,
        counts={"operations": len(ops), "tools": len(drafts), "files": len(sources.documents),
                "warnings": len(warnings) + sum(len(d.warnings) for d in drafts),
                "deprecated": sum(1 for d in drafts if d.deprecated)},
    )


def diagnostics(doc: dict, version: str, sources: Sources, *, limit: int = 50, size: int = 0) -> list[dict]:
    """Where the description breaks its version's published JSON Schema, as warnings with JSON pointers.

    The schemas ship with openapi-spec-validator; jsonschema checks against them (its own semantic checks take
    about 17 s on GitHub's 13 MB description, the schema alone 5 s, so above VALIDATE_MAX_BYTES neither runs).
    """
    if size > VALIDATE_MAX_BYTES:
        return [problem(f"The description is larger than {VALIDATE_MAX_BYTES // (1024 * 1024)} MB: it is not checked "
                        "against the OpenAPI schema, only as far as the import reads it.", file=sources.entry)]
    try:
        import jsonschema
        from openapi_spec_validator.schemas import schema_v2, schema_v30, schema_v31
    except ImportError:  # pragma: no cover
        return []
    schema = {"2.0": schema_v2, "3.0": schema_v30, "3.1": schema_v31}[version]
    validator = jsonschema.validators.validator_for(schema)(schema)
    out: list[dict] = []
    try:
        for error in validator.iter_errors(doc):
            best = jsonschema.exceptions.best_match([error]) or error
            out.append(problem(f"Not valid {'Swagger' if version == '2.0' else 'OpenAPI'} {version}: "
                               f"{trim(str(best.message), 300)}", file=sources.entry,
                               pointer=pointer_of(best.absolute_path)))
            if len(out) >= limit:
                break
    except Exception as exc:  # the validator's own failure on odd input is a diagnostic, not the import's end
        out.append(problem(f"The description could not be fully validated ({type(exc).__name__}).",
                           file=sources.entry))
    return out
