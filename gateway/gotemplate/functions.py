"""Template functions: Go's builtins, the Sprig subset Higress templates use, and Higress's gjson.

Every function takes the render state first (for limits), then the template arguments in order,
with a pipeline's value last, exactly as Go passes it. Arities are checked when a template compiles.
Deliberate differences from Go/Sprig, all in the direction of fewer surprises:
- nil passed where a string is expected counts as ""; numbers and lists passed there are printed;
- `len`, `index`, `first`, `get`... of nil give nil/0 instead of an error;
- `eq` compares a number with a numeric string by value and is false (not an error) for other
  mixed types, as Higress does; ints and floats compare by value;
- `set`/`unset` change maps the template made (dict, fromJson) in place; on input data they
  return a changed copy, so a template never alters the data it was given;
- `date` and `now` use UTC for "Local"; `date` also accepts an ISO-8601 string;
- `len`, `substr`, `trunc` count characters, not UTF-8 bytes;
- a `date` layout is at most 1,000 characters; `sortAlpha` sorts at most 100,000 strings.
"""
from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import json
import math
import urllib.parse
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple
from zoneinfo import ZoneInfo

from . import gjson as _gjson
from . import regex as _rx
from .errors import FuncError
from .printf import go_quote, parse_format, sprint, sprintf, sprintln
from .regex import MAX_REGEX_INPUT, MAX_REGEX_PATTERN, compile_regex
from .timefmt import format_layout, now_utc
from .values import GoTime, OwnedDict, cache_short, fmt_v, go_kind, go_type, is_number, sorted_keys, to_json, truth

MAX_ITEMS = 10_000  # lists grown by list/append/prepend/concat/until
MAX_SPLIT = 100_000  # pieces from split/splitList/regexFindAll/regexSplit
# Arguments this big make one call expensive: the call reads the clock first, so that a template
# calling it over and over stops at its time limit rather than at the next step-batch check.
BIG_TEXT = 1 << 16
BIG_LIST = 1 << 12
CHUNK = 1 << 16  # characters per clock check in functions that walk text in Python
MAX_LAYOUT = 1000  # a date layout is parsed character by character
MAX_SORT = 100_000  # strings sortAlpha sorts (one C call the clock cannot interrupt)
NOT_LITERAL = object()  # in compile-time checks: an argument that is not a literal


class Func(NamedTuple):
    fn: Callable
    min_args: int
    max_args: int | None  # None: variadic
    wants_dot: bool = False  # fn(st, dot, *args)
    check: Callable | None = None  # check(literal args) at compile time; raises FuncError
    lazy: bool = False  # and/or: arguments evaluated by the renderer, one at a time


FUNCS: dict[str, Func] = {}

# Sprig (and Go) functions that exist but are not offered here, for a clearer message than "unknown".
UNSUPPORTED = frozenset("""
call env expandenv getHostByName genPrivateKey derivePassword buildCustomCert genCA genCAWithKey
genSelfSignedCert genSelfSignedCertWithKey genSignedCert genSignedCertWithKey encryptAES decryptAES
randAlpha randAlphaNum randNumeric randAscii randBytes randInt shuffle semver semverCompare wrap wrapWith
toDate mustToDate dateModify mustDateModify ago duration durationRound htmlDate htmlDateInZone
merge mergeOverwrite mustMerge mustMergeOverwrite deepCopy mustDeepCopy deepEqual typeIs typeIsLike
kindIs toYaml fromYaml toToml snakecase camelcase kebabcase swapcase untitle initials plural
sha512sum adler32sum bcrypt htpasswd osBase osClean osDir osExt osIsAbs base dir clean ext isAbs
urlParse urlJoin seq untilStep mustAppend mustPush mustPrepend mustFirst mustLast
mustRest mustInitial mustReverse mustUniq mustWithout mustHas mustCompact mustSlice mustChunk chunk
mustRegexMatch mustRegexFind mustRegexFindAll mustRegexReplaceAll mustRegexReplaceAllLiteral mustRegexSplit
mustToJson mustToPrettyJson mustToRawJson mustFromJson mustDateModify getenv
""".split())


def register(name: str, min_args: int, max_args: int | None = -1, **kw):
    def wrap(fn):
        FUNCS[name] = Func(fn, min_args, min_args if max_args == -1 else max_args, **kw)
        return fn

    return wrap


def alias(name: str, existing: str):
    FUNCS[name] = FUNCS[existing]


# ---------------------------------------------------------------- argument coercion

def _str(st, v: Any) -> str:
    """An argument where Go wants a string."""
    if type(v) is str:
        if len(v) > BIG_TEXT:
            st.check_clock()
        return v
    if v is None:
        return ""
    st.check_clock()
    return fmt_v(v, st.max_value)


def _by_chunks(st, s, fn: Callable) -> Any:
    """fn over a long text (or bytes) a chunk at a time, reading the clock between chunks; fn must work piecewise."""
    if len(s) <= CHUNK:
        return fn(s)
    out = []
    for at in range(0, len(s), CHUNK):
        if at:
            st.check_clock()
        out.append(fn(s[at:at + CHUNK]))
    return out[0][:0].join(out)


def _clocked(st, steps):
    """The items of `steps`, reading the clock before each one after the first."""
    for i, step in enumerate(steps):
        if i:
            st.check_clock()
        yield step


def _many(st, items) -> None:
    """Before a call walks a long list or map: read the clock."""
    if len(items) > BIG_LIST:
        st.check_clock()


def _show(v: Any) -> str:
    if isinstance(v, str):
        return go_quote(v[:50] + ("..." if len(v) > 50 else ""))
    if v is None:
        return "nil"
    return fmt_v(v, 200)[:60]


def _int(v: Any, what: str = "argument") -> int:
    """An argument where Go wants an int."""
    if type(v) is int:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise FuncError(f"{what} must be an integer, not {go_type(v)} {_show(v)}")


_I64 = 1 << 64


def _wrap64(x: int) -> int:
    if -(1 << 63) <= x < (1 << 63):
        return x
    return (x + (1 << 63)) % _I64 - (1 << 63)


def _parse_go_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64): sign, then 0x/0o/0b/0 prefixes; None if not an integer."""
    if not s or not s.isascii() or s != s.strip():
        return None
    sign = 1
    body = s
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body:
        return None
    try:
        lower = body.lower()
        if lower.startswith(("0x", "0o", "0b")):
            value = int(body, 0)
        elif len(body) > 1 and body[0] == "0":
            if "_" in body:
                return None
            value = int(body, 8)
        else:
            if not body.isdigit():
                return None
            value = int(body, 10)
    except ValueError:
        return None
    value *= sign
    if not -(1 << 63) <= value < (1 << 63):
        return None
    return value


def to_int64(v: Any) -> int:
    """Sprig's toInt64 (spf13/cast): numbers truncate, bools are 0/1, numeric strings parse, else 0."""
    if type(v) is int:
        return _wrap64(v)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return _wrap64(int(v))
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return -(1 << 63)
        return _wrap64(int(v))
    if isinstance(v, str):
        s = v
        if "." in s:
            head, _, tail = s.partition(".")
            if tail and tail.strip("0") == "":
                s = head
        parsed = _parse_go_int(s)
        return 0 if parsed is None else parsed
    return 0


def to_float64(v: Any) -> float:
    """Sprig's toFloat64: numbers, bools as 0/1, strings parsed as floats, else 0."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        s = v
        if s and s == s.strip() and "_" not in s:
            try:
                return float(s)
            except ValueError:
                return 0.0
    return 0.0


def _strslice(st, v: Any) -> list[str]:
    """Sprig's strslice: lists become lists of strings (nils dropped); one value becomes a list of one."""
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        _many(st, v)
        return [_str(st, e) for e in v if e is not None]
    return [_str(st, v)]


def _list_arg(v: Any, fname: str) -> list | None:
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return v
    raise FuncError(f"{fname} needs a list, not {go_type(v)} {_show(v)}")


def _dict_arg(v: Any, fname: str) -> dict | None:
    if v is None:
        return None
    if isinstance(v, dict):
        return v
    raise FuncError(f"{fname} needs a map, not {go_type(v)} {_show(v)}")


def _check_items(n: int, fname: str):
    if n > MAX_ITEMS:
        raise FuncError(f"{fname} would make a list of more than {MAX_ITEMS} items")


def _check_len(st, n: int, fname: str):
    if n > st.max_value:
        raise FuncError(f"{fname} would make a string of more than {st.max_value} characters")


# ---------------------------------------------------------------- Go builtins

def _lazy(*_):  # and/or are evaluated by the renderer
    raise AssertionError("unreachable")


register("and", 1, None, lazy=True)(_lazy)
register("or", 1, None, lazy=True)(_lazy)


@register("not", 1)
def f_not(st, v):
    return not truth(v)


@register("len", 1)
def f_len(st, v):
    if v is None:
        return 0
    if isinstance(v, (str, list, dict, tuple)):
        return len(v)
    raise FuncError(f"len of type {go_type(v)}")


def _index_int(i: Any) -> int:
    if isinstance(i, bool) or not isinstance(i, (int, float)):
        if i is None:
            raise FuncError("cannot index slice/array with nil")
        raise FuncError(f"cannot index slice/array with type {go_type(i)}")
    return _int(i, "index")


@register("index", 1, None)
def f_index(st, item, *indexes):
    v = item
    for i in indexes:
        if v is None:
            return None
        if isinstance(v, dict):
            key = i if isinstance(i, str) else fmt_v(i, 100)
            v = v.get(key)
        elif isinstance(v, (list, tuple)):
            n = _index_int(i)
            if n < 0 or n >= len(v):
                raise FuncError(f"index out of range: {n}")
            v = v[n]
        elif isinstance(v, str):
            n = _index_int(i)
            if n < 0 or n >= len(v):
                raise FuncError(f"index out of range: {n}")
            v = ord(v[n])
        else:
            raise FuncError(f"can't index item of type {go_type(v)}")
    return v


@register("slice", 1, None)
def f_slice(st, item, *indexes):
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
    elif not isinstance(item, (list, tuple)):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    n = len(item)
    idx = [0, n, n]
    for k, i in enumerate(indexes):
        x = _index_int(i)
        if x < 0 or x > n:
            raise FuncError(f"index out of range: {x}")
        idx[k] = x
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    result = item[idx[0]:idx[1]]
    return list(result) if isinstance(result, tuple) else result


@register("print", 0, None)
def f_print(st, *args):
    return sprint(list(args), st.max_value)


@register("println", 0, None)
def f_println(st, *args):
    return sprintln(list(args), st.max_value)


@register("printf", 1, None, check=lambda lits: _check_format(lits[0]))
def f_printf(st, fmt, *args):
    return sprintf(_str(st, fmt), list(args))


alias("sprintf", "printf")  # gjson_template (Higress) accepts it


def _check_format(fmt):
    if isinstance(fmt, str):
        parse_format(fmt)


def _eval_args(st, args) -> str:
    if len(args) == 1:
        v = args[0]
        return v if isinstance(v, str) else _str(st, v)
    return sprint(list(args), st.max_value)


_HTML_ESCAPES = str.maketrans({"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"})


@register("html", 0, None)
def f_html(st, *args):
    return _by_chunks(st, _eval_args(st, args), lambda piece: piece.translate(_HTML_ESCAPES))


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
               "=": "\\u003D"}


def _js_char(c: str) -> str:
    if c in _JS_ESCAPES:
        return _JS_ESCAPES[c]
    o = ord(c)
    if o < 0x20:
        return f"\\u00{o:02X}"
    if o >= 0x80 and not c.isprintable():
        return f"\\u{o:04X}"
    return c


@register("js", 0, None)
def f_js(st, *args):
    s = _eval_args(st, args)
    out = []
    for at in range(0, len(s), CHUNK):
        if at:
            st.check_clock()
        out.append("".join(_js_char(c) for c in s[at:at + CHUNK]))
    return "".join(out)


@register("urlquery", 0, None)
def f_urlquery(st, *args):
    return _by_chunks(st, _eval_args(st, args), lambda piece: urllib.parse.quote_plus(piece, safe=""))


# -- comparisons

def _num_str(s: str) -> float | None:
    """A string's value when compared with a number (Higress compares "5" and 5 as equal)."""
    if s != s.strip() or not s:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def deep_equal(a: Any, b: Any, st=None) -> bool:
    """Equality with JSON's types kept apart (true is not 1), numbers by value.

    Walks both values with a stack rather than recursion, and (given the render state) reads the
    clock as it goes: a template can build lists holding one big value many times over.
    """
    stack = [(a, b)]
    seen = 0
    while stack:
        a, b = stack.pop()
        seen += 1
        if st is not None and not seen & 0xFFF:
            st.check_clock()
        if a is None or b is None:
            if not (a is None and b is None):
                return False
        elif isinstance(a, bool) or isinstance(b, bool):
            if not (isinstance(a, bool) and isinstance(b, bool) and a == b):
                return False
        elif is_number(a) and is_number(b):
            if a != b:
                return False
        elif isinstance(a, str) and isinstance(b, str):
            if a != b:
                return False
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            if a is not b:
                if len(a) != len(b):
                    return False
                stack.extend(zip(a, b))
        elif isinstance(a, dict) and isinstance(b, dict):
            if a is not b:
                if a.keys() != b.keys():
                    return False
                stack.extend((a[k], b[k]) for k in a)
        elif isinstance(a, GoTime) and isinstance(b, GoTime):
            if a != b:
                return False
        else:
            return False
    return True


def _eq1(st, a: Any, b: Any) -> bool:
    if is_number(a) and isinstance(b, str):
        return _num_str(b) == a
    if isinstance(a, str) and is_number(b):
        return _num_str(a) == b
    return deep_equal(a, b, st)


@register("eq", 2, None)
def f_eq(st, a, *others):
    for b in others:
        if _eq1(st, a, b):
            return True
    return False


@register("ne", 2)
def f_ne(st, a, b):
    return not _eq1(st, a, b)


def _compare(a: Any, b: Any) -> int:
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    if is_number(a) and isinstance(b, str) and _num_str(b) is not None:
        fb = _num_str(b)
        return (a > fb) - (a < fb)
    if isinstance(a, str) and is_number(b) and _num_str(a) is not None:
        fa = _num_str(a)
        return (fa > b) - (fa < b)
    for v in (a, b):
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise FuncError(f"invalid type for comparison: {go_type(v)}")
    raise FuncError(f"incompatible types for comparison: {go_type(a)} and {go_type(b)}")


@register("lt", 2)
def f_lt(st, a, b):
    return _compare(a, b) < 0


@register("le", 2)
def f_le(st, a, b):
    return _compare(a, b) <= 0


@register("gt", 2)
def f_gt(st, a, b):
    return _compare(a, b) > 0


@register("ge", 2)
def f_ge(st, a, b):
    return _compare(a, b) >= 0


# ---------------------------------------------------------------- Higress

def _check_gjson(path):
    if isinstance(path, str):
        try:
            _gjson.parse_path(path)
        except _gjson.PathError as exc:
            raise FuncError(f"gjson path {_show(path)}: {exc}") from None


@register("gjson", 1, wants_dot=True, check=lambda lits: _check_gjson(lits[0]))
def f_gjson(st, dot, path):
    if not isinstance(path, str):
        raise FuncError(f"gjson needs a path string, not {go_type(path)}")
    try:
        return _gjson.lookup(dot, path, st.check_clock)
    except _gjson.PathError as exc:
        raise FuncError(f"gjson path {_show(path)}: {exc}") from None


# ---------------------------------------------------------------- Sprig: defaults and logic

@register("default", 1, None)
def f_default(st, d, *given):
    if not given or not truth(given[0]):
        return d
    return given[0]


@register("empty", 1)
def f_empty(st, v):
    return not truth(v)


@register("coalesce", 0, None)
def f_coalesce(st, *values):
    for v in values:
        if truth(v):
            return v
    return None


@register("all", 0, None)
def f_all(st, *values):
    return all(truth(v) for v in values)


@register("any", 0, None)
def f_any(st, *values):
    return any(truth(v) for v in values)


@register("ternary", 3)
def f_ternary(st, vt, vf, cond):
    return vt if truth(cond) else vf


@register("fail", 1)
def f_fail(st, msg):
    raise FuncError(_str(st, msg))


@register("kindOf", 1)
def f_kind_of(st, v):
    return go_kind(v)


@register("typeOf", 1)
def f_type_of(st, v):
    return go_type(v)


# ---------------------------------------------------------------- Sprig: strings

@register("upper", 1)
def f_upper(st, s):
    return _str(st, s).upper()


@register("lower", 1)
def f_lower(st, s):
    return _str(st, s).lower()


def _is_separator(c: str) -> bool:
    if c < "\x80":
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return c.isspace()


@register("title", 1)
def f_title(st, s):
    s = _str(st, s)
    out = []
    prev_sep = True
    for at in range(0, len(s), CHUNK):
        if at:
            st.check_clock()
        for c in s[at:at + CHUNK]:
            out.append(c.upper() if prev_sep else c)
            prev_sep = _is_separator(c)
    return "".join(out)


@register("trim", 1)
def f_trim(st, s):
    return _str(st, s).strip()


@register("trimAll", 2)
def f_trim_all(st, cutset, s):
    return _str(st, s).strip(_str(st, cutset))


@register("trimPrefix", 2)
def f_trim_prefix(st, prefix, s):
    return _str(st, s).removeprefix(_str(st, prefix))


@register("trimSuffix", 2)
def f_trim_suffix(st, suffix, s):
    return _str(st, s).removesuffix(_str(st, suffix))


@register("replace", 3)
def f_replace(st, old, new, s):
    old, new, s = _str(st, old), _str(st, new), _str(st, s)
    if len(new) > len(old):
        count = len(s) + 1 if old == "" else s.count(old)
        _check_len(st, len(s) + count * (len(new) - len(old)), "replace")
    return s.replace(old, new)


@register("contains", 2)
def f_contains(st, sub, s):
    return _str(st, sub) in _str(st, s)


@register("hasPrefix", 2)
def f_has_prefix(st, prefix, s):
    return _str(st, s).startswith(_str(st, prefix))


@register("hasSuffix", 2)
def f_has_suffix(st, suffix, s):
    return _str(st, s).endswith(_str(st, suffix))


@register("quote", 0, None)
def f_quote(st, *args):
    return " ".join('"' + _by_chunks(st, _str(st, a), lambda piece: go_quote(piece)[1:-1]) + '"'
                    for a in args if a is not None)


@register("squote", 0, None)
def f_squote(st, *args):
    return " ".join("'" + _str(st, a) + "'" for a in args if a is not None)


@register("cat", 0, None)
def f_cat(st, *args):
    return " ".join(_str(st, a) for a in args if a is not None)


@register("repeat", 2)
def f_repeat(st, count, s):
    n = _int(count, "repeat count")
    s = _str(st, s)
    if n < 0:
        raise FuncError("negative repeat count")
    _check_len(st, n * len(s), "repeat")
    return s * n


@register("substr", 3)
def f_substr(st, start, end, s):
    start, end, s = _int(start, "start"), _int(end, "end"), _str(st, s)
    if start < 0:
        return s[:max(end, 0)]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


@register("trunc", 2)
def f_trunc(st, c, s):
    c, s = _int(c, "length"), _str(st, s)
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


@register("abbrev", 2)
def f_abbrev(st, width, s):
    width, s = _int(width, "width"), _str(st, s)
    if width < 4 or len(s) <= width:
        return s
    return s[:width - 3] + "..."


@register("nospace", 1)
def f_nospace(st, s):
    return "".join(_str(st, s).split())


@register("indent", 2)
def f_indent(st, n, s):
    n, s = _int(n, "indent"), _str(st, s)
    if n < 0:
        raise FuncError("negative indent")
    _check_len(st, len(s) + n * (s.count("\n") + 1), "indent")
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


@register("nindent", 2)
def f_nindent(st, n, s):
    return "\n" + f_indent(st, n, s)


@register("toString", 1)
def f_to_string(st, v):
    return _str(st, v)


@register("toStrings", 1)
def f_to_strings(st, v):
    return _strslice(st, v)


@register("join", 2)
def f_join(st, sep, v):
    sep = _str(st, sep)
    parts = _strslice(st, v)
    _check_len(st, sum(len(p) for p in parts) + len(sep) * max(len(parts) - 1, 0), "join")
    return sep.join(parts)


def _split(st, sep: str, s: str) -> list[str]:
    if sep == "":
        parts = list(s)
    else:
        parts = s.split(sep)
    if len(parts) > MAX_SPLIT:
        raise FuncError(f"split would make more than {MAX_SPLIT} pieces")
    return parts


@register("split", 2)
def f_split(st, sep, s):
    return OwnedDict((f"_{i}", p) for i, p in enumerate(_split(st, _str(st, sep), _str(st, s))))


@register("splitList", 2)
def f_split_list(st, sep, s):
    return _split(st, _str(st, sep), _str(st, s))


@register("sortAlpha", 1)
def f_sort_alpha(st, v):
    items = _strslice(st, v)
    if len(items) > MAX_SORT:
        raise FuncError(f"sortAlpha of more than {MAX_SORT} strings")
    return sorted(items)


# ---------------------------------------------------------------- Sprig: numbers

@register("add", 0, None)
def f_add(st, *values):
    return _wrap64(sum(to_int64(v) for v in values))


@register("add1", 1)
def f_add1(st, v):
    return _wrap64(to_int64(v) + 1)


@register("sub", 2)
def f_sub(st, a, b):
    return _wrap64(to_int64(a) - to_int64(b))


@register("mul", 1, None)
def f_mul(st, a, *values):
    r = to_int64(a)
    for v in values:
        r = _wrap64(r * to_int64(v))
    return r


def _trunc_div(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


@register("div", 2)
def f_div(st, a, b):
    return _wrap64(_trunc_div(to_int64(a), to_int64(b)))


@register("mod", 2)
def f_mod(st, a, b):
    a, b = to_int64(a), to_int64(b)
    if b == 0:
        raise FuncError("integer divide by zero")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


@register("max", 1, None)
def f_max(st, a, *values):
    return max([to_int64(a)] + [to_int64(v) for v in values])


@register("min", 1, None)
def f_min(st, a, *values):
    return min([to_int64(a)] + [to_int64(v) for v in values])


def _dec(v: Any) -> decimal.Decimal:
    f = to_float64(v)
    if math.isnan(f) or math.isinf(f):
        raise FuncError(f"cannot do decimal arithmetic on {fmt_v(f, 20)}")
    return decimal.Decimal(repr(f))


def _dec_op(start: Any, values, op) -> float:
    with decimal.localcontext() as ctx:
        ctx.prec = 34
        r = _dec(start)
        for v in values:
            try:
                r = op(r, _dec(v))
            except decimal.DivisionByZero:
                raise FuncError("division by zero") from None
            except decimal.InvalidOperation:
                raise FuncError("division by zero") from None
        return float(r)


@register("addf", 0, None)
def f_addf(st, *values):
    return _dec_op(0, values, lambda x, y: x + y)


@register("add1f", 1)
def f_add1f(st, v):
    return _dec_op(v, [1], lambda x, y: x + y)


@register("subf", 1, None)
def f_subf(st, a, *values):
    return _dec_op(a, values, lambda x, y: x - y)


@register("mulf", 1, None)
def f_mulf(st, a, *values):
    return _dec_op(a, values, lambda x, y: x * y)


@register("divf", 1, None)
def f_divf(st, a, *values):
    return _dec_op(a, values, lambda x, y: x / y)


@register("maxf", 1, None)
def f_maxf(st, a, *values):
    return max([to_float64(a)] + [to_float64(v) for v in values])


@register("minf", 1, None)
def f_minf(st, a, *values):
    return min([to_float64(a)] + [to_float64(v) for v in values])


@register("floor", 1)
def f_floor(st, v):
    f = to_float64(v)
    return float(math.floor(f)) if math.isfinite(f) else f


@register("ceil", 1)
def f_ceil(st, v):
    f = to_float64(v)
    return float(math.ceil(f)) if math.isfinite(f) else f


@register("round", 2, 3)
def f_round(st, v, places, round_on=0.5):
    # Sprig's formula: ceil when the fraction reaches round_on, else floor.
    val = to_float64(v)
    pow10 = math.pow(10, to_float64(places))
    digit = pow10 * val
    if not math.isfinite(digit) or pow10 == 0:
        return val
    frac = math.modf(digit)[0]
    rounded = math.ceil(digit) if frac >= to_float64(round_on) else math.floor(digit)
    return rounded / pow10


@register("int", 1)
def f_int(st, v):
    return to_int64(v)


alias("int64", "int")


@register("float64", 1)
def f_float64(st, v):
    return to_float64(v)


@register("atoi", 1)
def f_atoi(st, s):
    s = _str(st, s)
    body = s[1:] if s[:1] in "+-" else s
    if not body or not (body.isascii() and body.isdigit()):
        return 0
    value = int(s)
    return max(min(value, (1 << 63) - 1), -(1 << 63))


@register("until", 1)
def f_until(st, n):
    n = _int(n, "count")
    _check_items(abs(n), "until")
    return list(range(n)) if n >= 0 else list(range(0, n, -1))


# ---------------------------------------------------------------- Sprig: lists

@register("list", 0, None)
def f_list(st, *items):
    return list(items)


@register("first", 1)
def f_first(st, v):
    lst = _list_arg(v, "first")
    return lst[0] if lst else None


@register("last", 1)
def f_last(st, v):
    lst = _list_arg(v, "last")
    return lst[-1] if lst else None


@register("rest", 1)
def f_rest(st, v):
    lst = _list_arg(v, "rest")
    return list(lst[1:]) if lst else []


@register("initial", 1)
def f_initial(st, v):
    lst = _list_arg(v, "initial")
    return list(lst[:-1]) if lst else []


@register("append", 2)
def f_append(st, v, item):
    lst = _list_arg(v, "append") or []
    _check_items(len(lst) + 1, "append")
    return list(lst) + [item]


alias("push", "append")


@register("prepend", 2)
def f_prepend(st, v, item):
    lst = _list_arg(v, "prepend") or []
    _check_items(len(lst) + 1, "prepend")
    return [item] + list(lst)


@register("concat", 0, None)
def f_concat(st, *lists):
    out: list = []
    for v in lists:
        lst = _list_arg(v, "concat")
        if lst:
            _check_items(len(out) + len(lst), "concat")
            out.extend(lst)
    return out


@register("reverse", 1)
def f_reverse(st, v):
    return list(reversed(_list_arg(v, "reverse") or []))


def _uniq_key(st, e: Any):
    if e is None or isinstance(e, bool):
        return ("const", e)
    if is_number(e):
        return ("number", e)
    if isinstance(e, str):
        return ("string", e)
    return ("json", to_json(e, limit=st.max_value))


@register("uniq", 1)
def f_uniq(st, v):
    out: list = []
    seen: set = set()
    for i, e in enumerate(_list_arg(v, "uniq") or []):
        if not i & 0xFF:
            st.check_clock()
        key = _uniq_key(st, e)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


@register("compact", 1)
def f_compact(st, v):
    lst = _list_arg(v, "compact") or []
    _many(st, lst)
    return [e for e in lst if truth(e)]


@register("has", 2)
def f_has(st, needle, haystack):
    lst = _list_arg(haystack, "has") or []
    _many(st, lst)
    return any(deep_equal(needle, e, st) for e in lst)


@register("without", 1, None)
def f_without(st, v, *items):
    lst = _list_arg(v, "without") or []
    _many(st, lst)
    return [e for e in lst if not any(deep_equal(e, i, st) for i in items)]


# ---------------------------------------------------------------- Sprig: maps

@register("dict", 0, None)
def f_dict(st, *kv):
    d = OwnedDict()
    for i in range(0, len(kv), 2):
        d[_str(st, kv[i])] = kv[i + 1] if i + 1 < len(kv) else ""
    return d


@register("get", 2)
def f_get(st, d, key):
    d = _dict_arg(d, "get")
    if d is None:
        return ""
    return d.get(_str(st, key), "")


@register("set", 3)
def f_set(st, d, key, value):
    d = _dict_arg(d, "set")
    if d is None:
        raise FuncError("set needs a map, not nil")
    if type(d) is not OwnedDict:
        d = OwnedDict(d)
    d[_str(st, key)] = value
    return d


@register("unset", 2)
def f_unset(st, d, key):
    d = _dict_arg(d, "unset")
    if d is None:
        raise FuncError("unset needs a map, not nil")
    if type(d) is not OwnedDict:
        d = OwnedDict(d)
    d.pop(_str(st, key), None)
    return d


@register("hasKey", 2)
def f_has_key(st, d, key):
    d = _dict_arg(d, "hasKey")
    return d is not None and _str(st, key) in d


@register("keys", 0, None)
def f_keys(st, *dicts):
    out: list = []
    for d in dicts:
        d = _dict_arg(d, "keys")
        if d:
            _many(st, d)
            out.extend(sorted_keys(d))
    return out


@register("values", 1)
def f_values(st, d):
    d = _dict_arg(d, "values")
    if d:
        _many(st, d)
    return [d[k] for k in sorted_keys(d)] if d else []


@register("pick", 1, None)
def f_pick(st, d, *keys):
    d = _dict_arg(d, "pick") or {}
    wanted = [_str(st, k) for k in keys]
    return OwnedDict((k, d[k]) for k in wanted if k in d)


@register("omit", 1, None)
def f_omit(st, d, *keys):
    d = _dict_arg(d, "omit") or {}
    unwanted = {_str(st, k) for k in keys}
    return OwnedDict((k, v) for k, v in d.items() if k not in unwanted)


# ---------------------------------------------------------------- Sprig: encodings

@register("toJson", 1)
def f_to_json(st, v):
    return to_json(v, limit=st.max_value)


@register("toPrettyJson", 1)
def f_to_pretty_json(st, v):
    return to_json(v, limit=st.max_value, indent="  ")


@register("toRawJson", 1)
def f_to_raw_json(st, v):
    return to_json(v, limit=st.max_value, escape_html=False)


def _reject_constant(name):
    raise ValueError(name)


@register("fromJson", 1)
def f_from_json(st, s):
    try:
        return json.loads(_str(st, s), object_hook=OwnedDict, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


@register("b64enc", 1)
def f_b64enc(st, s):
    return base64.b64encode(_str(st, s).encode("utf-8")).decode("ascii")


def _decoded_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


@register("b64dec", 1)
def f_b64dec(st, s):
    s = _str(st, s)
    try:
        return _decoded_text(base64.b64decode(s, validate=True))
    except (binascii.Error, ValueError):
        bad = next((i for i, c in enumerate(s) if c not in _B64_CHARS), len(s) - len(s) % 4)
        return f"illegal base64 data at input byte {bad}"


_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


@register("b32enc", 1)
def f_b32enc(st, s):
    # 5 bytes make 8 characters: whole groups encode piecewise.
    data = _str(st, s).encode("utf-8")
    return "".join(base64.b32encode(data[at:at + CHUNK * 5]).decode("ascii")
                   for at in _clocked(st, range(0, len(data), CHUNK * 5)))


@register("b32dec", 1)
def f_b32dec(st, s):
    s = _str(st, s)
    try:
        return _decoded_text(base64.b32decode(s))
    except (binascii.Error, ValueError):
        return "illegal base32 data"


@register("sha256sum", 1)
def f_sha256sum(st, s):
    return hashlib.sha256(_str(st, s).encode("utf-8")).hexdigest()


@register("sha1sum", 1)
def f_sha1sum(st, s):
    return hashlib.sha1(_str(st, s).encode("utf-8")).hexdigest()


@register("uuidv4", 0)
def f_uuidv4(st):
    return str(uuid.uuid4())


# ---------------------------------------------------------------- Sprig: regular expressions (RE2, see regex.py)

def _check_regex(pattern):
    if isinstance(pattern, str):
        compile_regex(pattern)


def _regex_input(st, s) -> bytes:
    s = _str(st, s)
    if len(s) > MAX_REGEX_INPUT:
        raise FuncError(f"regular expression input longer than {MAX_REGEX_INPUT} characters")
    return _rx.encode_input(s)


_REGEX_CHECK = {"check": lambda lits: _check_regex(lits[0])}


@register("regexMatch", 2, **_REGEX_CHECK)
def f_regex_match(st, pattern, s):
    rx = compile_regex(_str(st, pattern))
    return rx.search(_regex_input(st, s)) is not None


@register("regexFind", 2, **_REGEX_CHECK)
def f_regex_find(st, pattern, s):
    rx = compile_regex(_str(st, pattern))
    b = _regex_input(st, s)
    spans = rx.search(b)
    return _rx.decode(b[spans[0][0]:spans[0][1]]) if spans else ""


@register("regexFindAll", 3, **_REGEX_CHECK)
def f_regex_find_all(st, pattern, s, n):
    rx = compile_regex(_str(st, pattern))
    b = _regex_input(st, s)
    n = _int(n, "count")
    if n == 0:
        return []
    out = []
    for spans in _rx.all_matches(rx, b, n, st.check_clock):
        start, end = spans[0]
        out.append(_rx.decode(b[start:end]))
        if len(out) > MAX_SPLIT:
            raise FuncError(f"regexFindAll found more than {MAX_SPLIT} matches")
    return out


@register("regexReplaceAll", 3, **_REGEX_CHECK)
def f_regex_replace_all(st, pattern, s, repl):
    rx = compile_regex(_str(st, pattern))
    b = _regex_input(st, s)
    expand = _rx.expander(rx, b, _rx.parse_expand(_str(st, repl)))
    return _rx.decode(_rx.replace_all(rx, b, expand, st.max_value, st.check_clock, "regexReplaceAll"))


@register("regexReplaceAllLiteral", 3, **_REGEX_CHECK)
def f_regex_replace_all_literal(st, pattern, s, repl):
    rx = compile_regex(_str(st, pattern))
    b = _regex_input(st, s)
    literal = _rx.encode_input(_str(st, repl))
    return _rx.decode(_rx.replace_all(rx, b, lambda spans: literal, st.max_value, st.check_clock,
                                      "regexReplaceAllLiteral"))


@register("regexSplit", 3, **_REGEX_CHECK)
def f_regex_split(st, pattern, s, n):
    # Go's Regexp.Split over FindAllStringIndex.
    rx = compile_regex(_str(st, pattern))
    b = _regex_input(st, s)
    n = _int(n, "count")
    if n == 0:
        return []
    if rx.pattern and not b:
        return [""]
    out: list[str] = []
    beg = end = 0
    for spans in _rx.all_matches(rx, b, n, st.check_clock):
        if 0 < n and len(out) == n - 1:
            break
        start, stop = spans[0]
        end = start
        if stop != 0:
            out.append(_rx.decode(b[beg:end]))
        beg = stop
        if len(out) > MAX_SPLIT:
            raise FuncError(f"regexSplit would make more than {MAX_SPLIT} pieces")
    if end != len(b):
        out.append(_rx.decode(b[beg:]))
    return out


@register("regexQuoteMeta", 1)
def f_regex_quote_meta(st, s):
    return _rx.quote_meta(_str(st, s))


# ---------------------------------------------------------------- Sprig: dates

@register("now", 0)
def f_now(st):
    return GoTime(now_utc())


def _to_datetime(v: Any) -> datetime:
    if isinstance(v, GoTime):
        return v.dt
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (isinstance(v, int) or v.is_integer()):
            return datetime.fromtimestamp(int(v), timezone.utc)
        if isinstance(v, str):
            try:
                dt = datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
            except ValueError:
                return now_utc()
            return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise FuncError(f"time out of range: {_show(v)}") from None
    return now_utc()


@cache_short(64)
def _zone(name: str):
    if name in ("", "UTC", "Local"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, LookupError):
        return timezone.utc


@register("date", 2)
def f_date(st, layout, t):
    return format_layout(_to_datetime(t).astimezone(timezone.utc), _layout(st, layout))


def _layout(st, layout) -> str:
    layout = _str(st, layout)
    if len(layout) > MAX_LAYOUT:
        raise FuncError(f"date layout longer than {MAX_LAYOUT} characters")
    return layout


@register("dateInZone", 3)
def f_date_in_zone(st, layout, t, zone):
    return format_layout(_to_datetime(t).astimezone(_zone(_str(st, zone))), _layout(st, layout))


@register("unixEpoch", 1)
def f_unix_epoch(st, t):
    return str(int(_to_datetime(t).timestamp()))
