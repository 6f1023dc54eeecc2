"""Safe reading of a tool YAML document into plain values with their lines, within size, alias and depth limits."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .specs import Path, ToolYamlError, error_entry

MAX_ALIASES = 200
MAX_VALUES = 200_000  # values after alias expansion: stops "billion laughs" documents
MAX_DEPTH = 64

TAG = "tag:yaml.org,2002:"


# --------------------------------------------------------------------------------------------------------------------
# Composing: nodes with marks, YAML 1.2 core scalars (as Go's yaml.v3 in Higress reads them)


class _Loader(yaml.SafeLoader):
    """A safe composer whose plain scalars resolve as in YAML 1.2 (`yes`, `on`, `1:30` stay text), counting aliases."""

    yaml_implicit_resolvers: dict = {}

    def __init__(self, stream: str):
        super().__init__(stream)
        self.alias_count = 0
        self.node_count = 0
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise yaml.MarkedYAMLError(
                    problem=f"more than {MAX_ALIASES} YAML aliases (*name); write the values out",
                    problem_mark=self.peek_event().start_mark,
                )
        # PyYAML composes recursively, one Python frame per level, and keeps every node: bound both here, before
        # a deep or huge document can exhaust the stack or the time of the request.
        self.node_count += 1
        if self.node_count > MAX_VALUES:
            raise _Refused(f"The document has more than {MAX_VALUES:,} values.", self.peek_event().start_mark)
        if self.depth >= MAX_DEPTH:
            raise _Refused(f"Values are nested more than {MAX_DEPTH} levels deep.", self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Refused(Exception):
    """A document beyond the composer's limits: the message and where it was hit."""

    def __init__(self, message: str, mark):
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark else None


_Loader.add_implicit_resolver(TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    TAG + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    TAG + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(TAG + "merge", re.compile(r"^(?:<<)$"), ["<"])


try:
    from yaml.cyaml import CParser as _Parser
except ImportError:  # PyYAML built without libyaml
    _Parser = None


class _CLoader(_Parser or yaml.SafeLoader, yaml.constructor.SafeConstructor, yaml.resolver.BaseResolver):
    """libyaml's composer with the same YAML 1.2 scalars, for large documents (an OpenAPI import's tools).

    libyaml bounds nesting itself (1,000 levels); the node, alias and depth limits are checked on the composed
    graph by _check_graph, with the same messages as _Loader's.
    """


_CLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
# Below this size the Python composer's cost does not matter and its errors point exactly where a limit was hit.
C_COMPOSER_MIN_BYTES = 256 * 1024


def _check_graph(root: Node) -> None:
    seen: set[int] = set()
    aliases = values = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise _Refused(f"The document has more than {MAX_VALUES:,} values.", node.start_mark)
        if depth > MAX_DEPTH:
            raise _Refused(f"Values are nested more than {MAX_DEPTH} levels deep.", node.start_mark)
        if id(node) in seen:
            aliases += 1  # a node met twice is an alias of it
            if aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} YAML aliases (*name); write the values out", node.start_mark)
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def compose(text: str | bytes, *, max_bytes: int) -> Node | None:
    """The document's root node (None when empty); raises ToolYamlError for size, encoding and syntax problems."""

    def fail(message: str, line: int | None = None) -> ToolYamlError:
        return ToolYamlError([error_entry((), line, message)])

    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw) > max_bytes:
        raise fail(f"The document is {len(raw):,} bytes; the limit is {max_bytes:,}.")
    if not isinstance(text, str):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"The document is not UTF-8 text (byte {exc.start}).") from None

    large = len(raw) >= C_COMPOSER_MIN_BYTES and _Parser is not None
    try:
        # The reader checks the characters as the loader is built: a NUL or other control character fails here.
        loader = _CLoader(text) if large else _Loader(text)
    except yaml.YAMLError as exc:
        raise fail(f"YAML syntax: {exc}") from None
    try:
        node = loader.get_single_node()
        if large and node is not None:
            _check_graph(node)
        return node
    except _Refused as exc:
        raise fail(exc.message, exc.line) from None
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


# --------------------------------------------------------------------------------------------------------------------
# Building: plain values, each remembered with its lines


@dataclass
class Pos:
    key_line: int | None  # 1-based line of `key:` (None for sequence items)
    value_line: int  # 1-based line where the value starts
    content_line: int  # 1-based line of the first line of a scalar's text
    literal: bool  # a `|` block: template line N is content_line + N - 1


class Builder:
    """Turns composed nodes into plain values, remembering each value's lines by path."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        self.positions: dict[Path, Pos] = {}
        self.values = 0

    def _error(self, path: Path, line: int | None, message: str) -> None:
        self.errors.append(error_entry(path, line, message))

    def build(self, node, path: Path, key_line: int | None = None, stack: tuple = ()) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            message = f"The document expands to more than {MAX_VALUES} values (YAML aliases?)."
            raise ToolYamlError(self.errors + [error_entry((), None, message)])
        line = node.start_mark.line + 1
        literal = isinstance(node, ScalarNode) and node.style == "|"
        content = line + 1 if isinstance(node, ScalarNode) and node.style in ("|", ">") else line
        self.positions.setdefault(path, Pos(key_line, line, content, literal))
        if id(node) in stack:
            self._error(path, line, "A YAML alias refers to its own anchor (a recursive value).")
            return None
        if len(stack) >= MAX_DEPTH:
            self._error(path, line, f"Values are nested more than {MAX_DEPTH} levels deep.")
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        stack = stack + (id(node),)
        if node.tag not in (TAG + "seq", TAG + "map"):
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
            if isinstance(key_node, ScalarNode) and key_node.tag == TAG + "merge":
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
        if tag == TAG + "str":
            return value
        if tag == TAG + "null":
            return None
        if tag == TAG + "bool" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if tag == TAG + "int":
            try:
                text = value.replace("_", "")
                if text.startswith(("0o", "0x")):
                    return int(text, 0)
                return int(text, 10)
            except ValueError:
                pass
        if tag == TAG + "float":
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
        if tag in (TAG + "bool", TAG + "int", TAG + "float"):
            self._error(path, line, f"“{value}” is not a valid {tag.rsplit(':', 1)[1]}.")
            return None
        self._error(path, line, f"Unsupported YAML tag {tag}; use plain values.")
        return None
