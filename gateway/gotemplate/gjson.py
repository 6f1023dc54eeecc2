"""The basic GJSON path syntax (dotted keys, indexes, `#`, `#.key`, escapes) over decoded JSON values."""
from __future__ import annotations

from typing import Any, Callable

from .values import JsonDict, JsonList, cache_short

HASH = object()  # the `#` component
MAX_PATH = 4096  # characters; a path is parsed character by character
MISSING = object()


class PathError(ValueError):
    """A path using GJSON syntax this implementation does not support."""


@cache_short(1024)
def parse_path(path: str) -> tuple:
    """Components of a path: key strings and HASH; raises PathError for unsupported syntax."""
    if path == "":
        raise PathError("the path is empty")
    if len(path) > MAX_PATH:
        raise PathError(f"the path is longer than {MAX_PATH} characters")
    if path[0] in "{[":
        raise PathError("multipaths ({...} or [...]) are not supported")
    if path.startswith(".."):
        raise PathError("JSON Lines paths (..) are not supported")
    if path[0] == "!":
        raise PathError("literals (!true) are not supported")
    comps: list = []
    cur: list[str] = []
    escaped_any = False
    i = 0
    n = len(path)
    while i <= n:
        c = path[i] if i < n else "."
        if c == "\\" and i + 1 < n:
            cur.append(path[i + 1])
            escaped_any = True
            i += 2
            continue
        if c == ".":
            comp = "".join(cur)
            if comp == "" and not escaped_any:
                raise PathError("empty path component (two dots in a row, or a leading/trailing dot)")
            if comp == "#" and not escaped_any:
                comps.append(HASH)
            else:
                comps.append(comp)
            cur = []
            escaped_any = False
            i += 1
            continue
        if c in "*?":
            raise PathError("wildcards (* and ?) are not supported; escape them with \\ to match literally")
        if c == "|":
            raise PathError("pipes (|) are not supported")
        if c == "@" and not cur and not escaped_any:
            raise PathError("modifiers (@...) are not supported")
        if c == "#" and i + 1 < n and path[i + 1] == "(" and not cur:
            raise PathError("queries (#(...)) are not supported")
        cur.append(c)
        i += 1
    return tuple(comps)


def _no_clock():
    return None


def get(value: Any, comps: tuple, start: int = 0, tick: Callable[[], None] = _no_clock) -> Any:
    """The value at the path, or MISSING; `tick` is called per `#` element (a `#.#` path walks lists of lists)."""
    v = value
    for i in range(start, len(comps)):
        c = comps[i]
        if c is HASH:
            if not isinstance(v, list):
                return MISSING
            if i == len(comps) - 1:
                return len(v)
            out = JsonList()
            for e in v:
                tick()
                r = get(e, comps, i + 1, tick)
                if r is not MISSING:
                    out.append(r)
            return out
        if isinstance(v, dict):
            if c not in v:
                return MISSING
            v = v[c]
        elif isinstance(v, list):
            if not (c.isascii() and c.isdigit()):
                return MISSING
            idx = int(c)
            if idx >= len(v):
                return MISSING
            v = v[idx]
        else:
            return MISSING
    return v


def lookup(value: Any, path: str, tick: Callable[[], None] = _no_clock) -> Any:
    """gjson "path" as a template sees it: nil when missing; objects and arrays print as JSON."""
    r = get(value, parse_path(path), 0, tick)
    if r is MISSING:
        return None
    if isinstance(r, dict) and not isinstance(r, JsonDict):
        return JsonDict(r)
    if isinstance(r, list) and not isinstance(r, JsonList):
        return JsonList(r)
    return r
