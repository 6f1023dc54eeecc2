"""Reading the uploaded files (JSON or YAML, one, several or a zip) into plain documents, within the import limits."""
from __future__ import annotations

import datetime as dt
import io
import json
import posixpath
import zipfile
from dataclasses import dataclass, field
from typing import Any

import yaml

from gateway import boundedjson

from .limits import ImportLimits, SpecError, problem

try:  # libyaml when present: the pure-Python parser takes about a minute for 10 MB
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


class _SpecLoader(_BaseLoader):
    """A safe loader that keeps timestamps as the text they were written as (documents become JSON)."""


_SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))
_SpecLoader.add_constructor("tag:yaml.org,2002:binary", lambda loader, node: loader.construct_scalar(node))

# A JSON text with more containers than this is refused before it is parsed (each costs memory once built).
_MAX_CONTAINERS = 1_500_000
_SPEC_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class Sources:
    """The documents of one import by file name; `entry` names the one whose paths become tools."""

    documents: dict[str, Any]
    entry: str
    warnings: list[dict] = field(default_factory=list)


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _unzip(name: str, data: bytes, limits: ImportLimits) -> list[tuple[str, bytes]]:
    """The spec files inside a zip, under names relative to its root; sizes are checked before reading."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise SpecError([problem(f"{name} is not a readable zip file ({exc}).", file=name)]) from None
    members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")
               and m.filename.lower().endswith(_SPEC_SUFFIXES)]
    if len(members) > limits.max_files:
        raise SpecError([problem(f"{name} holds {len(members)} description files; the limit is {limits.max_files}.",
                                 file=name)])
    total = sum(m.file_size for m in members)
    if total > limits.max_bytes:
        raise SpecError([problem(f"{name} unpacks to {total:,} bytes; the limit is {limits.max_bytes:,}.",
                                 file=name)])
    out = []
    for member in members:
        path = posixpath.normpath(member.filename.replace("\\", "/")).lstrip("/")
        if path.startswith("../") or path == "..":
            raise SpecError([problem(f"{name}: the entry {member.filename} points outside the archive.", file=name)])
        with archive.open(member) as handle:
            # The header's size may lie: read at most one byte more than it claims.
            content = handle.read(member.file_size + 1)
        if len(content) > member.file_size:
            raise SpecError([problem(f"{name}: {member.filename} is larger than its zip header says.", file=name)])
        out.append((path, content))
    if not out:
        raise SpecError([problem(f"{name} contains no .json, .yaml or .yml file.", file=name)])
    return out


def _normal(value: Any, limits: ImportLimits, name: str) -> Any:
    """YAML values as JSON values: keys as text (`200:` is a status code), shared aliases copied out, within limits."""
    budget = [limits.max_values, limits.max_aliases]
    seen: set[int] = set()

    def walk(node: Any, depth: int, stack: set[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise SpecError([problem(f"{name} expands to more than {limits.max_values:,} values (YAML aliases?).",
                                     file=name)])
        if isinstance(node, (dict, list)):
            # A container met twice is a YAML alias being expanded: an alias bomb stops here, early.
            if id(node) in seen:
                budget[1] -= 1
                if budget[1] < 0:
                    raise SpecError([problem(f"{name} expands more than {limits.max_aliases:,} YAML aliases "
                                             "(an alias bomb?); write the values out.", file=name)])
            else:
                seen.add(id(node))
        if depth > limits.max_depth:
            raise SpecError([problem(f"{name} is nested more than {limits.max_depth} levels deep.", file=name)])
        if isinstance(node, dict):
            if id(node) in stack:
                raise SpecError([problem(f"{name} has a YAML alias inside its own anchor (a value that contains "
                                         "itself).", file=name)])
            stack.add(id(node))
            out = {_key(k): walk(v, depth + 1, stack) for k, v in node.items()}
            stack.discard(id(node))
            return out
        if isinstance(node, (list, tuple, set)):
            if id(node) in stack:
                raise SpecError([problem(f"{name} has a YAML alias inside its own anchor (a value that contains "
                                         "itself).", file=name)])
            stack.add(id(node))
            out_list = [walk(v, depth + 1, stack) for v in node]
            stack.discard(id(node))
            return out_list
        if isinstance(node, float) and node != node:
            return None
        if isinstance(node, (dt.date, dt.datetime)):
            return node.isoformat()
        if isinstance(node, bytes):
            return node.decode("utf-8", "replace")
        return node

    try:
        return walk(value, 0, set())
    except RecursionError:
        raise SpecError([problem(f"{name} is nested too deeply.", file=name)]) from None


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def parse_document(name: str, data: bytes, limits: ImportLimits) -> Any:
    """One file's document; JSON or YAML by its content, errors with the file and line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([problem(f"{name} is not UTF-8 text (byte {exc.start}).", file=name)]) from None
    stripped = text.lstrip()
    if not stripped:
        raise SpecError([problem(f"{name} is empty.", file=name)])
    if stripped[0] in "{[":
        if text.count("{") + text.count("[") > _MAX_CONTAINERS:
            raise SpecError([problem(f"{name} has more than {_MAX_CONTAINERS:,} objects and arrays.", file=name)])
        try:
            return boundedjson.loads(text, max_depth=limits.max_depth, max_values=limits.max_values)
        except json.JSONDecodeError as exc:
            raise SpecError([problem(f"{name}: JSON syntax: {exc.msg}.", file=name, line=exc.lineno)]) from None
        except ValueError as exc:
            if stripped[0] == "[":
                raise SpecError([problem(f"{name}: {exc}.", file=name)]) from None
            # JSON is YAML: a JSON-looking file with YAML-only syntax gets the YAML reader's verdict below.
            if "nesting" in str(exc) or "values" in str(exc):
                raise SpecError([problem(f"{name}: {exc}.", file=name)]) from None
    try:
        loaded = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise SpecError([problem(f"{name}: YAML syntax: {message}.", file=name,
                                 line=mark.line + 1 if mark else None)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([problem(f"{name}: YAML syntax: {exc}.", file=name)]) from None
    except RecursionError:
        raise SpecError([problem(f"{name} is nested too deeply.", file=name)]) from None
    return _normal(loaded, limits, name)


def _is_spec(doc: Any) -> bool:
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc)


def load_sources(files: list[tuple[str, bytes]], limits: ImportLimits, *, entry: str | None = None) -> Sources:
    """All documents of an import; the entry is the named one, else the description that has paths."""
    if not files:
        raise SpecError([problem("No description was given: upload a file, paste its text or give its URL.")])
    expanded: list[tuple[str, bytes]] = []
    for name, data in files:
        expanded.extend(_unzip(name, data, limits) if _is_zip(data) else [(name, data)])
    if len(expanded) > limits.max_files:
        raise SpecError([problem(f"{len(expanded)} files were given; the limit is {limits.max_files}.")])
    total = sum(len(data) for _, data in expanded)
    if total > limits.max_bytes:
        mb = limits.max_bytes / (1024 * 1024)
        raise SpecError([problem(f"The description is {total:,} bytes; the limit is {limits.max_bytes:,} "
                                 f"({mb:g} MB, OPENAPI_IMPORT_MAX_BYTES).")])
    documents: dict[str, Any] = {}
    for name, data in expanded:
        name = posixpath.normpath(name.replace("\\", "/")).lstrip("/") or "spec"
        if name in documents:
            raise SpecError([problem(f"Two files are named {name}.", file=name)])
        documents[name] = parse_document(name, data, limits)
    if entry is not None:
        if entry not in documents:
            raise SpecError([problem(f"No file is named {entry}.", file=entry)])
        chosen = entry
    else:
        specs = [n for n, d in documents.items() if _is_spec(d)]
        with_paths = [n for n in specs if isinstance(documents[n].get("paths"), dict) and documents[n]["paths"]]
        candidates = with_paths or specs
        if not candidates:
            names = ", ".join(sorted(documents)[:5])
            raise SpecError([problem(f"No OpenAPI or Swagger description found in {names}: the main file starts "
                                     "with `openapi: 3.x` or `swagger: \"2.0\"`.", file=sorted(documents)[0])])
        # Several descriptions with paths: the shortest path name is the usual root (openapi.yaml beside paths/…).
        chosen = sorted(candidates, key=lambda n: (n.count("/"), len(n), n))[0]
    warnings = []
    others = [n for n in documents if n != chosen and _is_spec(documents[n]) and documents[n].get("paths")]
    if others:
        warnings.append(problem(f"{chosen} was imported; {', '.join(sorted(others)[:5])} also describe "
                                "operations and are read only where referenced.", file=chosen))
    return Sources(documents=documents, entry=chosen, warnings=warnings)
