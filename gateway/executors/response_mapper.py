"""From a backend's HTTP answer (or a direct response) to an MCP CallToolResult."""
from __future__ import annotations

import base64
import json
from typing import Any, Mapping

from ..boundedjson import loads as bounded_loads
from .request_builder import CallError, ToolPlan, render

V2025_03_26 = "2025-03-26"  # audio content
V2025_06_18 = "2025-06-18"  # structuredContent
ERROR_BODY_SHOWN = 2000  # characters of a backend's error body quoted in the default message
# A backend's JSON deeper than this is treated as text: deeper values could not be printed by templates or
# re-encoded for the client without running out of stack. Its size is bounded by the response limit.
BACKEND_JSON_MAX_DEPTH = 100
_UNCOUNTED = 1 << 62
_MISSING = object()


def text_result(text: str, *, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


def error_result(message: str) -> dict[str, Any]:
    return text_result(message, is_error=True)


def decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", "replace")


def _json(text: str) -> Any:
    try:
        return bounded_loads(text, max_depth=BACKEND_JSON_MAX_DEPTH, max_values=_UNCOUNTED)
    except ValueError:
        return _MISSING


def _structured(result: dict[str, Any], text: str, value: Any) -> dict[str, Any]:
    """Attach a JSON object as structuredContent; its JSON also goes in a text block unless the text is it."""
    result["structuredContent"] = value
    if text is not _MISSING:
        result["content"].append({"type": "text", "text": json.dumps(value, ensure_ascii=False)})
    return result


def success(plan: ToolPlan, *, raw: bytes, content_type: str, charset: str | None, url: str,
            protocol_version: str, max_output: int) -> dict[str, Any]:
    """A 2xx answer. Images and audio become media content; everything else becomes text."""
    if content_type.startswith("image/"):
        return {"content": [{"type": "image", "data": base64.b64encode(raw).decode("ascii"),
                             "mimeType": content_type}], "isError": False}
    if content_type.startswith("audio/"):
        data = base64.b64encode(raw).decode("ascii")
        if protocol_version >= V2025_03_26:
            item = {"type": "audio", "data": data, "mimeType": content_type}
        else:  # no audio content before 2025-03-26: an embedded binary resource carries it
            item = {"type": "resource", "resource": {"uri": url, "mimeType": content_type, "blob": data}}
        return {"content": [item], "isError": False}

    body = decode(raw, charset)
    value: Any = _MISSING
    if plan.response_body is not None:
        if type(plan.response_body) is str:
            text = plan.response_body
        else:
            value = _json(body)
            # The template's root is the decoded JSON; a body that is not JSON is offered as ._body.
            data = {"_body": body} if value is _MISSING else value
            try:
                text = render(plan.response_body, data, what="response template", max_output=max_output)
            except CallError as exc:
                return error_result(exc.message)
    elif plan.prepend or plan.append:
        text = plan.prepend + body + plan.append
    else:
        text = body
    result = text_result(text or "success")  # Higress answers an empty body this way
    if plan.structured and protocol_version >= V2025_06_18:
        if value is _MISSING:
            value = _json(body)
        if type(value) is dict:
            return _structured(result, _MISSING if text == body else text, value)
    return result


def failure(plan: ToolPlan, *, status: int, reason: str, headers: Mapping[str, str], raw: bytes,
            charset: str | None, method: str, url: str, max_output: int) -> dict[str, Any]:
    """A non-2xx answer: the error template's text if it renders to something, else a plain account."""
    body = decode(raw, charset)
    if plan.error_template is not None:
        value = _json(body)
        data: dict[str, Any] = value if type(value) is dict else {}
        response_headers: dict[str, str] = {":status": str(status)}
        for name, header_value in headers.items():
            name = name.lower()
            response_headers[name] = (f"{response_headers[name]}, {header_value}" if name in response_headers
                                      else header_value)
        data["_headers"] = response_headers
        data["_status"] = status
        data["_body"] = body
        try:
            text = render(plan.error_template, data, what="error response template", max_output=max_output)
        except CallError as exc:
            return error_result(exc.message)
        if text.strip():
            return error_result(text)
    message = f"Backend returned HTTP {status} {reason} for {method} {url}".rstrip()
    if 300 <= status < 400 and headers.get("Location"):
        message = f"{message} (redirects are not followed; Location: {headers['Location']})"
    shown = body.strip()
    if shown:
        if len(shown) > ERROR_BODY_SHOWN:
            shown = shown[:ERROR_BODY_SHOWN] + f"… ({len(body)} characters in all)"
        message = f"{message}: {shown}"
    return error_result(message)


def direct(plan: ToolPlan, data: dict[str, Any], *, protocol_version: str, max_output: int) -> dict[str, Any]:
    """A tool without a URL answers from its response template over the arguments and config."""
    try:
        text = render(plan.response_body, data, what="response template", max_output=max_output)
    except CallError as exc:
        return error_result(exc.message)
    result = text_result(text)
    if plan.structured and protocol_version >= V2025_06_18 and text.lstrip().startswith("{"):
        value = _json(text)
        if type(value) is dict:
            result["structuredContent"] = value
    return result
