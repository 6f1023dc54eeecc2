"""MCP servers and their domains."""
from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from .. import hostnames
from ..errors import DomainError
from ..models import BackendService, HostedStdioEntry, Instance, McpDomain, McpServer
from .common import audit, config_changed, full_clean, require_write

HOST_RE = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def normalize_domains(domains: list[str] | str | None) -> list[str]:
    if isinstance(domains, str):
        domains = re.split(r"[\s,]+", domains)
    result: list[str] = []
    errors: list[str] = []
    for raw in domains or []:
        host = raw.strip().lower().rstrip(".")
        if not host:
            continue
        if "://" in host or "/" in host or ":" in host:
            errors.append(f"“{raw.strip()}” is not a domain name: give the host only, e.g. api.example.com.")
            continue
        if not HOST_RE.match(host):
            errors.append(f"“{raw.strip()}” is not a valid domain name.")
            continue
        if host not in result:
            result.append(host)
    if errors:
        raise DomainError("Invalid domain names.", {"domains": errors})
    return result


_MODEL_FIELDS_EXCLUDED = ["instance", "backend_service", "config", "default_downstream_security",
                          "default_upstream_security", "allow_tools", "hosted_entry", "hosted_variables"]


def _validate(server: McpServer, domains: list[str] | str | None) -> list[str]:
    """Every problem at once (field format, domains, uniqueness, backend), so a form shows them together."""
    errors: dict[str, list[str]] = {}
    try:
        full_clean(server, exclude=_MODEL_FIELDS_EXCLUDED)
    except DomainError as exc:
        errors.update(exc.details)
    try:
        hosts = normalize_domains(domains)
    except DomainError as exc:
        errors.update(exc.details)
        hosts = []
    for field, messages in _problems(server, hosts).items():
        errors.setdefault(field, messages)
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    return hosts


def _problems(server: McpServer, domains: list[str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    dupe = McpServer.objects.filter(instance=server.instance, name=server.name)
    if server.pk:
        dupe = dupe.exclude(pk=server.pk)
    if dupe.exists():
        errors["name"] = ["An MCP server with this name already exists in this instance."]
    domain_errors = _domain_problems(server, domains)
    if domain_errors:
        errors["domains"] = domain_errors
    backend = server.backend_service
    if backend is not None and backend.instance_id != server.instance_id:
        errors["backend_service"] = ["Choose a backend service of this instance."]
    if server.server_type == McpServer.Type.DIRECT_PROXY:
        if backend is None:
            errors["backend_service"] = ["A Direct Proxy server needs a backend MCP service."]
        elif backend.protocol != BackendService.Protocol.MCP:
            errors["backend_service"] = ["A Direct Proxy server needs a backend service whose protocol is MCP."]
        if server.backend_transport not in McpServer.Transport.values:
            errors["backend_transport"] = ["Choose SSE or Streamable HTTP."]
        if not server.backend_path:
            errors["backend_path"] = ["Give the backend's MCP path, e.g. /mcp or /test/sse."]
    elif server.server_type == McpServer.Type.HOSTED_STDIO:
        if server.hosted_entry is None:
            errors["hosted_entry"] = ["Choose an entry of the catalogue of hosted stdio servers."]
        elif server.hosted_entry.state != HostedStdioEntry.State.INSTALLED and not server.pk:
            errors["hosted_entry"] = ["Choose an installed entry (this one is "
                                      f"{server.hosted_entry.get_state_display().lower()})."]
        server.backend_service, server.backend_transport, server.backend_path = None, "", ""
    else:
        if backend is not None and backend.protocol != BackendService.Protocol.HTTP:
            errors["backend_service"] = ["An HTTP-to-MCP server needs a backend service whose protocol is HTTP."]
        server.backend_transport = ""
    if server.backend_path and not PATH_RE.match(server.backend_path):
        errors["backend_path"] = ["The path must start with “/” and contain no spaces or query, e.g. /test/sse."]
    if not 1 <= (server.timeout_seconds or 0) <= 600:
        errors["timeout_seconds"] = ["Choose a timeout between 1 and 600 seconds."]
    return errors


def _domain_problems(server: McpServer, domains: list[str]) -> list[str]:
    """A domain is one MCP server's across the installation, and never one of the gateway's own names."""
    problems: list[str] = []
    for host in domains:
        reason = hostnames.reserved_reason(host)
        if reason:
            problems.append(f"{host} cannot be used: {reason}.")
    taken = McpDomain.objects.filter(host__in=domains)
    if server.pk:
        taken = taken.exclude(mcp_server=server)
    for domain in taken.select_related("mcp_server__instance"):
        owner = domain.mcp_server
        if owner.instance_id == server.instance_id:
            problems.append(f"{domain.host} is already used by MCP server “{owner.name}” in this instance.")
        elif owner.instance.team_id == server.instance.team_id:
            problems.append(f"{domain.host} is already used by MCP server “{owner.name}” "
                            f"in instance {owner.instance.name}.")
        else:
            # Another team's: say which rule was hit, never whose server it is.
            problems.append(f"{domain.host} is already used by another MCP server on this gateway.")
    return problems


def _set_domains(server: McpServer, domains: list[str]) -> None:
    server.domains.exclude(host__in=domains).delete()
    existing = set(server.domains.values_list("host", flat=True))
    try:
        with transaction.atomic():
            McpDomain.objects.bulk_create(
                [McpDomain(instance=server.instance, mcp_server=server, host=h) for h in domains if h not in existing]
            )
    except IntegrityError as exc:  # claimed by a concurrent request between the check and the insert
        raise DomainError("Please correct the errors below.", {
            "domains": ["One of these domains was just taken by another MCP server on this gateway."]}) from exc


@transaction.atomic
def mcp_server_create(
    *, actor, instance: Instance, name: str, description: str = "",
    server_type: str = McpServer.Type.HTTP_TO_MCP, domains: list[str] | str | None = None,
    backend_service: BackendService | None = None, backend_transport: str = "", backend_path: str = "",
    config: dict[str, Any] | None = None, timeout_seconds: int | None = None, enabled: bool = True,
    allow_tools: list[str] | None = None, hosted_entry: HostedStdioEntry | None = None,
    hosted_variables: dict[str, str] | None = None,
) -> McpServer:
    require_write(actor=actor, team=instance.team)
    if timeout_seconds is None:
        timeout_seconds = settings.GATEWAY_BACKEND_TIMEOUT
    server = McpServer(
        instance=instance, name=(name or "").strip(), description=description or "", server_type=server_type,
        backend_service=backend_service, backend_transport=backend_transport or "",
        backend_path=(backend_path or "").strip(), config=config or {}, timeout_seconds=timeout_seconds,
        enabled=enabled, allow_tools=_allow_list(allow_tools),
    )
    if server_type == McpServer.Type.HOSTED_STDIO:
        _set_hosted(server, hosted_entry, hosted_variables)
    hosts = _validate(server, domains)
    server.save()
    _set_domains(server, hosts)
    audit(actor=actor, team=instance.team, action="mcp_server.create", obj=server, detail={"name": server.name})
    config_changed()
    return server


_UNSET: Any = object()


def _set_hosted(server: McpServer, entry: HostedStdioEntry | None, values, *, keep: bool = False) -> None:
    """The entry a Hosted stdio server runs and its variables (a secret not given again keeps its value)."""
    import json

    from .hosted import hosted_variables_clean, hosted_variables_of

    current = hosted_variables_of(server) if keep else {}
    server.hosted_entry = entry
    server.hosted_variables = json.dumps(hosted_variables_clean(entry=entry, values=values, current=current))


def _allow_list(names: list[str] | None) -> list[str] | None:
    """The tools a server publishes (a Direct Proxy's backend tools): None publishes them all."""
    if names is None:
        return None
    cleaned = sorted({str(n).strip() for n in names if str(n).strip()})
    bad = [n for n in cleaned if not TOOL_NAME_RE.match(n)]
    if bad:
        raise DomainError("Please correct the errors below.", {"allow_tools": [
            f"“{bad[0][:64]}” is not a tool name (1–128 of letters, digits, _ . -)."]})
    return cleaned


@transaction.atomic
def mcp_server_update(
    *, actor, mcp_server: McpServer, name: str | None = None, description: str | None = None,
    domains: list[str] | str | None = None, backend_service: BackendService | None = _UNSET,
    backend_transport: str | None = None, backend_path: str | None = None, config: dict | None = None,
    timeout_seconds: int | None = None, enabled: bool | None = None, allow_tools: list[str] | None = _UNSET,
    hosted_entry: HostedStdioEntry | None = _UNSET, hosted_variables: dict[str, str] | None = None,
) -> McpServer:
    server = mcp_server
    require_write(actor=actor, team=server.instance.team)
    for field, value in (("name", name), ("description", description), ("backend_transport", backend_transport),
                         ("backend_path", backend_path), ("config", config), ("timeout_seconds", timeout_seconds),
                         ("enabled", enabled)):
        if value is not None:
            setattr(server, field, value.strip() if isinstance(value, str) and field != "description" else value)
    if backend_service is not _UNSET:
        server.backend_service = backend_service
    if allow_tools is not _UNSET:
        server.allow_tools = _allow_list(allow_tools)
    if server.server_type == McpServer.Type.HOSTED_STDIO and (hosted_entry is not _UNSET or hosted_variables is not None):
        entry = server.hosted_entry if hosted_entry is _UNSET else hosted_entry
        _set_hosted(server, entry, hosted_variables if hosted_variables is not None else {},
                    keep=entry is not None and entry.pk == server.hosted_entry_id)
    if domains is None:
        domains = list(server.domains.values_list("host", flat=True))
    hosts = _validate(server, domains)
    server.save()
    _set_domains(server, hosts)
    audit(actor=actor, team=server.instance.team, action="mcp_server.update", obj=server)
    config_changed()
    return server


@transaction.atomic
def mcp_server_delete(*, actor, mcp_server: McpServer) -> None:
    require_write(actor=actor, team=mcp_server.instance.team)
    audit(actor=actor, team=mcp_server.instance.team, action="mcp_server.delete", obj=mcp_server,
          detail={"name": mcp_server.name})
    mcp_server.delete()
    config_changed()
