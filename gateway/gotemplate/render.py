"""Compiles a parsed template into nested closures once, and runs them under output, time, step and depth limits."""
from __future__ import annotations

import time
from typing import Any, Callable

from . import parser as P
from .errors import FuncError, TemplateRenderError, TemplateSyntaxError
from .functions import FUNCS, NOT_LITERAL, UNSUPPORTED
from .values import OwnedDict, fmt_v, go_type, sorted_keys, to_text, truth

MAX_TEMPLATE_DEPTH = 20  # {{template}} calls inside one another
DEFAULT_MAX_STEPS = 1_000_000  # actions, control structures, loop iterations and template calls
CHECK_EVERY = 256  # steps between clock readings
MIN_VALUE_LIMIT = 1 << 20  # intermediate strings may reach max(max_output, this)
BIG_RESULT = 1 << 12  # a function result this long (text, list or map) also makes the call read the clock

# Errors a function may raise on bad input; anything else is a bug and propagates.
_FUNC_ERRORS = (FuncError, ArithmeticError, ValueError, TypeError, LookupError, UnicodeError)

Runner = Callable[..., None]  # (state, dot, frame) -> None; writes output
Getter = Callable[..., Any]  # (state, dot, frame) -> value


class _State:
    """One render: the output so far and the budgets left."""

    __slots__ = ("out", "size", "max_output", "max_value", "ticks", "steps_left", "max_steps", "deadline",
                 "timeout", "depth", "slice_end", "yield_gil")

    def refill(self, line: int | None):
        """Called every CHECK_EVERY steps: enforce the clock and the step budget."""
        if time.perf_counter() > self.deadline:
            self.out_of_time(line)
        if self.steps_left <= 0:
            raise TemplateRenderError(f"rendering took more than {self.max_steps} steps", line)
        batch = min(CHECK_EVERY, self.steps_left)
        self.steps_left -= batch
        self.ticks = batch - 1
        if self.yield_gil:
            # Off the event loop: hand the GIL to the loop's thread now rather than after the switch interval.
            time.sleep(0)

    def check_clock(self):
        """For functions whose single call loops (over matches, items): the time limit holds inside one step."""
        if time.perf_counter() > self.deadline:
            self.out_of_time(None)

    def out_of_time(self, line: int | None):
        if self.slice_end is not None and self.deadline == self.slice_end:
            raise SliceSpent
        raise TemplateRenderError(f"rendering took longer than {self.timeout:g} seconds", line)


class SliceSpent(Exception):
    """The render used up its slice (see Template.render) before finishing or failing; run it again elsewhere."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _overflow(st: _State, line: int):
    raise TemplateRenderError(f"output is longer than {st.max_output} characters", line)


def _print(v: Any, st: _State, line: int) -> str:
    if v is None:
        return ""
    if type(v) is int:
        return str(v)
    try:
        return to_text(v, st.max_value)
    except FuncError as exc:
        raise TemplateRenderError(str(exc), line) from None


def _field(v: Any, key: str, line: int) -> Any:
    """`.key` on something that is not a plain dict."""
    if v is None:
        return None
    if isinstance(v, dict):
        return v.get(key)
    if isinstance(v, (list, tuple)):
        if key.isascii() and key.isdigit():
            i = int(key)
            return v[i] if i < len(v) else None
        raise TemplateRenderError(
            f"can't evaluate field {key} in type {go_type(v)}: a list has no fields (use index, or .0 for the "
            f"first item)", line)
    raise TemplateRenderError(
        f"can't evaluate field {key} in type {go_type(v)}: only maps (JSON objects) have fields", line)


def _walk(keys: tuple[str, ...], line: int) -> Callable[[Any], Any]:
    """A function following `keys` from a value."""
    if len(keys) == 1:
        k = keys[0]

        def walk1(v):
            return v.get(k) if type(v) is dict else _field(v, k, line)

        return walk1

    def walk(v):
        for k in keys:
            v = v.get(k) if type(v) is dict else _field(v, k, line)
        return v

    return walk


def _call_failed(exc: Exception, name: str, line: int):
    if isinstance(exc, FuncError):
        detail = str(exc)
    elif isinstance(exc, ZeroDivisionError):
        detail = "division by zero"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    raise TemplateRenderError(f"error calling {name}: {detail}", line) from None


def _at_line(exc: TemplateRenderError, line: int):
    if exc.line is None:
        exc.line = line
    raise exc


def _big_result(st: _State, r: Any, name: str, line: int):
    """A long result took time to make: read the clock now, as well as checking a text's length."""
    if type(r) is str and len(r) > st.max_value:
        raise TemplateRenderError(f"error calling {name}: result is longer than {st.max_value} characters", line)
    if time.perf_counter() > st.deadline:
        st.out_of_time(line)


def _describe(node: P.Node) -> str:
    if isinstance(node, P.Field):
        return "." + ".".join(node.keys)
    if isinstance(node, P.Variable):
        return ".".join((node.name,) + node.keys)
    if isinstance(node, P.Dot):
        return "."
    if isinstance(node, P.Const):
        return "nil" if node.value is None else f"the {node.kind} {fmt_v(node.value, 40)!r}"
    if isinstance(node, P.Chain):
        return "a field chain"
    return "a parenthesized pipeline"


def _arity(spec) -> str:
    if spec.max_args is None:
        return f"at least {spec.min_args}"
    if spec.min_args == spec.max_args:
        return str(spec.min_args)
    return f"{spec.min_args} to {spec.max_args}"


def _range_items(v: Any, nvars: int, line: int):
    """(index, element) pairs for {{range}}, or None when there is nothing to iterate (run {{else}})."""
    if isinstance(v, (list, tuple)):
        return enumerate(v) if v else None
    if isinstance(v, dict):
        return [(k, v[k]) for k in sorted_keys(v)] if v else None
    if v is None:
        return None
    if isinstance(v, bool):
        raise TemplateRenderError(f"range can't iterate over {fmt_v(v, 10)}", line)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        n = int(v)
        if nvars > 1:
            raise TemplateRenderError(f"can't use {n} to iterate over more than one variable", line)
        return ((i, i) for i in range(n)) if n > 0 else None
    if isinstance(v, str):
        return enumerate(v) if v else None
    raise TemplateRenderError(f"range can't iterate over {fmt_v(v, 60)}", line)


def _noop(st, dot, frame):
    return None


def _dot(st, dot, frame):
    return dot


def known_function(name: str, line: int):
    """Parser hook: only functions we implement may appear in a template."""
    if name in FUNCS:
        return
    if name in UNSUPPORTED:
        raise TemplateSyntaxError(f'function "{name}" is not supported in tool templates', line)
    raise TemplateSyntaxError(f'unknown function "{name}"', line)


class _Compiler:
    def __init__(self):
        self.templates: dict[str, tuple[Runner, int]] = {}

    # -- lists and control structures
    def list(self, nodes: list[P.Node] | None) -> Runner:
        merged: list[P.Node] = []
        for node in nodes or ():
            if isinstance(node, P.Text) and merged and isinstance(merged[-1], P.Text):
                merged[-1] = P.Text(merged[-1].line, merged[-1].text + node.text)
            else:
                merged.append(node)
        fns = tuple(self.node(n) for n in merged)
        if not fns:
            return _noop
        if len(fns) == 1:
            return fns[0]
        if len(fns) == 2:
            f0, f1 = fns

            def run2(st, dot, frame):
                f0(st, dot, frame)
                f1(st, dot, frame)

            return run2

        def run(st, dot, frame):
            for f in fns:
                f(st, dot, frame)

        return run

    def node(self, node: P.Node) -> Runner:
        if isinstance(node, P.Text):
            return self.text(node)
        if isinstance(node, P.Action):
            return self.action(node)
        if isinstance(node, P.If):
            return self.if_(node)
        if isinstance(node, P.With):
            return self.with_(node)
        if isinstance(node, P.Range):
            return self.range_(node)
        if isinstance(node, P.TemplateCall):
            return self.template_call(node)
        if isinstance(node, P.Break):
            def brk(st, dot, frame):
                raise _Break

            return brk
        if isinstance(node, P.Continue):
            def cont(st, dot, frame):
                raise _Continue

            return cont
        raise AssertionError(f"unexpected node {node!r}")

    def text(self, node: P.Text) -> Runner:
        s = node.text
        n = len(s)
        line = node.line

        def text(st, dot, frame):
            size = st.size + n
            st.size = size
            if size > st.max_output:
                _overflow(st, line)
            st.out.append(s)

        return text

    def action(self, node: P.Action) -> Runner:
        ev = self.pipe(node.pipe)
        line = node.line
        if node.pipe.decl:
            def declare(st, dot, frame):
                st.ticks -= 1
                if st.ticks < 0:
                    st.refill(line)
                ev(st, dot, frame)

            return declare

        def action(st, dot, frame):
            st.ticks -= 1
            if st.ticks < 0:
                st.refill(line)
            v = ev(st, dot, frame)
            if type(v) is not str:
                v = _print(v, st, line)
            size = st.size + len(v)
            st.size = size
            if size > st.max_output:
                _overflow(st, line)
            st.out.append(v)

        return action

    def if_(self, node: P.If) -> Runner:
        # An {{else if}} chain runs as one loop over its branches rather than nested closures.
        line = node.line
        branches = []
        while True:
            branches.append((self.pipe(node.pipe), self.list(node.body)))
            rest = node.else_body
            if rest is not None and len(rest) == 1 and isinstance(rest[0], P.If):
                node = rest[0]
                continue
            break
        els = self.list(rest) if rest is not None else None
        if len(branches) == 1:
            cond, body = branches[0]

            def if_(st, dot, frame):
                st.ticks -= 1
                if st.ticks < 0:
                    st.refill(line)
                v = cond(st, dot, frame)
                if v is True or (v is not False and v is not None and truth(v)):
                    body(st, dot, frame)
                elif els is not None:
                    els(st, dot, frame)

            return if_
        branches = tuple(branches)

        def if_chain(st, dot, frame):
            st.ticks -= 1
            if st.ticks < 0:
                st.refill(line)
            for cond, body in branches:
                v = cond(st, dot, frame)
                if v is True or (v is not False and v is not None and truth(v)):
                    body(st, dot, frame)
                    return
            if els is not None:
                els(st, dot, frame)

        return if_chain

    def with_(self, node: P.With) -> Runner:
        cond = self.pipe(node.pipe)
        body = self.list(node.body)
        els = self.list(node.else_body) if node.else_body is not None else None
        line = node.line

        def with_(st, dot, frame):
            st.ticks -= 1
            if st.ticks < 0:
                st.refill(line)
            v = cond(st, dot, frame)
            if truth(v):
                body(st, v, frame)
            elif els is not None:
                els(st, dot, frame)

        return with_

    def range_(self, node: P.Range) -> Runner:
        source = self.pipe(node.pipe, assign=False)
        decl = node.pipe.decl
        nvars = len(decl)
        islot = decl[0] if nvars == 2 else None
        eslot = decl[-1] if nvars else None
        body = self.list(node.body)
        els = self.list(node.else_body) if node.else_body is not None else None
        line = node.line

        def range_(st, dot, frame):
            st.ticks -= 1
            if st.ticks < 0:
                st.refill(line)
            items = _range_items(source(st, dot, frame), nvars, line)
            if items is None:
                if els is not None:
                    els(st, dot, frame)
                return
            try:
                for i, e in items:
                    st.ticks -= 1
                    if st.ticks < 0:
                        st.refill(line)
                    if islot is not None:
                        frame[islot] = i
                    if eslot is not None:
                        frame[eslot] = e
                    try:
                        body(st, e, frame)
                    except _Continue:
                        pass
            except _Break:
                pass

        return range_

    def template_call(self, node: P.TemplateCall) -> Runner:
        arg = self.pipe(node.pipe) if node.pipe is not None else None
        name = node.name
        line = node.line
        templates = self.templates

        def call_template(st, dot, frame):
            st.ticks -= 1
            if st.ticks < 0:
                st.refill(line)
            v = arg(st, dot, frame) if arg is not None else None
            if st.depth >= MAX_TEMPLATE_DEPTH:
                raise TemplateRenderError(
                    f'template "{name}" called more than {MAX_TEMPLATE_DEPTH} levels deep (endless recursion?)', line)
            body, nslots = templates[name]
            new_frame = [None] * nslots
            new_frame[0] = v
            st.depth += 1
            body(st, v, new_frame)
            st.depth -= 1

        return call_template

    # -- expressions
    def pipe(self, pipe: P.Pipe, assign: bool = True) -> Getter:
        first = self.command(pipe.cmds[0], has_final=False)
        rest = tuple(self.command(c, has_final=True) for c in pipe.cmds[1:])
        if not rest:
            ev = first
        elif len(rest) == 1:
            r0 = rest[0]

            def ev(st, dot, frame):
                return r0(st, dot, frame, first(st, dot, frame))
        else:
            def ev(st, dot, frame):
                v = first(st, dot, frame)
                for c in rest:
                    v = c(st, dot, frame, v)
                return v
        if not (assign and pipe.decl):
            return ev
        slot = pipe.decl[0]

        def declare(st, dot, frame):
            v = ev(st, dot, frame)
            frame[slot] = v
            return v

        return declare

    def command(self, cmd: P.Command, has_final: bool) -> Callable:
        first = cmd.args[0]
        if isinstance(first, P.Identifier):
            return self.call(first.name, cmd.args[1:], has_final, first.line)
        if len(cmd.args) > 1 or has_final:
            what = _describe(first)
            how = "arguments" if len(cmd.args) > 1 else "a piped value"
            raise TemplateSyntaxError(f"{what} is not a function, so it cannot take {how}", first.line)
        if isinstance(first, P.Const) and first.value is None:
            raise TemplateSyntaxError("nil is not a command", first.line)
        return self.operand(first)

    def operand(self, node: P.Node) -> Getter:
        if isinstance(node, P.Field):
            walk = _walk(node.keys, node.line)
            if len(node.keys) == 1:
                k = node.keys[0]
                line = node.line

                def field1(st, dot, frame):
                    if type(dot) is dict:
                        return dot.get(k)
                    return _field(dot, k, line)

                return field1

            def field(st, dot, frame):
                return walk(dot)

            return field
        if isinstance(node, P.Variable):
            slot = node.slot
            if not node.keys:
                def var(st, dot, frame):
                    return frame[slot]

                return var
            walk = _walk(node.keys, node.line)

            def var_field(st, dot, frame):
                return walk(frame[slot])

            return var_field
        if isinstance(node, P.Dot):
            return _dot
        if isinstance(node, P.Const):
            value = node.value

            def const(st, dot, frame):
                return value

            return const
        if isinstance(node, P.Identifier):
            return self.call(node.name, [], False, node.line)
        if isinstance(node, P.Pipe):
            return self.pipe(node)
        if isinstance(node, P.Chain):
            if isinstance(node.node, P.Const) and node.node.value is None:
                raise TemplateSyntaxError("indirection through explicit nil", node.line)
            base = self.operand(node.node)
            walk = _walk(node.keys, node.line)

            def chain(st, dot, frame):
                return walk(base(st, dot, frame))

            return chain
        raise AssertionError(f"unexpected operand {node!r}")

    def call(self, name: str, argnodes: list[P.Node], has_final: bool, line: int) -> Callable:
        spec = FUNCS[name]
        nargs = len(argnodes) + has_final
        if nargs < spec.min_args or (spec.max_args is not None and nargs > spec.max_args):
            raise TemplateSyntaxError(f"wrong number of args for {name}: want {_arity(spec)} got {nargs}", line)
        if spec.check is not None:
            literals = [n.value if isinstance(n, P.Const) else NOT_LITERAL for n in argnodes]
            if has_final:
                literals.append(NOT_LITERAL)
            try:
                spec.check(literals)
            except FuncError as exc:
                raise TemplateSyntaxError(f"{name}: {exc}", line) from None
        getters = tuple(self.operand(n) for n in argnodes)
        if spec.lazy:
            return _and_or(name == "and", getters, has_final)
        return _make_call(spec.fn, getters, has_final, spec.wants_dot, name, line)


def _and_or(is_and: bool, getters: tuple, has_final: bool) -> Callable:
    """and/or evaluate their arguments left to right and stop early, like Go's."""
    if has_final:
        def and_or_final(st, dot, frame, final):
            for g in getters:
                v = g(st, dot, frame)
                if truth(v) != is_and:
                    return v
            return final

        return and_or_final
    head = getters[:-1]
    last = getters[-1]

    def and_or(st, dot, frame):
        for g in head:
            v = g(st, dot, frame)
            if truth(v) != is_and:
                return v
        return last(st, dot, frame)

    return and_or


def _make_call(fn, getters: tuple, has_final: bool, wants_dot: bool, name: str, line: int) -> Callable:
    """A closure calling `fn` with its evaluated arguments (and the piped value last)."""
    n = len(getters)
    if not wants_dot and not has_final and n == 1:
        g0 = getters[0]

        def call1(st, dot, frame):
            try:
                r = fn(st, g0(st, dot, frame))
            except _FUNC_ERRORS as exc:
                _call_failed(exc, name, line)
            except TemplateRenderError as exc:
                _at_line(exc, line)
            if (type(r) is str or type(r) is list or type(r) is OwnedDict) and len(r) > BIG_RESULT:
                _big_result(st, r, name, line)
            return r

        return call1
    if not wants_dot and not has_final and n == 2:
        g0, g1 = getters

        def call2(st, dot, frame):
            try:
                r = fn(st, g0(st, dot, frame), g1(st, dot, frame))
            except _FUNC_ERRORS as exc:
                _call_failed(exc, name, line)
            except TemplateRenderError as exc:
                _at_line(exc, line)
            if (type(r) is str or type(r) is list or type(r) is OwnedDict) and len(r) > BIG_RESULT:
                _big_result(st, r, name, line)
            return r

        return call2
    if not wants_dot and has_final and n == 0:
        def call_final0(st, dot, frame, final):
            try:
                r = fn(st, final)
            except _FUNC_ERRORS as exc:
                _call_failed(exc, name, line)
            except TemplateRenderError as exc:
                _at_line(exc, line)
            if (type(r) is str or type(r) is list or type(r) is OwnedDict) and len(r) > BIG_RESULT:
                _big_result(st, r, name, line)
            return r

        return call_final0
    if not wants_dot and has_final and n == 1:
        g0 = getters[0]

        def call_final1(st, dot, frame, final):
            try:
                r = fn(st, g0(st, dot, frame), final)
            except _FUNC_ERRORS as exc:
                _call_failed(exc, name, line)
            except TemplateRenderError as exc:
                _at_line(exc, line)
            if (type(r) is str or type(r) is list or type(r) is OwnedDict) and len(r) > BIG_RESULT:
                _big_result(st, r, name, line)
            return r

        return call_final1

    def invoke(st, dot, args):
        try:
            r = fn(st, dot, *args) if wants_dot else fn(st, *args)
        except _FUNC_ERRORS as exc:
            _call_failed(exc, name, line)
        except TemplateRenderError as exc:
            _at_line(exc, line)
        if (type(r) is str or type(r) is list or type(r) is OwnedDict) and len(r) > BIG_RESULT:
            _big_result(st, r, name, line)
        return r

    if has_final:
        def call_final(st, dot, frame, final):
            args = [g(st, dot, frame) for g in getters]
            args.append(final)
            return invoke(st, dot, args)

        return call_final

    def call(st, dot, frame):
        return invoke(st, dot, [g(st, dot, frame) for g in getters])

    return call


class Template:
    """A compiled template; immutable and safe to render from several threads or tasks at once."""

    __slots__ = ("source", "_root", "_nslots", "_static")

    def __init__(self, source: str, root: Runner, nslots: int, static: str | None):
        self.source = source
        self._root = root
        self._nslots = nslots
        self._static = static

    def __repr__(self) -> str:
        head = self.source if len(self.source) <= 40 else self.source[:37] + "..."
        return f"<Template {head!r}>"

    def render(self, data: Any, *, max_output: int = 1_000_000, timeout: float = 0.5,
               max_steps: int = DEFAULT_MAX_STEPS, slice_seconds: float | None = None,
               yield_gil: bool = False, started: float | None = None) -> str:
        """The template's output for `data` (seen as `.` and `$`); TemplateRenderError on any failure.

        With `slice_seconds`, a render still running after that long (and before `timeout`) stops with
        SliceSpent, so that a caller on an event loop can run it again in a thread; `yield_gil` is for
        that thread, to keep handing the GIL back while it renders. `started` (a time.perf_counter()
        reading) lets a re-run count the time already spent against `timeout`.
        """
        static = self._static
        if static is not None:
            if len(static) > max_output:
                raise TemplateRenderError(f"output is longer than {max_output} characters", 1)
            return static
        st = _State()
        st.out = out = []
        st.size = 0
        st.max_output = max_output
        st.max_value = max_output if max_output > MIN_VALUE_LIMIT else MIN_VALUE_LIMIT
        st.timeout = timeout
        now = time.perf_counter()
        st.deadline = (now if started is None else started) + timeout
        st.slice_end = None
        if slice_seconds is not None and now + slice_seconds < st.deadline:
            st.slice_end = st.deadline = now + slice_seconds
        st.yield_gil = yield_gil
        st.max_steps = max_steps
        batch = CHECK_EVERY if max_steps > CHECK_EVERY else max_steps
        st.ticks = batch
        st.steps_left = max_steps - batch
        st.depth = 0
        frame = [None] * self._nslots
        frame[0] = data
        try:
            self._root(st, data, frame)
        except RecursionError:
            raise TemplateRenderError("the template or its data is nested too deeply to render") from None
        return "".join(out)


def compile_source(source: str) -> Template:
    """Parse and compile `source` (no caching; see compile_template)."""
    trees = P.parse(source, known_function)
    compiler = _Compiler()
    for name, tree in trees.items():
        compiler.templates[name] = (compiler.list(tree.body), tree.nslots)
    main = trees[""]
    static = None
    if len(trees) == 1 and all(isinstance(n, P.Text) for n in main.body):
        static = "".join(n.text for n in main.body)
    root, nslots = compiler.templates[""]
    return Template(source, root, nslots, static)
