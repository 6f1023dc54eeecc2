"""JSON read within limits: nesting depth, number of values, finite numbers and valid UTF-8, checked cheaply.

Used for the gateway's request bodies, JSON inside tool arguments, backends' answers and the REST API's bodies.
orjson parses first (about three times the standard library's speed on a tool call); anything it refuses or could
read differently — an error of any kind, integers past 64 bits, which it reads as floats — is parsed again by Python's
C parser, so what is accepted, the values read and the error messages are the standard library's. There, nesting
beyond the interpreter's recursion limit surfaces as RecursionError, which is caught. What it does accept (up to ~1,000 levels, any number of
values) is then bounded by one iterative walk, level by level, — skipped when counting brackets shows the limit cannot be reached,
which is the case for nearly every real message, so small messages pay two `str.count` calls.
"""
from __future__ import annotations

import json
import math
import re
from itertools import chain
from typing import Any

import orjson

_CONTAINERS = (list, dict)


class JsonLimitError(ValueError):
    """Text that is not acceptable JSON, or is JSON beyond a limit; the message says which (without a prefix)."""


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonLimitError(f"the number {text[:40]} is out of range")
    return number


def _no_constants(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a JSON value")


# One decoder, built once: json.loads with keyword arguments would build a new one per call.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constants)
# 19 digits in a row may be an integer beyond 64 bits (orjson would read it as a float): the standard parser reads it.
_LONG_DIGITS = re.compile(rb"\d{19}")


def _parse(raw: bytes, data: bytes | str) -> Any:
    """The value of `raw` (the UTF-8 bytes of `data`), by orjson when it reads it as the standard library would."""
    if not _LONG_DIGITS.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard parser says what is wrong, in its words
    try:
        return _DECODER.decode(decode_text(data))
    except RecursionError:
        raise _Deep() from None


class _Deep(Exception):
    pass


def decode_text(data: bytes | str) -> str:
    """The body as text: UTF-8 as RFC 8259 requires between systems, strictly (invalid bytes are an error)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"the body is not valid UTF-8 (at byte offset {exc.start})") from None


def loads(data: bytes | str, *, max_depth: int, max_values: int, forbid_nul: bool = False) -> Any:
    """Parse JSON no deeper than `max_depth` containers and with at most `max_values` values in all.

    `forbid_nul` also refuses U+0000 in strings (PostgreSQL can store it neither in text nor in jsonb).
    Raises JsonLimitError (a ValueError) naming the limit, or ValueError for a syntax error.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = _parse(raw, data)
    except _Deep:
        raise JsonLimitError(f"nesting deeper than {max_depth} levels") from None
    # Each container opens with a bracket and each value takes at least one byte, so when these bounds hold the
    # limits cannot be exceeded and the walk is skipped.
    if len(raw) > max_values or raw.count(b"[") + raw.count(b"{") > max_depth:
        check(value, max_depth=max_depth, max_values=max_values)
    if b"\\ud" in raw or b"\\uD" in raw:
        _check_surrogates(value)
    if forbid_nul and b"\\u0000" in raw and "\\u0000" in json.dumps(value).replace("\\\\", ""):
        raise JsonLimitError("a string contains the NUL character (\\u0000)")
    return value


def _check_surrogates(value: Any) -> None:
    # Escaped pairs (an emoji as \ud83d\ude00) are fine; a lone half has no UTF-8 form, so no backend, database
    # or client could be handed it. Only bodies with such escapes pay for this C-speed re-encoding.
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise JsonLimitError("a \\u escape leaves a lone UTF-16 surrogate, which is not a character") from None


def check(value: Any, *, max_depth: int, max_values: int) -> None:
    """Raise JsonLimitError when a parsed value nests deeper than `max_depth` or holds more than `max_values` values."""
    if type(value) not in _CONTAINERS:
        return
    # Level by level, so that counting and gathering run in C builtins rather than one Python step per value.
    level = [value]
    depth = 0
    count = 1
    while level:
        depth += 1
        if depth > max_depth:
            raise JsonLimitError(f"nesting deeper than {max_depth} levels")
        count += sum(map(len, level))
        if count > max_values:
            raise JsonLimitError(f"more than {max_values:,} values")
        children = chain.from_iterable([node.values() if type(node) is dict else node for node in level])
        level = [child for child in children if type(child) in _CONTAINERS]
