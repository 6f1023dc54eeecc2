"""One OpenAPI operation as one tool of the REST-to-MCP YAML: arguments, request template, output schema."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .limits import pointer_of
from .refs import Place, RefError, Refs
from .schemas import SchemaBudget, SchemaReader, is_nullable, primary_type

# JSON Schema keywords a tool argument may carry besides Higress's own (console.toolyaml.validate accepts them).
ARG_KEYWORDS = ("format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "examples", "allOf", "oneOf",
                "anyOf", "additionalProperties", "contentEncoding", "contentMediaType", "deprecated")
# OpenAPI 3: header parameters of these names are ignored (the request's own headers say them).
_IGNORED_HEADERS = ("accept", "content-type", "authorization")
MULTIPART_BOUNDARY = "mcpgw-form-boundary-7d1f0a"
DESCRIPTION_LIMIT = 1000


@dataclass
class Operation:
    method: str
    path: str
    node: dict
    path_item: dict
    place: Place
    pointer: str


@dataclass
class Built:
    tool: dict  # the tool as it appears under `tools:` (without the name, set by the caller)
    warnings: list[dict] = field(default_factory=list)
    security: list[dict] | None = None  # the operation's own security requirements (None: the document's)


def trim(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    text = " ".join(part.strip() for part in text.strip().splitlines() if part.strip()) if len(text) > limit \
        else text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for stop in (". ", "\n", "; ", ", ", " "):
        at = cut.rfind(stop)
        if at > limit * 0.6:
            return cut[:at + (1 if stop.startswith(".") else 0)].rstrip() + " …"
    return cut.rstrip() + "…"


def _fits(type_: str, value: Any) -> bool:
    if value is None:
        return False
    return {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }[type_](value)


def _coerced(type_: str, value: Any) -> Any:
    """A default or enum value written as the wrong type in the spec ("10" for an integer), read as it means."""
    if _fits(type_, value):
        return value
    if isinstance(value, str):
        try:
            if type_ == "integer":
                return int(value)
            if type_ == "number":
                return float(value)
        except ValueError:
            return None
        if type_ == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if type_ == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if type_ == "number" and isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def make_arg(name: str, schema: dict, *, position: str | None, required: bool, description: str = "",
             warn) -> dict:
    """A tool-YAML argument from a JSON Schema: Higress's fields plus the JSON Schema keywords that apply."""
    type_ = primary_type(schema)
    arg: dict[str, Any] = {"name": name}
    text = description or schema.get("description") or ""
    if text:
        arg["description"] = trim(str(text), 500)
    arg["type"] = type_
    if required:
        arg["required"] = True
    enum = schema.get("enum")
    if isinstance(enum, list):
        values = [_coerced(type_, v) for v in enum if v is not None]
        values = [v for v in values if v is not None]
        if values:
            arg["enum"] = values
    if "default" in schema and schema["default"] is not None:
        value = _coerced(type_, schema["default"])
        if value is None or ("enum" in arg and value not in arg["enum"]):
            warn(f"Argument {name}: the default {json.dumps(schema['default'])[:60]} is not a valid {type_}; "
                 "it is left out.")
        else:
            arg["default"] = value
    if type_ == "array" and isinstance(schema.get("items"), dict):
        arg["items"] = schema["items"]
    if type_ == "object" and isinstance(schema.get("properties"), dict):
        arg["properties"] = schema["properties"]
    for key in ARG_KEYWORDS:
        if key in schema and (key != "additionalProperties" or type_ == "object"):
            arg[key] = schema[key]
    if is_nullable(schema):
        arg["nullable"] = True
    if position:
        arg["position"] = position
    return arg


def _object_parts(schema: dict) -> tuple[dict, list[str]] | None:
    """Properties and required names of an object schema, allOf members merged; None when it is not one object."""
    props: dict = {}
    required: list[str] = []
    if isinstance(schema.get("properties"), dict):
        props.update(schema["properties"])
        required += [r for r in schema.get("required") or [] if isinstance(r, str)]
    for member in schema.get("allOf") or []:
        if not isinstance(member, dict):
            return None
        parts = _object_parts(member)
        if parts is None:
            return None
        props.update(parts[0])
        required += parts[1]
    if schema.get("oneOf") or schema.get("anyOf"):
        return None
    if not props:
        return None
    if schema.get("type") not in (None, "object") and schema.get("type") != ["object", "null"]:
        return None
    return props, [r for r in dict.fromkeys(required) if r in props]


def _json_media(media: str) -> bool:
    media = media.lower().split(";")[0].strip()
    return media == "application/json" or media.endswith("+json") or media == "*/*" or media == "application/*"


def _pick_media(content: dict) -> str | None:
    medias = [m for m in content if isinstance(m, str)]
    for test in (_json_media, lambda m: m.startswith("application/x-www-form-urlencoded"),
                 lambda m: m.startswith("multipart/form-data")):
        for media in medias:
            if test(media.lower()):
                return media
    return medias[0] if medias else None


def _literal(name: str) -> str:
    return json.dumps(name)  # a Go template string literal for the same text


class OperationBuilder:
    def __init__(self, refs: Refs, reader: SchemaReader, *, version: str, doc: dict, limits):
        self.refs = refs
        self.reader = reader
        self.version = version
        self.doc = doc
        self.limits = limits

    def build(self, op: Operation, url_prefix: str) -> Built:
        warnings: list[dict] = []

        def warn(message: str, pointer: str | None = None) -> None:
            warnings.append({"message": message, "location": {"pointer": pointer or op.pointer}})

        budget = SchemaBudget(self.limits.max_schema_values, self.limits.max_schema_depth)
        params = self._parameters(op, warn)
        args: list[dict] = []
        names: dict[str, str] = {}
        body_schema: dict | None = None
        body_required = False
        body_media: str | None = None
        form_fields: list[tuple[dict, Place]] = []

        for (name, location), (param, place, pointer) in params.items():
            if location == "body":
                body_media = self._swagger2_media(op, "consumes")
                body_schema = self.reader.read(param.get("schema") or {}, place, budget, mode="input")
                body_required = bool(param.get("required"))
                continue
            if location == "formData":
                form_fields.append((param, place))
                continue
            if location not in ("path", "query", "header", "cookie"):
                warn(f"Parameter {name} is in “{location}”, which OpenAPI does not define; it is left out.", pointer)
                continue
            if location == "header" and name.lower() in _IGNORED_HEADERS and self.version != "2.0":
                continue
            if name in names:
                warn(f"Parameter {name} appears both in {names[name]} and in {location}; tool arguments need "
                     f"distinct names, so the {location} one is left out.", pointer)
                continue
            schema = self._param_schema(param, place, budget, warn, pointer)
            required = bool(param.get("required")) or location == "path"
            description = param.get("description") or ""
            if param.get("deprecated"):
                description = ("Deprecated. " + description).strip()
            args.append(make_arg(name, schema, position=location, required=required, description=description,
                                 warn=lambda m: warn(m, pointer)))
            names[name] = location

        path = op.path
        declared_path = {a["name"] for a in args if a.get("position") == "path"}
        in_path = re.findall(r"\{([^{}/]+)\}", path)
        for placeholder in in_path:
            if placeholder not in declared_path:
                if placeholder in names:
                    warn(f"The path uses {{{placeholder}}}, declared in {names[placeholder]} instead; it is "
                         "treated as a path parameter.")
                    args = [a for a in args if a["name"] != placeholder]
                else:
                    warn(f"The path uses {{{placeholder}}} but declares no such parameter; it is added as a "
                         "required text argument.")
                args.append({"name": placeholder, "type": "string", "required": True, "position": "path"})
                names[placeholder] = "path"
        for arg in list(args):
            if arg.get("position") == "path" and arg["name"] not in in_path:
                warn(f"Path parameter {arg['name']} is not in the path {path}; it is left out.")
                args.remove(arg)

        request: dict[str, Any] = {"url": url_prefix + path, "method": op.method.upper()}
        headers: list[dict] = []
        body_template = None

        if self.version != "2.0":
            body = op.node.get("requestBody")
            if body is not None:
                try:
                    body, body_place, _ = self.refs.follow(body, op.place)
                except RefError as exc:
                    warn(f"The request body: {exc}; it is left out.")
                    body = None
                if isinstance(body, dict) and isinstance(body.get("content"), dict) and body["content"]:
                    body_media = _pick_media(body["content"])
                    media_object = body["content"].get(body_media) or {}
                    body_schema = self.reader.read((media_object or {}).get("schema") or {}, body_place, budget,
                                                   mode="input")
                    body_required = bool(body.get("required"))
        elif form_fields:
            multipart = any(p.get("type") == "file" for p, _ in form_fields) or \
                "multipart/form-data" in (self._swagger2_list(op, "consumes") or []) and \
                "application/x-www-form-urlencoded" not in (self._swagger2_list(op, "consumes") or [])
            body_media = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
            props, required = {}, []
            for param, place in form_fields:
                props[param["name"]] = self.reader.read(param, place, budget, mode="input")
                if param.get("required"):
                    required.append(param["name"])
            body_schema = {"type": "object", "properties": props, "required": required}
            body_required = bool(required)

        if body_schema is not None and body_media is not None:
            media = body_media.lower()
            parts = _object_parts(body_schema)
            clash = parts is not None and any(p in names for p in parts[0])
            if media.startswith("multipart/form-data"):
                if parts is None or clash:
                    parts = ({"file": {"type": "string", "contentEncoding": "base64"}}, ["file"]) if parts is None \
                        else parts
                    if clash:
                        warn("A form field has the name of a parameter; it is left out of the form.")
                        parts = ({k: v for k, v in parts[0].items() if k not in names},
                                 [r for r in parts[1] if r not in names])
                body_template = self._multipart(parts, args, names, warn)
                headers.append({"key": "Content-Type",
                                "value": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"})
            elif parts is not None and not clash and (_json_media(media) or "x-www-form-urlencoded" in media):
                # Required first, then by name: a mapping's order is not part of a description (a YAML tool may
                # sort it), and the tools must not read as changed when only the order moved.
                for prop, sub in sorted(parts[0].items(), key=lambda kv: (kv[0] not in parts[1], kv[0])):
                    args.append(make_arg(prop, sub if isinstance(sub, dict) else {}, position="body",
                                         required=prop in parts[1],
                                         warn=warn))
                    names[prop] = "body"
                if "x-www-form-urlencoded" in media:
                    headers.append({"key": "Content-Type", "value": "application/x-www-form-urlencoded"})
                elif (media.split(";")[0].strip() != "application/json"
                      and not media.startswith(("*/", "application/*"))):
                    headers.append({"key": "Content-Type", "value": body_media})
            else:
                arg_name = "body" if "body" not in names else "requestBody"
                if clash:
                    warn(f"A body property has the name of a parameter; the whole body is one argument, {arg_name}.")
                arg = make_arg(arg_name, body_schema, position=None, required=body_required,
                               description=body_schema.get("description") or "The request body.", warn=warn)
                value = f"(index .args {_literal(arg_name)})"
                if _json_media(media) or arg["type"] in ("object", "array"):
                    body_template = f"{{{{if hasKey .args {_literal(arg_name)}}}}}{{{{toJson {value}}}}}{{{{end}}}}"
                    content_type = "application/json" if media in ("*/*", "application/*") else body_media
                else:
                    body_template = f"{{{{index .args {_literal(arg_name)}}}}}"
                    content_type = body_media
                    if arg["type"] != "string":
                        arg["type"] = "string"
                args.append(arg)
                names[arg_name] = "body"
                headers.append({"key": "Content-Type", "value": content_type})
        if headers:
            request["headers"] = headers
        if body_template:
            request["body"] = body_template

        tool: dict[str, Any] = {"description": "", "args": args, "requestTemplate": request}
        output = self._output_schema(op, warn)
        if output is not None:
            tool["outputSchema"] = output
        for note in budget.notes:
            warn(note)
        security = op.node.get("security")
        return Built(tool=tool, warnings=warnings,
                     security=[req for req in security if isinstance(req, dict)] if isinstance(security, list)
                     else None)

    # ---------------------------------------------------------------- parameters

    def _parameters(self, op: Operation, warn) -> dict[tuple[str, str], tuple[dict, Place, str]]:
        """Path-level then operation-level parameters, references followed; the operation's win."""
        merged: dict[tuple[str, str], tuple[dict, Place, str]] = {}
        for owner, where, base in ((op.path_item, op.place, op.pointer.rsplit("/", 1)[0]),
                                   (op.node, op.place, op.pointer)):
            raw = owner.get("parameters")
            if raw is None:
                continue
            if not isinstance(raw, list):
                warn("parameters must be a list; they are left out.", base + "/parameters")
                continue
            for i, item in enumerate(raw):
                pointer = f"{base}/parameters/{i}"
                try:
                    param, place, _ = self.refs.follow(item, where)
                except RefError as exc:
                    warn(f"Parameter {i}: {exc}; it is left out.", pointer)
                    continue
                if not isinstance(param, dict) or not isinstance(param.get("name"), str) or not param.get("in"):
                    warn(f"Parameter {i} has no name or no “in”; it is left out.", pointer)
                    continue
                merged[(param["name"], str(param["in"]))] = (param, place, pointer)
        return merged

    def _param_schema(self, param: dict, place: Place, budget: SchemaBudget, warn, pointer: str) -> dict:
        if self.version == "2.0":
            schema = self.reader.read({k: v for k, v in param.items() if k not in ("name", "in", "required",
                                                                                  "description")},
                                      place, budget, mode="input")
            if param.get("collectionFormat") not in (None, "csv", "multi") and param.get("type") == "array":
                warn(f"Parameter {param['name']} uses collectionFormat {param['collectionFormat']}; the gateway "
                     "repeats the parameter for each value.", pointer)
            return schema
        if isinstance(param.get("schema"), dict):
            schema = self.reader.read(param["schema"], place, budget, mode="input")
        elif isinstance(param.get("content"), dict) and param["content"]:
            media = next(iter(param["content"]))
            schema = self.reader.read((param["content"][media] or {}).get("schema") or {}, place, budget,
                                      mode="input")
            warn(f"Parameter {param['name']} is described as {media} content; it is sent as JSON text.", pointer)
        else:
            schema = {"type": "string"}
        if "example" in param and "examples" not in schema:
            schema = {**schema, "examples": [param["example"]]}
        return schema

    # ---------------------------------------------------------------- bodies and answers

    def _swagger2_list(self, op: Operation, key: str) -> list[str] | None:
        value = op.node.get(key, self.doc.get(key))
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None

    def _swagger2_media(self, op: Operation, key: str) -> str:
        medias = self._swagger2_list(op, key) or []
        for media in medias:
            if _json_media(media):
                return media
        return medias[0] if medias else "application/json"

    def _multipart(self, parts: tuple[dict, list[str]], args: list[dict], names: dict, warn) -> str:
        props, required = parts
        out = []
        for prop, sub in sorted(props.items(), key=lambda kv: (kv[0] not in required, kv[0])):
            sub = sub if isinstance(sub, dict) else {}
            is_file = sub.get("format") in ("binary", "byte") or sub.get("contentEncoding") == "base64" or \
                bool(sub.get("contentMediaType"))
            if is_file:
                sub = {**{k: v for k, v in sub.items() if k not in ("format", "type")}, "type": "string",
                       "contentEncoding": "base64"}
                sub["description"] = ((sub.get("description") or "") + " File content, base64-encoded "
                                      "(sent as a base64 part).").strip()
            arg = make_arg(prop, sub, position=None, required=prop in required, warn=warn)
            args.append(arg)
            names[prop] = "body"
            key = _literal(prop)
            value = f"(index .args {key})"
            if is_file:
                head = (f'Content-Disposition: form-data; name={json.dumps(prop)}; filename={json.dumps(prop)}\r\n'
                        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n")
                content = f"{{{{index .args {key}}}}}"
            else:
                head = f"Content-Disposition: form-data; name={json.dumps(prop)}\r\n"
                content = f"{{{{toJson {value}}}}}" if arg["type"] in ("object", "array") else \
                    f"{{{{index .args {key}}}}}"
            out.append(f"{{{{if hasKey .args {key}}}}}--{MULTIPART_BOUNDARY}\r\n{head}\r\n{content}\r\n{{{{end}}}}")
        return "".join(out) + f"--{MULTIPART_BOUNDARY}--\r\n"

    def _output_schema(self, op: Operation, warn) -> dict | None:
        responses = op.node.get("responses")
        if not isinstance(responses, dict):
            return None
        codes = sorted((str(c) for c in responses), key=lambda c: (not c.startswith("2"), c))
        code = next((c for c in codes if c.startswith("2")), "default" if "default" in responses else None)
        if code is None:
            return None
        try:
            response, place, _ = self.refs.follow(responses[code] if code in responses else responses[int(code)],
                                                  op.place)
        except (RefError, KeyError, ValueError) as exc:
            warn(f"Response {code}: {exc}; it gives no output schema.")
            return None
        if not isinstance(response, dict):
            return None
        schema = None
        if self.version == "2.0":
            schema = response.get("schema")
        elif isinstance(response.get("content"), dict):
            for media, media_object in response["content"].items():
                if isinstance(media, str) and _json_media(media) and isinstance(media_object, dict):
                    schema = media_object.get("schema")
                    break
        if not isinstance(schema, dict):
            return None
        budget = SchemaBudget(self.limits.max_output_schema_values, self.limits.max_schema_depth)
        out = self.reader.read(schema, place, budget, mode="output")
        if primary_type(out) != "object" or not (_object_parts(out) or out.get("additionalProperties")):
            return None
        out = dict(out)
        out["type"] = "object"
        return out


def op_pointer(path: str, method: str) -> str:
    return pointer_of(("paths", path, method))
