"""Listing READMEs: markdown rendered by markdown-it-py with raw HTML off, then sanitized by nh3 (no HTML passes)."""
from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

README_MAX = 50_000
ALLOWED_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a", "code", "pre", "em", "strong", "blockquote",
                "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "img", "del"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"style"}, "td": {"style"}}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def render_readme(text: str) -> str:
    """Safe HTML for a README: raw HTML in the markdown stays text, and links only to http(s) and mailto."""
    html = _markdown.render((text or "")[:README_MAX])
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="nofollow noopener noreferrer",
                     filter_style_properties={"text-align"})
