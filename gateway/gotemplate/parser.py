"""Parser from tokens to a syntax tree, following Go's text/template grammar; variables become frame slots."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import lexer as L
from .errors import TemplateSyntaxError
from .lexer import Token

MAX_NESTING = 50  # control structures and parentheses inside one another
MAX_ELSE_CHAIN = 200  # {{else if}} / {{else with}} branches after one {{if}} / {{with}}


# ---------------------------------------------------------------- nodes

@dataclass(eq=False)
class Node:
    line: int


@dataclass(eq=False)
class Text(Node):
    text: str


@dataclass(eq=False)
class Pipe(Node):
    cmds: list[Command]
    decl: list[int] = field(default_factory=list)  # frame slots, in source order
    is_assign: bool = False
    context: str = "command"


@dataclass(eq=False)
class Command(Node):
    args: list[Node]


@dataclass(eq=False)
class Action(Node):
    pipe: Pipe


@dataclass(eq=False)
class If(Node):
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None


@dataclass(eq=False)
class With(Node):
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None


@dataclass(eq=False)
class Range(Node):
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None


@dataclass(eq=False)
class Break(Node):
    pass


@dataclass(eq=False)
class Continue(Node):
    pass


@dataclass(eq=False)
class TemplateCall(Node):
    name: str
    pipe: Pipe | None


# Operands.
@dataclass(eq=False)
class Field(Node):
    keys: tuple[str, ...]


@dataclass(eq=False)
class Variable(Node):
    name: str
    slot: int
    keys: tuple[str, ...] = ()


@dataclass(eq=False)
class Chain(Node):
    node: Node
    keys: tuple[str, ...]


@dataclass(eq=False)
class Identifier(Node):
    name: str


@dataclass(eq=False)
class Dot(Node):
    pass


@dataclass(eq=False)
class Const(Node):
    value: Any  # a literal: string, number, bool, or None for nil
    kind: str  # lexer kind it came from, for messages


@dataclass
class Tree:
    """One executable template: the main one or a {{define}}; `nslots` is its frame size."""

    name: str
    body: list[Node]
    nslots: int
    line: int


# ---------------------------------------------------------------- parser

def parse(src: str, known_function) -> dict[str, Tree]:
    """Parse `src`; the main template is under "" and each {{define}}/{{block}} under its name.

    `known_function(name, line)` raises TemplateSyntaxError for a name that is not a usable function.
    """
    return _Parser(L.tokenize(src), known_function).parse_all()


class _End(Node):
    def __init__(self, line):
        super().__init__(line)


class _Else(Node):
    def __init__(self, line, chained: str | None):
        super().__init__(line)
        self.chained = chained  # "if" / "with" for {{else if}} / {{else with}}


_OPERAND_START = (L.BOOL, L.CHAR, L.DOT, L.FIELD, L.IDENT, L.NUMBER, L.NIL, L.RAW_STRING, L.STRING,
                  L.VARIABLE, L.LPAREN)


class _Parser:
    def __init__(self, tokens: list[Token], known_function):
        self.tokens = tokens
        self.i = 0
        self.known_function = known_function
        self.trees: dict[str, Tree] = {}
        self.template_refs: list[tuple[str, int]] = []
        # Per-tree state.
        self.vars: list[tuple[str, int]] = []
        self.nslots = 1
        self.range_depth = 0
        self.nesting = 0
        self.chain = 0

    # -- token access
    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != L.EOF:
            self.i += 1
        return tok

    def peek(self) -> Token:
        return self.tokens[self.i]

    def backup(self, n: int = 1):
        self.i -= n

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == L.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        j = self.i
        while self.tokens[j].kind == L.SPACE:
            j += 1
        return self.tokens[j]

    def fail(self, message: str, line: int):
        raise TemplateSyntaxError(message, line)

    def unexpected(self, tok: Token, context: str):
        if tok.kind == L.EOF:
            self.fail(f"unexpected end of template in {context}", tok.line)
        if tok.kind == L.RIGHT:
            self.fail(f"unexpected }}}} in {context}", tok.line)
        shown = tok.val if tok.kind not in (L.FIELD,) else "." + tok.val
        self.fail(f"unexpected {shown!r} in {context}", tok.line)

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            self.unexpected(tok, context)
        return tok

    def enter(self, line: int):
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            self.fail(f"template is nested more than {MAX_NESTING} levels deep", line)

    # -- variables
    def declare(self, name: str) -> int:
        slot = self.nslots
        self.nslots += 1
        self.vars.append((name, slot))
        return slot

    def lookup(self, name: str, line: int) -> int:
        for var_name, slot in reversed(self.vars):
            if var_name == name:
                return slot
        self.fail(f"undefined variable {name!r}", line)

    def new_tree_state(self):
        saved = (self.vars, self.nslots, self.range_depth, self.nesting, self.chain)
        self.vars = [("$", 0)]
        self.nslots = 1
        self.range_depth = 0
        self.nesting = 0
        self.chain = 0
        return saved

    def restore_tree_state(self, saved):
        self.vars, self.nslots, self.range_depth, self.nesting, self.chain = saved

    # -- top level
    def parse_all(self) -> dict[str, Tree]:
        self.new_tree_state()
        body: list[Node] = []
        while self.peek().kind != L.EOF:
            tok = self.peek()
            if tok.kind == L.LEFT:
                self.next()
                if self.peek_non_space().kind == L.KEYWORD and self.peek_non_space().val == "define":
                    self.next_non_space()
                    self.parse_definition(tok.line)
                    continue
                self.backup()
            node = self.text_or_action()
            if isinstance(node, _End):
                self.fail("unexpected {{end}}: there is no {{if}}, {{range}}, {{with}} or {{define}} to close",
                          node.line)
            if isinstance(node, _Else):
                self.fail("unexpected {{else}} outside {{if}}, {{range}} or {{with}}", node.line)
            body.append(node)
        self.trees[""] = Tree("", body, self.nslots, 1)
        for name, line in self.template_refs:
            if name not in self.trees or name == "":
                self.fail(f'template "{name}" is not defined', line)
        return self.trees

    def parse_template_name(self, context: str) -> tuple[str, int]:
        tok = self.next_non_space()
        if tok.kind not in (L.STRING, L.RAW_STRING):
            self.fail(f"{context} needs a template name in quotes, found {tok.val or tok.kind!r}", tok.line)
        return unquote(tok), tok.line

    def parse_definition(self, line: int):
        name, _ = self.parse_template_name("{{define}}")
        if name == "":
            self.fail("{{define}} needs a non-empty template name", line)
        self.expect(L.RIGHT, "{{define}}")
        saved = self.new_tree_state()
        body, end = self.item_list(f'{{{{define "{name}"}}}}', line)
        if not isinstance(end, _End):
            self.fail(f'unexpected {{{{else}}}} in {{{{define "{name}"}}}}', end.line)
        self.add_tree(Tree(name, body, self.nslots, line))
        self.restore_tree_state(saved)

    def add_tree(self, tree: Tree):
        """Go's rule: a non-empty definition may replace an empty one; two non-empty ones are an error."""
        old = self.trees.get(tree.name)
        if old is None or _is_empty(old.body):
            self.trees[tree.name] = tree
        elif not _is_empty(tree.body):
            self.fail(f'template "{tree.name}" is defined twice', tree.line)

    def item_list(self, context: str, line: int) -> tuple[list[Node], Node]:
        nodes: list[Node] = []
        while self.peek().kind != L.EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return nodes, node
            nodes.append(node)
        self.fail(f"{context} has no matching {{{{end}}}}", line)

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.kind == L.TEXT:
            return Text(tok.line, tok.val)
        if tok.kind == L.LEFT:
            return self.action()
        self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        if tok.kind == L.KEYWORD:
            word = tok.val
            if word == "if":
                return self.if_control(tok.line)
            if word == "range":
                return self.range_control(tok.line)
            if word == "with":
                return self.with_control(tok.line)
            if word == "else":
                return self.else_control(tok.line)
            if word == "end":
                self.expect(L.RIGHT, "{{end}}")
                return _End(tok.line)
            if word == "template":
                return self.template_control(tok.line)
            if word == "block":
                return self.block_control(tok.line)
            if word == "break" or word == "continue":
                self.expect(L.RIGHT, f"{{{{{word}}}}}")
                if self.range_depth == 0:
                    self.fail(f"{{{{{word}}}}} outside {{{{range}}}}", tok.line)
                return Break(tok.line) if word == "break" else Continue(tok.line)
            if word == "define":
                self.fail("{{define}} is only allowed at the top level of a template", tok.line)
        self.backup()
        pipe = self.pipeline("command", L.RIGHT)
        return Action(pipe.line, pipe)

    def parse_control(self, context: str, line: int):
        mark = len(self.vars)
        self.enter(line)
        pipe = self.pipeline(context, L.RIGHT)
        if context == "range":
            self.range_depth += 1
        body_mark = len(self.vars)
        body, nxt = self.item_list(f"{{{{{context}}}}}", line)
        if context == "range":
            self.range_depth -= 1
        # Variables declared in the body are not set when {{else}} runs (Go fails there at run time).
        del self.vars[body_mark:]
        else_body = None
        if isinstance(nxt, _Else):
            if nxt.chained and nxt.chained == context:
                # {{else if}} is {{else}}{{if}}...{{end}} sharing one {{end}}: a branch, not a nesting level.
                self.next_non_space()
                self.chain += 1
                if self.chain > MAX_ELSE_CHAIN:
                    self.fail(f"more than {MAX_ELSE_CHAIN} {{{{else {context}}}}} branches", nxt.line)
                self.nesting -= 1
                else_body = [self.if_control(nxt.line) if context == "if" else self.with_control(nxt.line)]
                self.nesting += 1
                self.chain -= 1
            elif nxt.chained:
                self.fail(f"{{{{else {nxt.chained}}}}} is not allowed in {{{{{context}}}}}", nxt.line)
            else:
                else_body, end = self.item_list(f"{{{{{context}}}}}", line)
                if not isinstance(end, _End):
                    self.fail(f"{{{{{context}}}}} has a second {{{{else}}}}; expected {{{{end}}}}", end.line)
        del self.vars[mark:]
        self.nesting -= 1
        return pipe, body, else_body

    def if_control(self, line: int) -> If:
        return If(line, *self.parse_control("if", line))

    def with_control(self, line: int) -> With:
        return With(line, *self.parse_control("with", line))

    def range_control(self, line: int) -> Range:
        return Range(line, *self.parse_control("range", line))

    def else_control(self, line: int) -> _Else:
        tok = self.peek_non_space()
        if tok.kind == L.KEYWORD and tok.val in ("if", "with"):
            return _Else(line, tok.val)
        self.expect(L.RIGHT, "{{else}}")
        return _Else(line, None)

    def template_control(self, line: int) -> TemplateCall:
        name, _ = self.parse_template_name("{{template}}")
        pipe = None
        if self.peek_non_space().kind != L.RIGHT:
            pipe = self.pipeline("template", L.RIGHT)
        else:
            self.next_non_space()
        self.template_refs.append((name, line))
        return TemplateCall(line, name, pipe)

    def block_control(self, line: int) -> TemplateCall:
        name, _ = self.parse_template_name("{{block}}")
        pipe = self.pipeline("block", L.RIGHT)
        saved = self.new_tree_state()
        body, end = self.item_list(f'{{{{block "{name}"}}}}', line)
        if not isinstance(end, _End):
            self.fail(f'unexpected {{{{else}}}} in {{{{block "{name}"}}}}', end.line)
        self.add_tree(Tree(name, body, self.nslots, line))
        self.restore_tree_state(saved)
        return TemplateCall(line, name, pipe)

    # -- pipelines
    def pipeline(self, context: str, end: str) -> Pipe:
        first = self.peek_non_space()
        pipe = Pipe(first.line, [], context=context)
        self.declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context, tok.line)
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def declarations(self, pipe: Pipe, context: str):
        while True:
            tok = self.peek_non_space()
            if tok.kind != L.VARIABLE:
                return
            save = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.kind in (L.DECLARE, L.ASSIGN):
                self.next_non_space()
                pipe.is_assign = nxt.kind == L.ASSIGN
                pipe.decl.append(tok)  # resolved below
                return self.resolve_declarations(pipe, context)
            if nxt.kind == L.COMMA:
                self.next_non_space()
                pipe.decl.append(tok)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind == L.VARIABLE:
                        continue
                    self.fail("range can only initialize variables", nxt.line)
                self.fail(f"too many declarations in {context}", nxt.line)
            self.i = save
            if pipe.decl:
                self.fail(f"missing := after variables in {context}", tok.line)
            return

    def resolve_declarations(self, pipe: Pipe, context: str):
        toks: list[Token] = pipe.decl  # type: ignore[assignment]
        slots = []
        for tok in toks:
            if tok.val == "$":
                self.fail("cannot assign to $", tok.line)
            if "." in tok.val:
                self.fail(f"cannot assign to a field: {tok.val}", tok.line)
            if pipe.is_assign:
                slots.append(self.lookup(tok.val, tok.line))
            else:
                slots.append(self.declare(tok.val))
        if len(slots) > 1 and context != "range":
            self.fail(f"too many declarations in {context}", toks[0].line)
        pipe.decl = slots

    def check_pipeline(self, pipe: Pipe, context: str, line: int):
        if not pipe.cmds:
            what = {"command": "action", "parenthesized pipeline": "parentheses"}.get(context, f"{{{{{context}}}}}")
            self.fail(f"missing value for {what}", line)
        for n, cmd in enumerate(pipe.cmds[1:], start=2):
            first = cmd.args[0]
            if isinstance(first, (Const, Dot)):
                self.fail(f"non executable command in pipeline stage {n}: a pipeline can only pass its value "
                          f"to a function", cmd.line)

    def command(self) -> Command:
        tok = self.peek_non_space()
        cmd = Command(tok.line, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == L.SPACE:
                continue
            if tok.kind in (L.RIGHT, L.RPAREN):
                self.backup()
            elif tok.kind == L.PIPE:
                if self.peek_non_space().kind not in _OPERAND_START:
                    self.fail("missing command after |", tok.line)
            else:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.fail("empty command", cmd.line)
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == L.FIELD:
            keys = []
            while self.peek().kind == L.FIELD:
                keys.append(self.next().val)
            if isinstance(node, Field):
                return Field(node.line, node.keys + tuple(keys))
            if isinstance(node, Variable):
                return Variable(node.line, node.name, node.slot, node.keys + tuple(keys))
            if isinstance(node, (Const, Dot)):
                self.fail(f"unexpected .{keys[0]} after a {getattr(node, 'kind', 'dot')}", node.line)
            return Chain(node.line, node, tuple(keys))
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == L.IDENT:
            self.known_function(tok.val, tok.line)
            return Identifier(tok.line, tok.val)
        if kind == L.DOT:
            return Dot(tok.line)
        if kind == L.NIL:
            return Const(tok.line, None, "nil")
        if kind == L.VARIABLE:
            return Variable(tok.line, tok.val, self.lookup(tok.val, tok.line))
        if kind == L.FIELD:
            return Field(tok.line, (tok.val,))
        if kind == L.BOOL:
            return Const(tok.line, tok.val == "true", "bool")
        if kind == L.NUMBER or kind == L.CHAR:
            return Const(tok.line, parse_number(tok), "number")
        if kind == L.STRING or kind == L.RAW_STRING:
            return Const(tok.line, unquote(tok), "string")
        if kind == L.LPAREN:
            self.enter(tok.line)
            pipe = self.pipeline("parenthesized pipeline", L.RPAREN)
            self.nesting -= 1
            return pipe
        self.backup()
        return None


def _is_empty(body: list[Node]) -> bool:
    return all(isinstance(n, Text) and not n.text.strip() for n in body)


# ---------------------------------------------------------------- literals

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def unquote(tok: Token) -> str:
    """A Go string literal's value (interpreted "..." or raw `...`)."""
    text = tok.val
    if tok.kind == L.RAW_STRING:
        return text[1:-1].replace("\r", "")
    body = text[1:-1]
    if "\\" not in body:
        return body
    return _unescape(body, '"', tok.line).decode("utf-8", "replace")


def _unescape(body: str, quote: str, line: int) -> bytes:
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= n:
            raise TemplateSyntaxError("invalid escape at end of string", line)
        e = body[i + 1]
        i += 2
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
        elif e == quote:
            out += quote.encode()
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i:i + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise TemplateSyntaxError(f"invalid escape \\{e}{digits} in string", line)
            value = int(digits, 16)
            i += width
            if e == "x":
                out.append(value)
            else:
                if value > 0x10FFFF or 0xD800 <= value < 0xE000:
                    raise TemplateSyntaxError(f"invalid Unicode escape \\{e}{digits}", line)
                out += chr(value).encode("utf-8")
        elif e in "01234567":
            digits = body[i - 1:i + 2]
            if len(digits) != 3 or not all(d in "01234567" for d in digits) or int(digits, 8) > 255:
                raise TemplateSyntaxError(f"invalid octal escape \\{digits} in string", line)
            out.append(int(digits, 8))
            i += 2
        else:
            raise TemplateSyntaxError(f"unknown escape sequence \\{e} in string", line)
    return bytes(out)


def parse_number(tok: Token) -> int | float:
    """A Go number or character constant: ints stay int, anything written with . e or p is a float."""
    text = tok.val
    if tok.kind == L.CHAR:
        body = text[1:-1]
        if body.startswith("\\"):
            value = _unescape(body, "'", tok.line).decode("utf-8", "replace")
        else:
            value = body
        if len(value) != 1:
            raise TemplateSyntaxError(f"malformed character constant: {text}", tok.line)
        return ord(value)
    if text.endswith("i"):
        raise TemplateSyntaxError(f"complex numbers are not supported: {text}", tok.line)
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    try:
        lower = body.lower()
        is_hex = lower.startswith("0x")
        if "_" in body and (body.startswith("_") or body.endswith("_") or "__" in body):
            raise ValueError
        if is_hex and "p" in lower:
            return sign * float.fromhex(body.replace("_", ""))
        if not is_hex and any(c in lower for c in ".e"):
            return sign * float(body.replace("_", ""))
        if lower.startswith(("0x", "0o", "0b")):
            return sign * int(body, 0)
        if len(body) > 1 and body.startswith("0"):
            return sign * int(body.replace("_", ""), 8)  # Go: a leading 0 means octal
        return sign * int(body.replace("_", ""), 10)
    except ValueError:
        raise TemplateSyntaxError(f"bad number syntax: {text!r}", tok.line) from None
