"""Plain JSON values written as block YAML, fast: about ten times PyYAML's representer on a large preview."""

# Text is written plain only when every YAML 1.1 and 1.2 reader takes it for the same text (letters, digits and a
# few marks, no reserved word); otherwise double-quoted with JSON's escapes, which YAML reads the same, plus the
# YAML line breaks and non-printable characters JSON leaves raw. Multi-line text becomes a literal block.
from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_ ./()+-]*\Z")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}
_UNSAFE_IN_QUOTES = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_BLOCK_SAFE = re.compile("[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\r\t]*\\Z", re.S)


def _quoted(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return _UNSAFE_IN_QUOTES.sub(lambda m: "\\u%04x" % ord(m.group()), out)


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("infinite or NaN numbers have no JSON form")
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith(" ") and "  " not in text:
        return text
    return _quoted(text)


def _block(text: str, indent: str) -> str | None:
    """A literal block for multi-line text, when one can carry it exactly."""
    if "\n" not in text or not _BLOCK_SAFE.match(text) or text[:1] in (" ", "\n"):
        return None
    lines = text.split("\n")
    if any(line != line.rstrip(" ") for line in lines):
        return None
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    if trailing > 1 or not body:
        return None
    head = "|" if trailing == 1 else "|-"
    return head + "".join("\n" + (indent + line if line else "") for line in body.split("\n"))


def _key(key: Any) -> str:
    text = str(key)
    return text if _PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith(" ") else _quoted(text)


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Appends the lines of a mapping or list at `indent` (the caller has written the line it hangs from)."""
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{indent}{_key(key)}:"
            _item(head, item, indent, out)
    else:
        for item in value:
            if isinstance(item, dict) and item:
                first = True
                for key, sub in item.items():
                    head = f"{indent}- {_key(key)}:" if first else f"{indent}  {_key(key)}:"
                    _item(head, sub, indent + "  ", out)
                    first = False
            else:
                _item(f"{indent}-", item, indent, out)


def _item(head: str, value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append(head + " {}")
            return
        out.append(head)
        _emit(value, indent + "  ", out)
    elif isinstance(value, list):
        if not value:
            out.append(head + " []")
            return
        out.append(head)
        _emit(value, indent + "  ", out)
    elif isinstance(value, str):
        block = _block(value, indent + "  ")
        out.append(f"{head} {block}" if block else f"{head} {scalar(value)}")
    else:
        out.append(f"{head} {scalar(value)}")


def dump(value: Any) -> str:
    """A document: a mapping or a list at the top."""
    if isinstance(value, (dict, list)) and value:
        out: list[str] = []
        _emit(value, "", out)
        return "\n".join(out) + "\n"
    return scalar(value) + "\n" if not isinstance(value, (dict, list)) else ("{}\n" if isinstance(value, dict)
                                                                             else "[]\n")
