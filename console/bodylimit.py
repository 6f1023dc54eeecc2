"""A cap on request bodies for everything Django serves: its ASGI handler would otherwise spool any size to disk."""
from __future__ import annotations

import json

from django.conf import settings

# Room for form and multipart framing around DATA_UPLOAD_MAX_MEMORY_SIZE worth of fields (the console takes no files).
FRAMING_BYTES = 64 * 1024


def limit_request_bodies(app):
    """Answer 413 to a declared Content-Length over the limit; end an undeclared (chunked) body that grows past it."""

    async def limited(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + FRAMING_BYTES
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    return await _too_large(scope, send)
                break
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Nothing can be answered from inside Django's body reading: the exchange ends here.
                    return {"type": "http.disconnect"}
            return message

        return await app(scope, counting_receive, send)

    return limited


async def _too_large(scope, send) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
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
