"""Go's regexp for templates, on RE2: Go's syntax, error texts, match iteration, Expand and Split, in linear time.

Go's regexp package is an RE2 implementation, so the C++ RE2 (through google-re2) accepts the same
patterns and finds the same matches; what differs is only the Go library around the engine, rebuilt
here over UTF-8 bytes exactly as Go works: which empty matches FindAll keeps, how ReplaceAll steps
past an empty match, `$name` expansion. Each search is linear in the input; loops over many matches
check the render's clock, because a search per match can still add up to quadratic work.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Iterator

import re2

from .errors import FuncError
from .printf import go_quote
from .values import cache_short

MAX_REGEX_PATTERN = 500
MAX_REGEX_INPUT = 100_000
CACHE_SIZE = 256  # compiled patterns kept (least recently used dropped)

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a tenant's bad pattern is a template error, not a line on stderr

# RE2's error texts (re2.cc CodeText) as Go's regexp/syntax words them.
_GO_ERRORS = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
    "pattern too large - compile failed": "expression too large",
    "pattern too large - reverse compile failed": "expression too large",
}
# Why Go (and RE2) refuse a construct people bring from other engines: said plainly after Go's text.
_HINTS = {
    "invalid escape sequence: `\\1": "backreferences are not supported by Go's linear-time regexp",
    "invalid or unsupported Perl syntax: `(?=": "lookahead is not supported by Go's linear-time regexp",
    "invalid or unsupported Perl syntax: `(?!": "lookahead is not supported by Go's linear-time regexp",
    "invalid or unsupported Perl syntax: `(?<": "lookbehind is not supported by Go's linear-time regexp",
}
_BACKREF = re.compile(r"invalid escape sequence: `\\[1-9]")


_NO_SPAN = (-1, -1)
try:  # the binding's compiled program, called directly: half the cost of a search through its re-like wrapper
    from re2 import _re2

    _UNANCHORED = _re2.RE2.Anchor.UNANCHORED
except (ImportError, AttributeError):  # pragma: no cover - a binding without it still works, more slowly
    _UNANCHORED = None


class Regexp:
    """A compiled pattern: the RE2 program plus what Expand needs (group count and names)."""

    __slots__ = ("pattern", "rx", "groups", "names", "_program")

    def __init__(self, pattern: str, rx):
        self.pattern = pattern
        self.rx = rx
        self.groups: int = rx.groups
        self.names: dict[str, int] = {k.decode("utf-8"): v for k, v in rx.groupindex.items()}
        program = getattr(rx, "_regexp", None)
        self._program = program.Match if _UNANCHORED is not None and hasattr(program, "Match") else None

    def search(self, b: bytes, pos: int = 0) -> tuple | None:
        """The leftmost match in b at or after pos (with what precedes pos as context): each group's byte span."""
        if self._program is not None:
            spans = self._program(_UNANCHORED, b, pos, len(b))
            return None if spans[0] == _NO_SPAN else tuple(spans)
        m = self.rx.search(b, pos)
        return None if m is None else tuple(m.span(g) for g in range(self.groups + 1))


def _go_error(pattern: str, detail: str) -> FuncError:
    code, sep, arg = detail.partition(": ")
    text = _GO_ERRORS.get(code, code)
    message = f"{text}: `{arg}`" if sep else f"{text}: ``"
    hint = next((h for prefix, h in _HINTS.items() if message.startswith(prefix)), None)
    if hint is None and _BACKREF.match(message):
        hint = _HINTS["invalid escape sequence: `\\1"]
    if hint is None and "(?P=" in pattern and message.startswith("invalid or unsupported Perl syntax"):
        hint = "named backreferences are not supported by Go's linear-time regexp"
    if hint:
        message = f"{message} ({hint})"
    return FuncError(f"error parsing regexp {go_quote(pattern)}: {message}")


def _reject_non_go(pattern: str):
    """RE2 C++ accepts \\C (any byte), which Go does not; refuse it with Go's words."""
    i = pattern.find("\\")
    while i >= 0:
        if pattern[i + 1:i + 2] == "C":
            raise FuncError(f"error parsing regexp {go_quote(pattern)}: invalid escape sequence: `\\C`")
        i = pattern.find("\\", i + 2)


@lru_cache(maxsize=CACHE_SIZE)
def compile_regex(pattern: str) -> Regexp:
    """The compiled pattern, or FuncError with Go's error text."""
    if len(pattern) > MAX_REGEX_PATTERN:
        raise FuncError(f"regular expression longer than {MAX_REGEX_PATTERN} characters")
    _reject_non_go(pattern)
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise FuncError(f"error parsing regexp {go_quote(pattern)}: invalid UTF-8: `{pattern}`") from None
    try:
        rx = re2.compile(encoded, _OPTIONS)
    except re2.error as exc:
        raise _go_error(pattern, _error_text(exc)) from None
    return Regexp(pattern, rx)


def _error_text(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def encode_input(s: str) -> bytes:
    """Text as Go holds it: UTF-8, with lone surrogates (which JSON can carry) as U+FFFD, as Go's JSON decoder does."""
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _width(b: bytes, pos: int) -> int:
    """Bytes in the UTF-8 character at pos (0 at the end), as utf8.DecodeRuneInString steps."""
    if pos >= len(b):
        return 0
    c = b[pos]
    n = 1 if c < 0xC0 else 2 if c < 0xE0 else 3 if c < 0xF0 else 4
    return n if pos + n <= len(b) else 1


def all_matches(r: Regexp, b: bytes, n: int, tick: Callable[[], None]) -> Iterator[tuple]:
    """Go's Regexp.allMatches: up to n (n < 0: all) matches' group spans; an empty match right after a match is skipped."""
    search = r.search
    end = len(b)
    pos = 0
    prev_end = -1
    found = 0
    rounds = 0
    while (n < 0 or found < n) and pos <= end:
        rounds += 1
        if not rounds & 15:  # each search is linear in the input; their sum is what the clock must watch
            tick()
        spans = search(b, pos)
        if spans is None:
            break
        start, stop = spans[0]
        accept = True
        if stop == pos:  # an empty match
            if start == prev_end:
                accept = False
            width = _width(b, pos)
            pos = pos + width if width > 0 else end + 1
        else:
            pos = stop
        prev_end = stop
        if accept:
            found += 1
            yield spans


def parse_expand(template: str) -> tuple:
    """Go's Regexp.Expand template: $1, ${1}, $name, ${name}, $$; parts are text or (group,)."""
    return _parse_expand(template)


@cache_short(CACHE_SIZE)
def _parse_expand(template: str) -> tuple:
    parts: list = []
    lit: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c != "$":
            lit.append(c)
            i += 1
            continue
        if i + 1 < n and template[i + 1] == "$":
            lit.append("$")
            i += 2
            continue
        j = i + 1
        braced = j < n and template[j] == "{"
        if braced:
            j += 1
        k = j
        while k < n and (template[k].isalnum() or template[k] == "_"):
            k += 1
        name = template[j:k]
        if not name or (braced and (k >= n or template[k] != "}")):
            lit.append("$")
            i += 1
            continue
        if lit:
            parts.append("".join(lit))
            lit = []
        parts.append((int(name) if name.isascii() and name.isdigit() else name,))
        i = k + 1 if braced else k
    if lit:
        parts.append("".join(lit))
    return tuple(parts)


def replace_all(r: Regexp, b: bytes, expand: Callable[[tuple], bytes], limit: int, tick: Callable[[], None],
                fname: str) -> bytes:
    """Go's Regexp.replaceAll: no replacement for an empty match right after a match; at least one character per step."""
    search = r.search
    out: list[bytes] = []
    size = 0
    end = len(b)
    last = 0
    pos = 0
    rounds = 0
    while pos <= end:
        rounds += 1
        if not rounds & 15:
            tick()
        spans = search(b, pos)
        if spans is None:
            break
        start, stop = spans[0]
        out.append(b[last:start])
        size += start - last
        if stop > last or start == 0:
            piece = expand(spans)
            out.append(piece)
            size += len(piece)
        if size > limit:
            raise FuncError(f"{fname} would make more than {limit} characters")
        last = stop
        width = _width(b, pos)
        if pos + width > stop:
            pos += width
        elif pos + 1 > stop:
            pos += 1
        else:
            pos = stop
    out.append(b[last:])
    return b"".join(out)


def expander(r: Regexp, b: bytes, parts: tuple) -> Callable[[tuple], bytes]:
    """Go's Expand of `parts` for one match's spans; unknown names and groups expand to nothing."""
    encoded = [p.encode("utf-8") if type(p) is str else p for p in parts]

    def expand(spans: tuple) -> bytes:
        out = []
        for p in encoded:
            if type(p) is bytes:
                out.append(p)
                continue
            ref = p[0]
            if isinstance(ref, str):
                ref = r.names.get(ref)
                if ref is None:
                    continue
            if ref < len(spans):
                s, e = spans[ref]
                if s >= 0:
                    out.append(b[s:e])
        return b"".join(out)

    return expand


_META = str.maketrans({c: "\\" + c for c in "\\.+*?()|[]{}^$"})


def quote_meta(s: str) -> str:
    """Go's regexp.QuoteMeta."""
    return s.translate(_META)
