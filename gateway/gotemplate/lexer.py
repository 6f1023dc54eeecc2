"""Tokeniser for Go text/template source: text, {{ }} actions with trim markers, comments and action tokens."""
from __future__ import annotations

import bisect
import re
from typing import NamedTuple

from .errors import TemplateSyntaxError

# Token kinds.
TEXT = "text"
LEFT = "{{"
RIGHT = "}}"
SPACE = "space"
FIELD = "field"  # value: the name without the dot
VARIABLE = "variable"  # value: "$" or "$name"
IDENT = "identifier"
KEYWORD = "keyword"  # value: the keyword
STRING = "string"  # value: the source text, quotes included
RAW_STRING = "raw string"
CHAR = "character constant"
NUMBER = "number"
BOOL = "bool"
NIL = "nil"
DOT = "dot"
PIPE = "|"
LPAREN = "("
RPAREN = ")"
DECLARE = ":="
ASSIGN = "="
COMMA = ","
EOF = "end of template"

KEYWORDS = frozenset(
    ("block", "break", "continue", "define", "else", "end", "if", "range", "template", "with")
)
SPACE_CHARS = " \t\r\n"


class Token(NamedTuple):
    kind: str
    val: str
    line: int


_ACTION_TOKEN = re.compile(
    r"""
     (?P<space>[ \t\r\n]+)
    |(?P<declare>:=)
    |(?P<assign>=)
    |(?P<pipe>\|)
    |(?P<lparen>\()
    |(?P<rparen>\))
    |(?P<comma>,)
    |(?P<raw>`[^`]*`)
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<char>'(?:[^'\\\n]|\\.)*')
    |(?P<variable>\$\w*)
    |(?P<field>\.[^\W\d]\w*)
    |(?P<number>[+-]?(?:
         0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?
        |0[oO][0-7_]+
        |0[bB][01_]+
        |(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?
      )i?)
    |(?P<ident>[^\W\d]\w*)
    |(?P<dot>\.)
    """,
    re.VERBOSE,
)
# An index written as a field right after a field, variable or ")": `.items.0.name` (as Higress allows).
_INDEX_FIELD = re.compile(r"\.[0-9]+")
_KIND = {
    "declare": DECLARE,
    "assign": ASSIGN,
    "pipe": PIPE,
    "lparen": LPAREN,
    "rparen": RPAREN,
    "comma": COMMA,
    "raw": RAW_STRING,
    "string": STRING,
    "char": CHAR,
    "variable": VARIABLE,
    "field": FIELD,
    "number": NUMBER,
    "ident": IDENT,
    "dot": DOT,
}
_CHAINABLE = (FIELD, VARIABLE, RPAREN)
_TERMINATORS = frozenset(" \t\r\n.,|:()")


def tokenize(src: str) -> list[Token]:
    """The tokens of `src`; trim markers are applied here, so the parser never sees them."""
    return _Lexer(src).run()


class _Lexer:
    def __init__(self, src: str):
        self.src = src
        self.newlines = [i for i, c in enumerate(src) if c == "\n"]
        self.tokens: list[Token] = []

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def fail(self, message: str, pos: int):
        raise TemplateSyntaxError(message, self.line(pos))

    def run(self) -> list[Token]:
        src = self.src
        n = len(src)
        pos = 0
        trim_next = False
        while True:
            start = src.find("{{", pos)
            text = src[pos:] if start < 0 else src[pos:start]
            if trim_next:
                text_start = pos + len(text) - len(text.lstrip(SPACE_CHARS))
                text = text.lstrip(SPACE_CHARS)
            else:
                text_start = pos
            if start < 0:
                if text:
                    self.tokens.append(Token(TEXT, text, self.line(text_start)))
                break
            j = start + 2
            if src.startswith("-", j) and j + 1 < n and src[j + 1] in SPACE_CHARS:
                text = text.rstrip(SPACE_CHARS)
                j += 2
            if text:
                self.tokens.append(Token(TEXT, text, self.line(text_start)))
            if src.startswith("/*", j):
                pos, trim_next = self.comment(start, j)
                continue
            self.tokens.append(Token(LEFT, "{{", self.line(start)))
            pos, trim_next = self.action(j)
        self.tokens.append(Token(EOF, "", self.line(n)))
        return self.tokens

    def comment(self, start: int, j: int) -> tuple[int, bool]:
        src = self.src
        end = src.find("*/", j + 2)
        if end < 0:
            self.fail("unclosed comment", start)
        end += 2
        if src.startswith("}}", end):
            return end + 2, False
        if end < len(src) and src[end] in SPACE_CHARS and src.startswith("-}}", end + 1):
            return end + 4, True
        self.fail("comment ends before closing delimiter: write {{/* ... */}}", start)

    def action(self, pos: int) -> tuple[int, bool]:
        """Lex one action body from `pos`; returns where the text after "}}" starts and whether to trim it."""
        src = self.src
        n = len(src)
        tokens = self.tokens
        start = pos
        depth = 0
        while True:
            if pos >= n:
                self.fail("unclosed action: missing }}", start - 2)
            if src.startswith("}}", pos):
                trim = False
                end = pos + 2
            elif src[pos] in SPACE_CHARS and src.startswith("-}}", pos + 1):
                trim = True
                end = pos + 4
            else:
                end = -1
            if end >= 0:
                if depth:
                    self.fail("unclosed left parenthesis", pos)
                tokens.append(Token(RIGHT, "}}", self.line(pos)))
                return end, trim
            prev = tokens[-1].kind
            if prev in _CHAINABLE:
                m = _INDEX_FIELD.match(src, pos)
                if m:
                    tokens.append(Token(FIELD, m.group()[1:], self.line(pos)))
                    pos = m.end()
                    self.expect_terminator(pos, m.group())
                    continue
            m = _ACTION_TOKEN.match(src, pos)
            if m is None:
                self.bad_character(pos)
            group = m.lastgroup
            end = m.end()
            if group == "space":
                # Leave a space that begins a " -}}" closing delimiter for the check above.
                if src.startswith("-}}", end):
                    end -= 1
                    if end == pos:
                        continue
                tokens.append(Token(SPACE, " ", self.line(pos)))
                pos = end
                continue
            val = m.group()
            kind = _KIND[group]
            if kind == LPAREN:
                depth += 1
            elif kind == RPAREN:
                depth -= 1
                if depth < 0:
                    self.fail("unexpected right parenthesis", pos)
            elif kind == IDENT:
                if val in KEYWORDS:
                    kind = KEYWORD
                elif val in ("true", "false"):
                    kind = BOOL
                elif val == "nil":
                    kind = NIL
                self.expect_terminator(end, val)
            elif kind == FIELD:
                val = val[1:]
                self.expect_terminator(end, "." + val)
            elif kind == VARIABLE:
                self.expect_terminator(end, val)
            elif kind == NUMBER:
                if end < n and (src[end].isalnum() or src[end] in "_."):
                    self.fail(f"bad number syntax: {src[pos:end + 1]!r}", pos)
            elif kind == DOT:
                if end < n and src[end] not in _TERMINATORS and not src.startswith("}}", end):
                    self.bad_character(end)
            tokens.append(Token(kind, val, self.line(pos)))
            pos = end

    def expect_terminator(self, pos: int, word: str):
        src = self.src
        if pos >= len(src) or src[pos] in _TERMINATORS or src.startswith("}}", pos):
            return
        hint = ""
        if src[pos] == "-" and word.startswith("."):
            hint = f' (for a key with "-" in it, write index . "{word[1:]}-...")'
        self.fail(f"bad character {src[pos]!r} after {word!r}{hint}", pos)

    def bad_character(self, pos: int):
        c = self.src[pos]
        if c == '"':
            self.fail("unterminated quoted string", pos)
        if c == "`":
            self.fail("unterminated raw quoted string", pos)
        if c == "'":
            self.fail("unterminated character constant", pos)
        if self.src.startswith("/*", pos):
            self.fail("a comment must start right after the braces: write {{/* ... */}}", pos)
        if c == "}":
            self.fail("unexpected '}' in action", pos)
        self.fail(f"unexpected character {c!r} in action", pos)
