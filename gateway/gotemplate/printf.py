"""Go's fmt.Sprintf, Sprint and Sprintln for JSON-shaped values, including Go's %!verb(type=value) notes."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .errors import FuncError
from .values import GoTime, JsonDict, JsonList, cache_short, fmt_v, go_float, go_type, sorted_keys, to_json

MAX_WIDTH = 10_000  # width or precision in a verb; Go has no limit, we do


class Spec(NamedTuple):
    minus: bool
    plus: bool
    sharp: bool
    zero: bool
    space: bool
    width: int | str | None  # int, "*" (from the arguments) or None
    prec: int | str | None
    arg_index: int | None  # explicit [n], 0-based
    verb: str  # "" when the format ends after the flags
    fast: str | None  # "v", "s", "d", or a Python float spec like ".2f": no flags, width or index


def _arg_index(fmt: str, i: int) -> tuple[int | None, int]:
    """An explicit argument index "[n]" at i: its 0-based value and the position after it, else (None, i)."""
    if fmt.startswith("[", i):
        k = fmt.find("]", i)
        if k > i + 1 and fmt[i + 1:k].isdigit():
            return int(fmt[i + 1:k]) - 1, k + 1
    return None, i


@cache_short(512)
def parse_format(fmt: str) -> tuple:
    """Literal strings and Specs, parsed once per format string."""
    out: list = []
    i = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        if j > i:
            out.append(fmt[i:j])
        i = j + 1
        minus = plus = sharp = zero = space = False
        while i < n and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                sharp = True
            elif c == "0":
                zero = not minus
            elif c == "+":
                plus = True
            elif c == "-":
                minus = True
                zero = False
            else:
                space = True
            i += 1
        arg_index, i = _arg_index(fmt, i)
        width: int | str | None = None
        if i < n and fmt[i] == "*":
            width = "*"
            i += 1
        else:
            k = i
            while k < n and fmt[k].isdigit():
                k += 1
            if k > i:
                width = int(fmt[i:k])
                i = k
        prec: int | str | None = None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                prec = "*"
                i += 1
            else:
                k = i
                while k < n and fmt[k].isdigit():
                    k += 1
                prec = int(fmt[i:k]) if k > i else 0
                i = k
        if arg_index is None:
            arg_index, i = _arg_index(fmt, i)
        for size in (width, prec):
            if isinstance(size, int) and size > MAX_WIDTH:
                raise FuncError(f"printf width or precision over {MAX_WIDTH}")
        verb = fmt[i] if i < n else ""
        i += 1
        fast = None
        if not (minus or plus or sharp or zero or space) and width is None and arg_index is None:
            if verb in ("v", "s", "d") and prec is None:
                fast = verb
            elif verb == "f" and prec != "*":
                fast = f".{6 if prec is None else prec}f"
        out.append(Spec(minus, plus, sharp, zero and not minus, space, width, prec, arg_index, verb, fast))
    return tuple(out)


def sprintf(fmt: str, args: list) -> str:
    out: list[str] = []
    argn = 0
    reordered = False
    nargs = len(args)
    for piece in parse_format(fmt):
        if type(piece) is str:
            out.append(piece)
            continue
        fast = piece.fast
        if fast is not None and argn < nargs:
            # The common cases, without building flags.
            a = args[argn]
            t = type(a)
            if t is str and (fast == "s" or fast == "v"):
                out.append(a)
                argn += 1
                continue
            if t is int and (fast == "d" or fast == "v"):
                out.append(str(a))
                argn += 1
                continue
            if t is float and fast == "v":
                out.append(go_float(a))
                argn += 1
                continue
            if (t is float or t is int) and fast[0] == "." and math.isfinite(a):
                out.append(format(a, fast))
                argn += 1
                continue
        spec = piece
        if spec.arg_index is not None:
            reordered = True
            argn = spec.arg_index
        width = spec.width
        minus = spec.minus
        zero = spec.zero
        if width == "*":
            if argn < nargs and _is_int(args[argn]):
                width = int(args[argn])
                if width < 0:
                    minus, zero, width = True, False, -width
                if width > MAX_WIDTH:
                    raise FuncError(f"printf width over {MAX_WIDTH}")
            else:
                out.append("%!(BADWIDTH)")
                width = None
            argn += 1
        prec = spec.prec
        if prec == "*":
            if argn < nargs and _is_int(args[argn]):
                prec = int(args[argn])
                if prec < 0:
                    prec = None
                elif prec > MAX_WIDTH:
                    raise FuncError(f"printf precision over {MAX_WIDTH}")
            else:
                out.append("%!(BADPREC)")
                prec = None
            argn += 1
        if spec.verb == "":
            out.append("%!(NOVERB)")
            break
        if spec.verb == "%":
            out.append("%")
            continue
        if argn >= nargs or argn < 0:
            out.append(f"%!{spec.verb}(BADINDEX)" if spec.arg_index is not None else f"%!{spec.verb}(MISSING)")
            continue
        f = _Flags(minus, spec.plus, spec.sharp, zero, spec.space, width, prec)
        out.append(format_arg(args[argn], spec.verb, f))
        argn += 1
    if not reordered and argn < nargs:
        extra = ", ".join(_type_and_value(a) for a in args[argn:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _type_and_value(a: Any) -> str:
    if a is None:
        return "<nil>"
    return f"{go_type(a)}={fmt_v(a, 1 << 20)}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Flags(NamedTuple):
    minus: bool
    plus: bool
    sharp: bool
    zero: bool
    space: bool
    width: int | None
    prec: int | None


def _pad(s: str, f: _Flags, numeric: bool = False) -> str:
    width = f.width
    if width is None or len(s) >= width:
        return s
    if f.minus:
        return s + " " * (width - len(s))
    if f.zero:
        if numeric and s[:1] in "+- ":
            return s[0] + "0" * (width - len(s)) + s[1:]
        return "0" * (width - len(s)) + s
    return " " * (width - len(s)) + s


def _bad_verb(v: Any, verb: str) -> str:
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(v)}={fmt_v(v, 1 << 20)})"


def format_arg(v: Any, verb: str, f: _Flags) -> str:
    """One argument under one verb, as fmt's printArg does."""
    if verb == "T":
        return _pad(go_type(v), f)
    if v is None:
        return _pad("<nil>", f) if verb == "v" else _bad_verb(v, verb)
    if isinstance(v, bool):
        if verb in "tv":
            return _pad("true" if v else "false", f)
        return _bad_verb(v, verb)
    if isinstance(v, int):
        if verb in "eEfFgG":
            return _format_float(float(v), verb, f)
        return _format_int(int(v), verb, f)
    if isinstance(v, float):
        if verb in "dcoOxXbqU" and v.is_integer() and abs(v) < 2 ** 63:
            return _format_int(int(v), verb, f)  # an integral JSON number passes as an int, as in Higress
        return _format_float(v, verb, f)
    if isinstance(v, str):
        return _format_str(v, verb, f)
    if isinstance(v, (JsonList, JsonDict)) and verb in "vs":
        return _pad(to_json(v, limit=1 << 20), f)  # gjson results print as JSON, as in Higress
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(format_arg(e, verb, f) for e in v) + "]"
    if isinstance(v, dict):

        items = " ".join(format_arg(k, verb, f) + ":" + format_arg(v[k], verb, f) for k in sorted_keys(v))
        return "map[" + items + "]"
    if isinstance(v, GoTime):
        if verb in "vs":
            return _pad(fmt_v(v, 1 << 20), f)
        return _bad_verb(v, verb)
    return _bad_verb(v, verb)


def _sign(neg: bool, f: _Flags) -> str:
    if neg:
        return "-"
    if f.plus:
        return "+"
    if f.space:
        return " "
    return ""


def _format_int(n: int, verb: str, f: _Flags) -> str:
    if verb == "v":
        verb = "d"
    if verb == "c":
        return _pad(chr(n) if 0 <= n <= 0x10FFFF and not 0xD800 <= n < 0xE000 else "\ufffd", f)
    if verb == "q":
        if 0 <= n <= 0x10FFFF:
            return _pad(go_quote_rune(n, ascii_only=f.plus), f)
        return _bad_verb(n, verb)
    if verb == "U":
        s = f"U+{n:04X}" if n >= 0 else f"U+{n & 0xFFFFFFFFFFFFFFFF:04X}"
        if f.sharp and 0 <= n <= 0x10FFFF and chr(n).isprintable():
            s += f" '{chr(n)}'"
        return _pad(s, f)
    base = {"d": "d", "x": "x", "X": "X", "o": "o", "O": "o", "b": "b"}.get(verb)
    if base is None:
        return _bad_verb(n, verb)
    digits = format(abs(n), base)
    if f.prec is not None:
        if f.prec == 0 and n == 0:
            digits = ""
        elif len(digits) < f.prec:
            digits = "0" * (f.prec - len(digits)) + digits
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif f.sharp:
        if verb == "x":
            prefix = "0x"
        elif verb == "X":
            prefix = "0X"
        elif verb == "b":
            prefix = "0b"
        elif verb == "o" and not digits.startswith("0"):
            prefix = "0"
    body = prefix + digits
    sign = _sign(n < 0, f)
    if f.zero and f.prec is None and f.width is not None and not f.minus:
        fill = f.width - len(sign) - len(body)
        if fill > 0:
            return sign + prefix + "0" * fill + digits
    return _pad(sign + body, f)


def _format_float(x: float, verb: str, f: _Flags) -> str:
    if verb == "F":
        verb = "f"
    if verb not in "vgGeEf":
        return _bad_verb(x, verb)
    if math.isnan(x) or math.isinf(x):
        if math.isnan(x):
            s = ("+" if f.plus else " " if f.space else "") + "NaN"
        elif x > 0:
            s = (" " if f.space and not f.plus else "+") + "Inf"
        else:
            s = "-Inf"
        return _pad(s, f._replace(zero=False))
    neg = x < 0 or (x == 0 and math.copysign(1.0, x) < 0)
    a = abs(x)
    prec = f.prec
    if verb in "vgG" and prec is None:
        body = go_float(a)
        if verb == "G":
            body = body.upper()
    elif verb in "gG":
        body = format(a, f".{max(prec, 1)}{verb}")
        if f.sharp:
            body = format(a, f"#.{max(prec, 1)}{verb}")
    elif verb in "eE":
        body = format(a, f".{6 if prec is None else prec}{verb}")
    else:
        body = format(a, f".{6 if prec is None else prec}f")
    sign = _sign(neg, f)
    if f.zero and f.width is not None and not f.minus:
        fill = f.width - len(sign) - len(body)
        if fill > 0:
            return sign + "0" * fill + body
    return _pad(sign + body, f)


def _format_str(s: str, verb: str, f: _Flags) -> str:
    if verb in "vs":
        if f.prec is not None:
            s = s[:f.prec]
        return _pad(s, f)
    if verb == "q":
        if f.prec is not None:
            s = s[:f.prec]
        if f.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", f)
        return _pad(go_quote(s, ascii_only=f.plus), f)
    if verb in "xX":
        data = s.encode("utf-8")
        if f.prec is not None:
            data = data[:f.prec]
        prefix = ("0x" if verb == "x" else "0X") if f.sharp else ""
        if not data:
            return _pad("" if f.space else prefix, f)
        digits = data.hex(" ") if f.space else data.hex()
        if verb == "X":
            digits = digits.upper()
        if f.space and prefix:
            digits = digits.replace(" ", " " + prefix)
        return _pad(prefix + digits, f)
    return _bad_verb(s, verb)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  "\\": "\\\\"}


def _escape_rune(ch: str, quote: str, ascii_only: bool) -> str:
    if ch == quote:
        return "\\" + ch
    if ch in _QUOTE_ESCAPES:
        return _QUOTE_ESCAPES[ch]
    o = ord(ch)
    if ch.isprintable() and (not ascii_only or o < 0x80):
        return ch
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if 0xD800 <= o < 0xE000:
        return "\\ufffd"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


class _EscapeTable(dict):
    """str.translate table for strconv.Quote that fills itself: each distinct character is worked out once."""

    MAX_ENTRIES = 4096  # beyond this, characters are still escaped, just not remembered

    def __init__(self, quote: str, ascii_only: bool):
        super().__init__()
        self.quote = quote
        self.ascii_only = ascii_only

    def __missing__(self, o: int) -> str:
        text = _escape_rune(chr(o), self.quote, self.ascii_only)
        if len(self) < self.MAX_ENTRIES:
            self[o] = text
        return text


_QUOTE_TABLES = {False: _EscapeTable('"', False), True: _EscapeTable('"', True)}


def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return '"' + s.translate(_QUOTE_TABLES[ascii_only]) + '"'


def go_quote_rune(n: int, ascii_only: bool = False) -> str:
    if 0xD800 <= n < 0xE000:
        n = 0xFFFD
    return "'" + _escape_rune(chr(n), "'", ascii_only) + "'"


def sprint(args: list, limit: int) -> str:
    """fmt.Sprint: operands joined, with a space between two operands when neither is a string."""
    out = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(fmt_v(a, limit))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list, limit: int) -> str:
    return " ".join(fmt_v(a, limit) for a in args) + "\n"


