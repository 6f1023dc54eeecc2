"""Which gateway endpoint a path names: /mcp-servers/<name>[/sse|/message], also under /instances/<instance>/."""
from __future__ import annotations

import re
from dataclasses import dataclass

_PATH = re.compile(
    r"^(?P<prefix>/instances/(?P<instance>[a-z0-9][a-z0-9-_]{0,62}))?/mcp-servers/(?P<name>[a-z0-9][a-z0-9-_]{0,62})"
    r"(?P<rest>/.*)?$"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    instance: str | None
    name: str
    kind: str  # "streamable" | "sse" | "message" | "unknown"
    base: str  # the endpoint's own path, e.g. /mcp-servers/petstore
    rest: str = ""  # what follows the base (a Direct Proxy's backend path, e.g. /test/sse)


def match(path: str) -> Endpoint | None:
    m = _PATH.match(path)
    if m is None:
        return None
    rest = (m.group("rest") or "").rstrip("/")
    base = (m.group("prefix") or "") + "/mcp-servers/" + m.group("name")
    kind = {"": "streamable", "/mcp": "streamable", "/sse": "sse", "/message": "message",
            "/messages": "message"}.get(rest, "unknown")
    return Endpoint(instance=m.group("instance"), name=m.group("name"), kind=kind, base=base, rest=rest)


def is_gateway_path(path: str) -> bool:
    return path.startswith("/mcp-servers/") or (path.startswith("/instances/") and "/mcp-servers/" in path)
