"""Which MCP server an RFC 8707 resource URL names, and the scope and resource identifier of a protected endpoint."""
from __future__ import annotations

from urllib.parse import urlsplit

from django.db.models import QuerySet

from gateway import routing
from gateway.oauth_tokens import server_scope

from ..models import ConsumerAuthMethod, Instance, McpDomain, McpServer

MAX_RESOURCE_CHARS = 2000


def oauth_servers() -> QuerySet[McpServer]:
    return McpServer.objects.select_related("instance__team").filter(
        consumer_auth_enabled=True, consumer_auth_method=ConsumerAuthMethod.OAUTH)


def scope_of(server: McpServer) -> str:
    return server_scope(server.instance.name, server.name)


def server_for_path(*, host: str, path: str, oauth_only: bool = True) -> McpServer | None:
    """The MCP server an endpoint path addresses on `host`, resolved as the gateway resolves it."""
    endpoint = routing.match(path)
    if endpoint is None:
        return None
    servers = oauth_servers() if oauth_only else McpServer.objects.select_related("instance__team")
    if endpoint.instance is not None:
        return servers.filter(instance__name=endpoint.instance, name=endpoint.name).first()
    host = host.lower()
    domain = McpDomain.objects.filter(host=host).first()
    if domain is None and "." in host:
        domain = McpDomain.objects.filter(host="*." + host.split(".", 1)[1]).first()
    if domain is not None:
        return servers.filter(pk=domain.mcp_server_id, name=endpoint.name).first()
    default = Instance.objects.filter(is_default=True).first()
    if default is None:
        return None
    return servers.filter(instance=default, name=endpoint.name).first()


def server_for_resource(resource: str) -> McpServer | None:
    """The OAuth sign-in MCP server a resource indicator names (an endpoint URL without query or fragment)."""
    if not isinstance(resource, str) or len(resource) > MAX_RESOURCE_CHARS:
        return None
    try:
        parts = urlsplit(resource)
        host = parts.hostname or ""
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not host or parts.query or parts.fragment:
        return None
    return server_for_path(host=host, path=parts.path or "/")


def endpoint_base(path: str) -> str | None:
    endpoint = routing.match(path)
    return endpoint.base if endpoint is not None else None
