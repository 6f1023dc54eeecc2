"""A cap on request bodies for everything Django serves: its ASGI handler would otherwise spool any size to disk."""
from __future__ import annotations

import json
import re

from django.conf import settings

# OpenAPI imports take descriptions up to OPENAPI_IMPORT_MAX_BYTES (uploads, pasted text) at these paths only.
_IMPORT_PATHS = re.compile(
    r"^/(?:api/v1/mcp-servers/\d+/imports/|api/v1/imports/\d+/confirm/|console/mcp/\d+/imports/new/)$")


def body_limit(path: str) -> int:
    if _IMPORT_PATHS.match(path):
        return max(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, settings.OPENAPI_IMPORT_MAX_BYTES) + FRAMING_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + FRAMING_BYTES

# Room for form and multipart framing around DATA_UPLOAD_MAX_MEMORY_SIZE worth of fields (the console takes no files).
FRAMING_BYTES = 64 * 1024


def limit_request_bodies(app):
    """Answer 413 to a body over the limit: at once for a declared Content-Length, else once it grows past it."""

    async def limited(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        limit = body_limit(scope.get("path", ""))
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    return await _too_large(scope, send)
                return await app(scope, receive, send)  # the server holds the body to its declared length
        # No declared length (a chunked body): read it here, within the limit, and hand it on as it came. Django
        # would have read it whole before the view anyway; an answer is only possible from out here.
        messages = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                return await _too_large(scope, send)
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await app(scope, replay, send)

    return limited


async def _too_large(scope, send) -> None:
    limit = body_limit(scope.get("path", "")) - FRAMING_BYTES
    if scope.get("path", "").startswith("/api/"):
        body = json.dumps({"detail": f"The request body is larger than the limit of {limit:,} bytes.",
                           "code": "too_large", "errors": {"body": [f"At most {limit:,} bytes."]}}).encode()
        content_type = b"application/json"
    else:
        body = f"The request body is larger than the limit of {limit:,} bytes.".encode()
        content_type = b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", content_type), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
