"""Sandboxed subset of Go's text/template with Sprig functions and Higress's gjson, for tool templates.

    tpl = compile_template(source)          # parsed and compiled once; cached by source
    tpl.render(data, max_output=1_000_000, timeout=0.5)
    render(source, data, **limits)          # the two together

`data` is JSON-shaped (dict, list, str, int, float, bool, None) and is `.` and `$` in the template.
Templates never reach Python attributes or methods: only map keys and list indexes. Rendering is
bounded by output size, wall-clock time, a step budget (`max_steps`), {{template}} depth and the
size of intermediate values; the time limit holds inside one expensive call too, and a caller on
an event loop can cut a render short (`slice_seconds`) to finish it on a thread
(gateway/executors/template_runs.py). Regular expressions are Go's, on RE2 (regex.py).
Differences from Go that tenants may notice: printing nil gives "" (not "<no value>"); a missing
key, or a field of nil, is nil; `.items.0` indexes a list; gjson objects and arrays print as
compact JSON. See functions.py for the function list and its
deliberate differences from Sprig.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from .errors import TemplateError, TemplateRenderError, TemplateSyntaxError
from .render import SliceSpent, Template, compile_source

__all__ = ["compile_template", "render", "Template", "SliceSpent", "TemplateError", "TemplateSyntaxError", "TemplateRenderError"]


@lru_cache(maxsize=2048)
def compile_template(source: str) -> Template:
    """The compiled template for `source`; TemplateSyntaxError (with its line) if it cannot run."""
    if not isinstance(source, str):
        raise TypeError(f"template source must be str, not {type(source).__name__}")
    return compile_source(source)


def render(source: str, data: Any, **limits: Any) -> str:
    """compile_template(source).render(data, **limits)."""
    return compile_template(source).render(data, **limits)
