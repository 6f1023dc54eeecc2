"""Market endpoints: the MCP server, consumer, API key, Consumer Authentication and authorization one "Get endpoint"
click provisions, in one transaction, and their rotation, re-tooling and removal (the market calls only these)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction

from ..errors import DomainError
from ..models import BackendService, Consumer, ConsumerApiKey, Instance, McpServer, Team
from ..permissions import MANAGE_TEAM
from .common import audit, require_role
from .consumers import (
    consumer_api_key_issue, consumer_api_key_revoke, consumer_authorize, consumer_create, consumer_delete,
    mcp_server_set_consumer_auth,
)
from .mcp_servers import mcp_server_create, mcp_server_delete
from .services import service_create, service_delete
from .tools import ToolsApplyResult, tool_delete, tools_apply_yaml

NAME_MAX = 63
_NOT_SLUG = re.compile(r"[^a-z0-9_-]+")


@dataclass
class MarketEndpoint:
    mcp_server: McpServer
    consumer: Consumer
    api_key: ConsumerApiKey
    secret: str  # the API key itself, returned this once
    backend_service: BackendService | None = None


def _slug(text: str) -> str:
    slug = _NOT_SLUG.sub("-", text.lower()).strip("-_")
    return slug[:NAME_MAX].rstrip("-_") or "market"


def _free_name(base: str, taken) -> str:
    """`base`, else `base-2`, `base-3`…, trimmed to the 63 characters a console name may have."""
    base = _slug(base)
    for n in range(1, 1000):
        suffix = "" if n == 1 else f"-{n}"
        candidate = base[:NAME_MAX - len(suffix)].rstrip("-_") + suffix
        if not taken(candidate):
            return candidate
    raise DomainError("No free name is left for this endpoint.", {"non_field": ["Choose another name."]})


def _require(actor, team: Team) -> None:
    # Consumers and their keys are an admin's to create (console/permissions.py).
    require_role(actor=actor, team=team, at_least=MANAGE_TEAM)


@transaction.atomic
def market_endpoint_provision(
    *, actor, instance: Instance, name: str, description: str = "", tool_yaml: str = "",
    remote_url: str = "", remote_transport: str = "", consumer_name: str, extra_consumers: tuple[Consumer, ...] = (),
) -> MarketEndpoint:
    """An MCP server in `instance` (HTTP to MCP from `tool_yaml`, or a Direct Proxy to `remote_url`), a consumer of
    the instance's team with one API key, Consumer Authentication on, and the consumer (plus `extra_consumers` of the
    same team) authorized on all its tools. Everything or nothing."""
    team = instance.team
    _require(actor, team)
    server_name = _free_name(name, lambda n: McpServer.objects.filter(instance=instance, name=n).exists())
    service = None
    if remote_url:
        parts = urlsplit(remote_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DomainError("Give the remote server's http(s) URL.", {"remote_url": ["Not an http(s) URL."]})
        service_name = _free_name(server_name, lambda n: BackendService.objects.filter(instance=instance,
                                                                                         name=n).exists())
        service = service_create(actor=actor, instance=instance, name=service_name,
                                 base_url=f"{parts.scheme}://{parts.netloc}", protocol=BackendService.Protocol.MCP,
                                 description=f"Backend of the market endpoint {server_name}.")
        server = mcp_server_create(actor=actor, instance=instance, name=server_name, description=description,
                                   server_type=McpServer.Type.DIRECT_PROXY, domains=[], backend_service=service,
                                   backend_transport=remote_transport or McpServer.Transport.STREAMABLE_HTTP,
                                   backend_path=parts.path or "/")
    else:
        server = mcp_server_create(actor=actor, instance=instance, name=server_name, description=description,
                                   domains=[])
        tools_apply_yaml(actor=actor, mcp_server=server, text=tool_yaml)
    consumer = consumer_create(
        actor=actor, team=team, description=f"Market endpoint {server.name} in {instance.name}.",
        name=_free_name(consumer_name, lambda n: Consumer.objects.filter(team=team, name=n).exists()))
    key, secret = consumer_api_key_issue(actor=actor, consumer=consumer, name="market")
    mcp_server_set_consumer_auth(actor=actor, mcp_server=server, enabled=True, method="api_key", source="bearer",
                                 name="")
    consumer_authorize(actor=actor, mcp_server=server, consumer=consumer)
    for extra in extra_consumers:
        consumer_authorize(actor=actor, mcp_server=server, consumer=extra)
    audit(actor=actor, team=team, action="market_endpoint.provision", obj=server,
          detail={"mcp_server": server.name, "consumer": consumer.name, "instance": instance.name})
    return MarketEndpoint(mcp_server=server, consumer=consumer, api_key=key, secret=secret, backend_service=service)


@transaction.atomic
def market_endpoint_retool(*, actor, mcp_server: McpServer, tool_yaml: str) -> ToolsApplyResult:
    """The tools of a newer listing version: upserted, and those it no longer has removed; endpoint and keys stay."""
    _require(actor, mcp_server.instance.team)
    result = tools_apply_yaml(actor=actor, mcp_server=mcp_server, text=tool_yaml)
    keep = set(result.created) | set(result.updated) | set(result.unchanged)
    for tool in list(mcp_server.tools.exclude(name__in=keep)):
        tool_delete(actor=actor, tool=tool)
    return result


@transaction.atomic
def market_endpoint_rotate_key(*, actor, consumer: Consumer,
                               api_key: ConsumerApiKey | None) -> tuple[ConsumerApiKey, str]:
    """A new key for the endpoint's consumer; the old one is revoked in the same transaction."""
    _require(actor, consumer.team)
    key, secret = consumer_api_key_issue(actor=actor, consumer=consumer, name="market")
    if api_key is not None and api_key.consumer_id == consumer.pk:
        consumer_api_key_revoke(actor=actor, api_key=api_key)
    return key, secret


@transaction.atomic
def market_endpoint_remove(*, actor, team: Team, mcp_server: McpServer | None, consumer: Consumer | None,
                           backend_service: BackendService | None = None) -> None:
    """Delete exactly what `market_endpoint_provision` made (what is already gone is skipped)."""
    _require(actor, team)
    for obj in (mcp_server, consumer, backend_service):
        if obj is not None and (obj.team_id if isinstance(obj, Consumer) else obj.instance.team_id) != team.pk:
            raise DomainError("No such endpoint.", code="not_found")
    if mcp_server is not None:
        audit(actor=actor, team=team, action="market_endpoint.remove", obj=mcp_server,
              detail={"mcp_server": mcp_server.name, "consumer": consumer.name if consumer else None})
        mcp_server_delete(actor=actor, mcp_server=mcp_server)
    if consumer is not None:
        consumer_delete(actor=actor, consumer=consumer)
    if backend_service is not None:
        service_delete(actor=actor, service=backend_service)
