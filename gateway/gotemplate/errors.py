"""Exceptions raised while compiling or rendering a tool template."""
from __future__ import annotations


class TemplateError(Exception):
    """A template problem; `line` is 1-based within the template source, or None when unknown."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"line {self.line}: {self.message}"


class TemplateSyntaxError(TemplateError):
    """The source is not a template we can run (raised by `compile_template`)."""


class TemplateRenderError(TemplateError):
    """Rendering failed: a bad function argument, a limit exceeded, a field of a non-map, ..."""


class FuncError(Exception):
    """Raised by template functions and value helpers; the renderer adds the line and function name."""
