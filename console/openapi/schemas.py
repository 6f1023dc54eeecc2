"""OpenAPI schema objects (2.0, 3.0, 3.1) as the JSON Schema a tool's inputSchema and outputSchema carry."""

# References are inlined; a schema that refers back to itself becomes a plain object at the repeat (with a note),
# and each tool's schemas are held to a budget of values and a depth, so no reference graph can explode.
from __future__ import annotations

import copy
from typing import Any

from .refs import Place, RefError, Refs

# Kept as they are: they mean the same in OpenAPI's schema dialects and in JSON Schema.
_PLAIN = ("title", "description", "format", "pattern", "minimum", "maximum", "multipleOf", "minLength", "maxLength",
          "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "const", "contentMediaType",
          "contentEncoding", "deprecated", "readOnly", "writeOnly", "default", "examples")
_SUBSCHEMA_LISTS = ("allOf", "oneOf", "anyOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "not", "additionalProperties", "contains", "propertyNames", "if", "then", "else",
                  "unevaluatedProperties", "unevaluatedItems")
JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")


class SchemaBudget:
    """How many more values one tool's schemas may grow to; notes say where it ran out."""

    def __init__(self, values: int, depth: int):
        self.values = values
        self.depth = depth
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 20:
            self.notes.append(text)


class SchemaReader:
    """Turns schemas found at a place into JSON Schema; `mode` "input" drops readOnly properties, "output" writeOnly."""

    def __init__(self, refs: Refs, *, version: str):
        self.refs = refs
        self.version = version  # "2.0" | "3.0" | "3.1"

    def read(self, schema: Any, place: Place, budget: SchemaBudget, *, mode: str) -> dict:
        return self._walk(schema, place, budget, mode, depth=0, stack=())

    def _walk(self, node: Any, place: Place, budget: SchemaBudget, mode: str, depth: int, stack: tuple) -> Any:
        if node is True or node is False:
            return node
        if not isinstance(node, dict):
            return {}
        budget.values -= 1
        if budget.values < 0:
            budget.note("The schema is larger than the import's budget; deeper parts are left open ({}).")
            return {}
        if depth > budget.depth:
            budget.note(f"The schema is nested more than {budget.depth} levels; deeper parts are left open ({{}}).")
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                target, target_place, absolute = self.refs.lookup(ref, place)
            except RefError as exc:
                budget.note(str(exc) + "; that part of the schema is left open ({}).")
                return {}
            name = absolute.rsplit("/", 1)[-1]
            if absolute in stack:
                budget.note(f"{name} refers to itself; the repeat is an object that is not described further.")
                out: dict[str, Any] = {"type": "object", "description": f"A {name} (recursive; see above)."}
                return out
            resolved = self._walk(target, target_place, budget, mode, depth + 1, stack + (absolute,))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                # 3.1 reads siblings of $ref; earlier versions ignore them, except description and title, which
                # authors put there to say what this use of the schema means.
                extra = self._walk(siblings, place, budget, mode, depth + 1, stack)
                if self.version != "3.1":
                    extra = {k: v for k, v in extra.items() if k in ("description", "title")}
                if extra:
                    resolved = {**resolved, **extra}
            return resolved
        return self._schema(node, place, budget, mode, depth, stack)

    def _schema(self, node: dict, place: Place, budget: SchemaBudget, mode: str, depth: int, stack: tuple) -> dict:
        out: dict[str, Any] = {}
        for key in _PLAIN:
            if key in node:
                out[key] = copy.deepcopy(node[key])
        if "example" in node and "examples" not in out:
            out["examples"] = [copy.deepcopy(node["example"])]
        elif isinstance(out.get("examples"), dict):  # an OpenAPI examples map, not JSON Schema's list
            out["examples"] = [e.get("value") for e in out["examples"].values() if isinstance(e, dict)][:5]
        if mode == "output":
            # An answer's schema tells a client the shape; its prose (past the first levels) and samples would
            # only make every tool heavy.
            out.pop("examples", None)
            if depth > 2:
                out.pop("description", None)
                out.pop("title", None)
            elif isinstance(out.get("description"), str) and len(out["description"]) > 160:
                out["description"] = out["description"][:157].rstrip() + "…"
        if isinstance(node.get("enum"), list):
            out["enum"] = copy.deepcopy(node["enum"])
        type_ = node.get("type")
        if type_ == "file":  # Swagger 2.0 file parameters
            type_ = "string"
            out["contentEncoding"] = "base64"
            out["description"] = _join(out.get("description"), "File content, base64-encoded.")
        if isinstance(type_, list):
            type_ = [t for t in type_ if t in JSON_TYPES] or None
        elif type_ not in JSON_TYPES:
            type_ = None
        nullable = node.get("nullable") is True or node.get("x-nullable") is True
        if nullable and type_ is not None:
            types = type_ if isinstance(type_, list) else [type_]
            type_ = types + ["null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"].append(None)
        if type_ is not None:
            out["type"] = type_
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            value = node.get(key)
            if isinstance(value, bool):  # 3.0 / 2.0: a flag on minimum / maximum
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                if value and bound in out:
                    out[key] = out.pop(bound)
            elif isinstance(value, (int, float)):
                out[key] = value
        if isinstance(node.get("properties"), dict):
            props = {}
            for name, sub in node["properties"].items():
                if isinstance(sub, dict) and self._skipped(sub, place, mode):
                    continue
                props[name] = self._walk(sub, place, budget, mode, depth + 1, stack)
            out["properties"] = props
        if isinstance(node.get("required"), list):
            required = [r for r in node["required"] if isinstance(r, str)]
            if "properties" in out:
                required = [r for r in required if r in out["properties"] or not self._dropped(node, r, place, mode)]
            if required:
                out["required"] = required
        for key in _SUBSCHEMA_LISTS:
            if isinstance(node.get(key), list):
                out[key] = [self._walk(s, place, budget, mode, depth + 1, stack) for s in node[key]]
        for key in _SUBSCHEMA_ONE:
            if key in node:
                value = node[key]
                if key == "items" and isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = [self._walk(s, place, budget, mode, depth + 1, stack) for s in value]
                    continue
                out[key] = self._walk(value, place, budget, mode, depth + 1, stack)
        if isinstance(node.get("patternProperties"), dict):
            out["patternProperties"] = {k: self._walk(v, place, budget, mode, depth + 1, stack)
                                        for k, v in node["patternProperties"].items()}
        if "type" not in out:
            if "properties" in out or "additionalProperties" in out:
                out["type"] = "object"
            elif "items" in out:
                out["type"] = "array"
        return out

    def _skipped(self, sub: dict, place: Place, mode: str) -> bool:
        """readOnly properties are the server's to set (not inputs); writeOnly ones are never answered."""
        flag = "readOnly" if mode == "input" else "writeOnly" if mode == "output" else None
        if flag is None:
            return False
        if "$ref" in sub:
            try:
                sub, _, _ = self.refs.follow(sub, place)
            except RefError:
                return False
        return isinstance(sub, dict) and sub.get(flag) is True

    def _dropped(self, node: dict, name: str, place: Place, mode: str) -> bool:
        sub = (node.get("properties") or {}).get(name)
        return isinstance(sub, dict) and self._skipped(sub, place, mode)


def _join(first: str | None, second: str) -> str:
    return f"{first} {second}" if first else second


def primary_type(schema: dict) -> str:
    """The one tool-YAML arg type that best describes a schema (the gateway coerces arguments to it)."""
    type_ = schema.get("type")
    if isinstance(type_, list):
        real = [t for t in type_ if t != "null"]
        return real[0] if len(real) == 1 else "string" if not real else _widest(real)
    if isinstance(type_, str) and type_ != "null":
        return type_
    for key in ("allOf", "oneOf", "anyOf"):
        subs = [s for s in schema.get(key) or [] if isinstance(s, dict)]
        types = {primary_type(s) for s in subs if s.get("type") or s.get("properties") or s.get(key)}
        if len(types) == 1:
            return types.pop()
        if types and types <= {"integer", "number"}:
            return "number"
    if "properties" in schema:
        return "object"
    return "string"


def _widest(types: list[str]) -> str:
    if set(types) <= {"integer", "number"}:
        return "number"
    return "object" if "object" in types else "array" if "array" in types else types[0]


def is_nullable(schema: dict) -> bool:
    type_ = schema.get("type")
    return isinstance(type_, list) and "null" in type_
