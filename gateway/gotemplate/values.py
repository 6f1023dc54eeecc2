"""Go-compatible views of JSON-shaped values: truth, type names, fmt-style printing and encoding/json output."""
from __future__ import annotations

import json
import math
from functools import lru_cache, wraps
from json.encoder import encode_basestring
from typing import Any

from .errors import FuncError

MAX_VALUE_DEPTH = 100  # nesting printed or encoded before giving up (also stops self-referencing maps)
CACHED_KEY_LENGTH = 1024  # longer strings are parsed every time rather than kept


def cache_short(maxsize: int):
    """lru_cache for a function of one string that skips long strings: data could fill it with megabytes."""
    def wrap(fn):
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def call(s):
            return cached(s) if len(s) <= CACHED_KEY_LENGTH else fn(s)

        call.cache_info = cached.cache_info
        call.cache_clear = cached.cache_clear
        return call

    return wrap


class OwnedDict(dict):
    """A map made while rendering (dict, fromJson, set on a copy); `set` and `unset` may change it in place."""

    __slots__ = ()


class JsonDict(dict):
    """An object returned by gjson; printed as compact JSON, as gjson's Result.String() does."""

    __slots__ = ()


class JsonList(list):
    """An array returned by gjson; printed as compact JSON."""

    __slots__ = ()


class GoTime:
    """A point in time (from `now`); prints like Go's time.Time."""

    __slots__ = ("dt",)

    def __init__(self, dt):
        self.dt = dt  # an aware datetime

    def __eq__(self, other):
        return isinstance(other, GoTime) and other.dt == self.dt

    def __hash__(self):
        return hash(self.dt)


def truth(v: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    if v is None:
        return False
    t = type(v)
    if t is bool:
        return v
    if t is str or t is list or t is dict:
        return len(v) > 0
    if t is int or t is float:
        return v != 0
    if isinstance(v, (str, list, dict, tuple)):
        return len(v) > 0
    if isinstance(v, (int, float)):
        return v != 0
    return True


def is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float or (t is not bool and isinstance(v, (int, float)))


def go_type(v: Any) -> str:
    """The Go type a JSON-decoded value would have, as %T prints it."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, GoTime):
        return "time.Time"
    return type(v).__name__


def go_kind(v: Any) -> str:
    """The reflect.Kind name of a JSON-decoded value (sprig's kindOf)."""
    if v is None:
        return "invalid"
    if isinstance(v, (list, tuple)):
        return "slice"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, GoTime):
        return "struct"
    return go_type(v)


# ---------------------------------------------------------------- numbers

def shortest_digits(a: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a positive finite float and the decimal point position.

    The value is 0.DIGITS x 10**dp, the convention of Go's strconv.
    """
    r = repr(a)
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    if fp == "0":
        fp = ""
    raw = ip + fp
    stripped = raw.lstrip("0")
    dp = len(ip) + (int(exp) if exp else 0) - (len(raw) - len(stripped))
    return (stripped.rstrip("0") or "0"), dp


def _e_form(digits: str, dp: int) -> str:
    exp = dp - 1
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _f_form(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def go_float(f: float) -> str:
    """A float64 as Go's %v prints it: shortest digits; exponent form below 1e-4 and from 1e6 (1e+06)."""
    a = abs(f)
    if 1e-4 <= a < 1e6:
        if f.is_integer():
            return str(int(f))
        return repr(f)  # Python's repr has the same digits and is not in exponent form here
    if f != f:
        return "NaN"
    if a == math.inf:
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    digits, dp = shortest_digits(a)
    return ("-" if f < 0 else "") + _e_form(digits, dp)


def json_float(f: float) -> str:
    """A float64 as Go's encoding/json writes it (ES6 style: exponent below 1e-6 and from 1e21)."""
    if f != f or f in (math.inf, -math.inf):
        raise FuncError(f"json: unsupported value: {go_float(f)}")
    a = abs(f)
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    if 1e-6 <= a < 1e21:
        if f.is_integer():
            return str(int(f))
        if 1e-4 <= a < 1e16:
            return repr(f)
        digits, dp = shortest_digits(a)
        return ("-" if f < 0 else "") + _f_form(digits, dp)
    digits, dp = shortest_digits(a)
    s = _e_form(digits, dp)
    if s[-4:-1] == "e-0":  # Go cleans e-07 to e-7
        s = s[:-2] + s[-1]
    return ("-" if f < 0 else "") + s


# ---------------------------------------------------------------- printing

def to_text(v: Any, limit: int) -> str:
    """How an action prints a value: nil is empty, lists and maps as JSON (as Higress prints its
    gjson-backed values, and what a model reads best), the rest like Go's fmt %v."""
    if type(v) is str:
        return v
    if v is None:
        return ""
    if isinstance(v, (list, tuple, dict)):
        return to_json(v, limit=limit)
    return fmt_v(v, limit)


def fmt_v(v: Any, limit: int, depth: int = 0) -> str:
    """Go's %v for a JSON-shaped value: [a b c], map[k:v ...] with sorted keys, <nil> for nil."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return go_float(v)
    if v is None:
        return "<nil>"
    if isinstance(v, (JsonList, JsonDict)):
        return to_json(v, limit=limit)
    if isinstance(v, (list, tuple)):
        if depth >= MAX_VALUE_DEPTH:
            raise FuncError(f"value is nested more than {MAX_VALUE_DEPTH} levels deep")
        parts = []
        total = 2
        for e in v:
            s = fmt_v(e, limit - total, depth + 1)
            total += len(s) + 1
            if total > limit:
                raise FuncError(f"value is longer than {limit} characters")
            parts.append(s)
        return "[" + " ".join(parts) + "]"
    if isinstance(v, dict):
        if depth >= MAX_VALUE_DEPTH:
            raise FuncError(f"value is nested more than {MAX_VALUE_DEPTH} levels deep")
        parts = []
        total = 5
        for k in sorted_keys(v):
            ks = fmt_v(k, limit, depth + 1)
            s = fmt_v(v[k], limit - total, depth + 1)
            total += len(ks) + len(s) + 2
            if total > limit:
                raise FuncError(f"value is longer than {limit} characters")
            parts.append(ks + ":" + s)
        return "map[" + " ".join(parts) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return go_float(float(v))
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, GoTime):
        from .timefmt import go_time_string

        return go_time_string(v.dt)
    return f"%!v({type(v).__name__})"


def sorted_keys(d: dict) -> list:
    """Keys in Go's map printing order (sorted); mixed key types sort by their text."""
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=lambda k: (type(k).__name__, fmt_v(k, 1 << 16)))


# ---------------------------------------------------------------- JSON

_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                            "\u2028": "\\u2028", "\u2029": "\\u2029"})
_JSON_ONLY_2028 = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029"})


class _NotPlain(Exception):
    pass


_DICTS = (dict, OwnedDict, JsonDict)
_LISTS = (list, JsonList, tuple)


def _plain_size(x: Any, depth: int) -> int:
    """An estimate of the JSON size of `x` if json.dumps would write exactly what Go writes; else _NotPlain.

    Python and Go differ only on some floats (5.0, 1e-5, 1e17...), non-string keys and types json
    does not know; all else is the same once <>& are escaped.
    """
    t = type(x)
    if t is str:
        return len(x) + 2
    if t is int or t is bool or x is None:
        return 20
    if t is float:
        a = abs(x)
        if 1e-4 <= a < 1e16 and not x.is_integer():
            return 24
        raise _NotPlain
    if depth >= MAX_VALUE_DEPTH:
        raise _NotPlain
    if t in _DICTS:
        n = 2
        for k, val in x.items():
            if type(k) is not str:
                raise _NotPlain
            tv = type(val)
            if tv is str:
                n += len(k) + len(val) + 6
            elif tv is int or tv is bool or val is None:
                n += len(k) + 24
            else:
                n += len(k) + 4 + _plain_size(val, depth + 1)
        return n
    if t in _LISTS:
        n = 2
        for e in x:
            te = type(e)
            if te is str:
                n += len(e) + 3
            elif te is int or te is bool or e is None:
                n += 21
            else:
                n += 1 + _plain_size(e, depth + 1)
        return n
    raise _NotPlain


def _escape_json_text(text: str, escape_html: bool) -> str:
    """Go's extra escapes; valid on a whole JSON text because these characters only occur inside strings."""
    if escape_html:
        if "<" in text:
            text = text.replace("<", "\\u003c")
        if ">" in text:
            text = text.replace(">", "\\u003e")
        if "&" in text:
            text = text.replace("&", "\\u0026")
    if "\u2028" in text:
        text = text.replace("\u2028", "\\u2028")
    if "\u2029" in text:
        text = text.replace("\u2029", "\\u2029")
    return text


def to_json(v: Any, *, limit: int, escape_html: bool = True, indent: str | None = None) -> str:
    """`v` as Go's encoding/json writes it: sorted keys, Go number forms, <>& escaped unless told not to."""
    table = _HTML_SAFE if escape_html else _JSON_ONLY_2028
    try:
        estimate = _plain_size(v, 0)
    except _NotPlain:
        estimate = -1
    if 0 <= estimate <= limit:
        text = json.dumps(v, ensure_ascii=False, sort_keys=True, check_circular=False, indent=indent,
                          separators=(",", ": ") if indent is not None else (",", ":"))
        text = _escape_json_text(text, escape_html)
        if len(text) > limit:
            raise FuncError(f"JSON text is longer than {limit} characters")
        return text
    return _to_json_slow(v, limit, table, indent)


def _to_json_slow(v: Any, limit: int, table: dict, indent: str | None) -> str:
    parts: list[str] = []
    size = 0

    def put(s: str):
        nonlocal size
        size += len(s)
        if size > limit:
            raise FuncError(f"JSON text is longer than {limit} characters")
        parts.append(s)

    def enc(x: Any, level: int):
        t = type(x)
        if t is str:
            put(encode_basestring(x).translate(table))
        elif x is None:
            put("null")
        elif t is bool:
            put("true" if x else "false")
        elif t is int:
            put(str(x))
        elif t is float:
            put(json_float(x))
        elif isinstance(x, dict):
            if level >= MAX_VALUE_DEPTH:
                raise FuncError(f"value is nested more than {MAX_VALUE_DEPTH} levels deep")
            if not x:
                put("{}")
                return
            put("{")
            inner = "\n" + indent * (level + 1) if indent is not None else ""
            first = True
            for k in sorted_keys(x):
                if not first:
                    put(",")
                first = False
                if inner:
                    put(inner)
                key = k if isinstance(k, str) else fmt_v(k, limit)
                put(encode_basestring(key).translate(table))
                put(": " if indent is not None else ":")
                enc(x[k], level + 1)
            if inner:
                put("\n" + indent * level)
            put("}")
        elif isinstance(x, (list, tuple)):
            if level >= MAX_VALUE_DEPTH:
                raise FuncError(f"value is nested more than {MAX_VALUE_DEPTH} levels deep")
            if not x:
                put("[]")
                return
            put("[")
            inner = "\n" + indent * (level + 1) if indent is not None else ""
            first = True
            for e in x:
                if not first:
                    put(",")
                first = False
                if inner:
                    put(inner)
                enc(e, level + 1)
            if inner:
                put("\n" + indent * level)
            put("]")
        elif isinstance(x, bool):
            put("true" if x else "false")
        elif isinstance(x, int):
            put(str(int(x)))
        elif isinstance(x, float):
            put(json_float(float(x)))
        elif isinstance(x, str):
            put(encode_basestring(str.__str__(x)).translate(table))
        elif isinstance(x, GoTime):
            from .timefmt import format_layout

            put('"' + format_layout(x.dt, "2006-01-02T15:04:05.999999999Z07:00") + '"')
        else:
            raise FuncError(f"json: unsupported type: {type(x).__name__}")

    enc(v, 0)
    return "".join(parts)
