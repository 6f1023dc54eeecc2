"""What a Direct Proxy server's backend offers (tools, resources, prompts) as the console lists it: fetched on demand,
kept a few minutes, dropped when the backend announces a changed list."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone

from asgiref.sync import async_to_sync
from django.core.cache import cache

from gateway import backends
from gateway.config import server_snapshot
from gateway.executors.direct_proxy import catalog_cache_key, fetch_catalog
from gateway.executors.upstream import UpstreamError

from .models import McpServer

CACHE_SECONDS = 300


@dataclass(frozen=True)
class Catalog:
    tools: list[dict] = field(default_factory=list)  # each with "published": whether the allow-list lets it through
    resources: list[dict] = field(default_factory=list)
    resource_templates: list[dict] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)
    backend_name: str = ""
    truncated: bool = False
    fetched_at: datetime | None = None
    error: str = ""  # why the backend could not be listed; the lists are empty then

    def as_dict(self) -> dict:
        return {"tools": self.tools, "resources": self.resources, "resource_templates": self.resource_templates,
                "prompts": self.prompts, "backend_name": self.backend_name, "truncated": self.truncated,
                "fetched_at": self.fetched_at, "error": self.error}


def _built(server: McpServer, data: dict) -> Catalog:
    allowed = set(server.allow_tools) if server.allow_tools else None
    tools = [{"name": str(t.get("name", "")), "title": str(t.get("title") or ""),
              "description": str(t.get("description") or ""), "input_schema": t.get("inputSchema") or {},
              "published": allowed is None or t.get("name") in allowed} for t in data.get("tools", [])]
    return Catalog(
        tools=tools,
        resources=[{"uri": str(r.get("uri", "")), "name": str(r.get("name") or ""),
                    "description": str(r.get("description") or ""), "mime_type": str(r.get("mimeType") or "")}
                   for r in data.get("resources", [])],
        resource_templates=[{"uri_template": str(r.get("uriTemplate", "")), "name": str(r.get("name") or ""),
                             "description": str(r.get("description") or "")}
                            for r in data.get("resourceTemplates", [])],
        prompts=[{"name": str(r.get("name", "")), "description": str(r.get("description") or ""),
                  "arguments": [str(a.get("name", "")) for a in r.get("arguments") or [] if isinstance(a, dict)]}
                 for r in data.get("prompts", [])],
        backend_name=str((data.get("info") or {}).get("name") or ""),
        truncated=bool(data.get("truncated")),
        fetched_at=datetime.fromisoformat(data["fetched_at"]) if data.get("fetched_at") else None,
    )


async def _fetch(config) -> dict:
    """fetch_catalog, closing the HTTP client it opened when it ran on a loop of its own (not the server's)."""
    had_client = id(asyncio.get_running_loop()) in backends._sessions
    try:
        if config.type == McpServer.Type.HOSTED_STDIO:
            from gateway.executors.hosted_stdio import HostedStdioExecutor

            # A child of its own, stopped once listed; refused like a session would be (limits, crash loop).
            return await fetch_catalog(config, HostedStdioExecutor())
        return await fetch_catalog(config)
    finally:
        if not had_client:
            await backends.close_http_sessions()


def proxy_catalog(*, mcp_server: McpServer, fresh: bool = False) -> Catalog:
    """The backend's catalogue, from the cache unless `fresh` or the server's configuration changed since."""
    server = mcp_server
    if server.server_type not in (McpServer.Type.DIRECT_PROXY, McpServer.Type.HOSTED_STDIO):
        return Catalog(error="Only a Direct Proxy or Hosted stdio server lists its backend's tools.")
    key = catalog_cache_key(server.pk)
    stamp = server.updated_at.isoformat() if server.updated_at else ""
    cached = None if fresh else cache.get(key)
    if cached is not None and cached.get("stamp") == stamp:
        return _built(server, cached)
    config = server_snapshot(server.pk)
    if config is None:
        return Catalog(error="The server no longer exists.")
    try:
        data = async_to_sync(_fetch)(config)
    except UpstreamError as exc:
        return Catalog(error=exc.message)
    data["stamp"] = stamp
    data["fetched_at"] = datetime.now(timezone.utc).isoformat()
    cache.set(key, data, CACHE_SECONDS)
    return _built(server, data)
