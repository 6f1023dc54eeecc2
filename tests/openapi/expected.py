"""What a call to an operation must put on the wire, read from the OpenAPI description by itself.

Deliberately independent of console/openapi: plain dictionary walking of single-file samples, so the tests compare
the import's tools with the description, not with themselves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


def resolve(doc: dict, node: Any, depth: int = 0) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 20:
        ref = node["$ref"]
        if not ref.startswith("#"):
            ref = "#/definitions/" + ref
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, depth = target, depth + 1
    return node


def properties(doc: dict, schema: Any) -> tuple[dict, list]:
    schema = resolve(doc, schema) or {}
    # readOnly properties are the server's to set: a request never carries them.
    props = {k: v for k, v in (schema.get("properties") or {}).items() if not resolve(doc, v).get("readOnly")}
    required = list(schema.get("required") or [])
    for member in schema.get("allOf") or []:
        more, req = properties(doc, member)
        props.update(more)
        required += req
    return props, required


@dataclass
class Expected:
    method: str
    path: str  # with {name} placeholders
    params: dict[str, tuple[str, dict]] = field(default_factory=dict)  # name -> (in, schema)
    body_media: str | None = None
    body_props: dict[str, dict] = field(default_factory=dict)

    @property
    def whole_body(self) -> bool:
        """A JSON body sent as one `body` argument: not an object, or a property shares a parameter's name."""
        return bool(self.body_media) and (not self.body_props or bool(set(self.body_props) & set(self.params)))


def base_path(doc: dict) -> str:
    if "swagger" in doc:
        return (doc.get("basePath") or "").rstrip("/")
    servers = doc.get("servers") or [{"url": ""}]
    url = servers[0]["url"]
    for name, var in (servers[0].get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(var.get("default", "")))
    return urlparse(url if "//" in url else "http://x" + url).path.rstrip("/")


def operations(doc: dict) -> list[Expected]:
    out = []
    for path, item in (doc.get("paths") or {}).items():
        item = resolve(doc, item)
        for method in ("get", "put", "post", "delete", "patch", "head", "options"):
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            exp = Expected(method=method.upper(), path=path)
            for raw in (item.get("parameters") or []) + (op.get("parameters") or []):
                param = resolve(doc, raw)
                if param["in"] == "body":
                    exp.body_media = "application/json"
                    exp.body_props = properties(doc, param.get("schema"))[0]
                elif param["in"] == "formData":
                    exp.body_media = "form"
                    exp.body_props[param["name"]] = param
                else:
                    schema = resolve(doc, param.get("schema")) if "schema" in param else param
                    exp.params[param["name"]] = (param["in"], schema or {})
            body = resolve(doc, op.get("requestBody"))
            if isinstance(body, dict) and body.get("content"):
                media = next((m for m in body["content"] if "json" in m), next(iter(body["content"])))
                exp.body_media = media
                exp.body_props = properties(doc, (body["content"][media] or {}).get("schema"))[0]
            out.append(exp)
    return out


def sample_value(doc: dict, schema: Any, name: str) -> Any:
    """A value for an argument of this schema that the backend can recognise on the wire."""
    schema = resolve(doc, schema) or {}
    if schema.get("enum"):
        return next(v for v in schema["enum"] if v is not None)
    type_ = schema.get("type")
    if isinstance(type_, list):
        type_ = next((t for t in type_ if t != "null"), "string")
    if type_ == "integer":
        return 7
    if type_ == "number":
        return 2.5
    if type_ == "boolean":
        return True
    if type_ == "array":
        item = sample_value(doc, schema.get("items") or {}, name)
        return [item]
    if type_ == "object" or schema.get("properties"):
        return {"k": "v"}
    return f"v-{name}"[:30]
