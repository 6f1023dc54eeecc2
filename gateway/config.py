"""Configuration cache: which MCP server a request addresses, and its tools, rebuilt when the config version moves."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from .consumer_auth import identities_of
from .oauth_tokens import server_scope
from .governance import load as load_governance
from .readmodel import ApiKeyConfig, CircuitConfig, ConsumerAuthConfig, JwtCredentialConfig, SchemeConfig, \
    ServerConfig, ToolConfig, UpstreamSecurity
from . import state as shared_state
from .state import get_state
from .state.memory import MemoryState
from .state.outage import ConfigStoreUnavailable, DependencyUnavailable, database_outage


@dataclass(frozen=True)
class Routes:
    default_instance: str | None
    # (instance, server name) -> server id
    servers: dict[tuple[str, str], int] = field(default_factory=dict)
    # host -> {server name: server id}; a domain names at most one server, reserved host names none
    domains: dict[str, dict[str, int]] = field(default_factory=dict)


def _load_routes() -> Routes:
    from django.db import close_old_connections

    from console.hostnames import is_reserved
    from console.models import Instance, McpDomain, McpServer

    close_old_connections()
    default = Instance.objects.filter(is_default=True).values_list("name", flat=True).first()
    servers = {(inst, name): pk for pk, name, inst in McpServer.objects.values_list("pk", "name", "instance__name")}
    domains: dict[str, dict[str, int]] = {}
    for host, name, pk in McpDomain.objects.order_by("pk").values_list("host", "mcp_server__name", "mcp_server_id"):
        # Rows from before the console refused the gateway's own names must not shadow the default instance.
        if not is_reserved(host):
            domains.setdefault(host, {}).setdefault(name, pk)
    return Routes(default_instance=default, servers=servers, domains=domains)


def _scheme(row) -> SchemeConfig:
    return SchemeConfig(id=row.scheme_id, type=row.type, scheme=row.scheme.lower(), location=row.location,
                        name=row.param_name, default_credential=row.default_credential)


def _load_consumer_auth(server) -> ConsumerAuthConfig:
    """Everything needed to authenticate a request to this server: four queries, only when authentication is on."""
    from console.models import Consumer, ConsumerApiKey, ConsumerAuthorization, JwtCredential

    name = server.consumer_auth_name.strip()
    source = server.consumer_auth_source if name else "bearer"  # a header or parameter needs its name
    if server.consumer_auth_method == "oauth":
        source = "bearer"  # OAuth tokens travel only in the Authorization header (OAuth 2.1 §5.2)
    oauth_scope = server_scope(server.instance.name, server.name)
    auth = ConsumerAuthConfig(enabled=server.consumer_auth_enabled, method=server.consumer_auth_method,
                              source=source, name=name, oauth_scope=oauth_scope)
    if not auth.enabled:
        return auth
    team_id = server.instance.team_id
    consumers = dict(Consumer.objects.filter(team_id=team_id, enabled=True).values_list("pk", "name"))
    api_keys: dict[str, ApiKeyConfig] = {}
    jwt_credentials: tuple[JwtCredentialConfig, ...] = ()
    if auth.method == "jwt":
        jwt_credentials = tuple(
            JwtCredentialConfig(id=c.pk, consumer_id=c.consumer_id, consumer_name=consumers[c.consumer_id],
                                algorithm=c.algorithm, secret=c.secret, public_key=c.public_key, jwks_url=c.jwks_url,
                                issuer=c.issuer, audience=c.audience, consumer_claim=c.consumer_claim or "sub")
            for c in JwtCredential.objects.filter(consumer__team_id=team_id, consumer__enabled=True).order_by("pk")
            if c.consumer_id in consumers
        )
    else:
        rows = ConsumerApiKey.objects.filter(consumer__team_id=team_id, consumer__enabled=True,
                                             revoked_at__isnull=True).values_list("pk", "consumer_id", "digest",
                                                                                  "expires_at")
        api_keys = {digest: ApiKeyConfig(id=pk, consumer_id=cid,
                                         expires_at=expires.timestamp() if expires is not None else None)
                    for pk, cid, digest, expires in rows if cid in consumers}
    authorizations = {
        cid: (frozenset(str(t) for t in tools) if isinstance(tools, list) else None)
        for cid, tools in ConsumerAuthorization.objects.filter(mcp_server=server).values_list("consumer_id", "tools")
    }
    return ConsumerAuthConfig(enabled=True, method=auth.method, source=auth.source, name=auth.name,
                              consumers=consumers, api_keys=api_keys, jwt_credentials=jwt_credentials,
                              authorizations=authorizations, identities=identities_of(consumers, authorizations),
                              oauth_scope=oauth_scope)


def _load_server(server_id: int, version: int) -> ServerConfig | None:
    from django.db import close_old_connections

    close_old_connections()
    return _build_server(server_id, version)


def _build_server(server_id: int, version: int) -> ServerConfig | None:
    from console.models import McpServer
    from console.toolyaml import input_schema_from_args

    server = (
        McpServer.objects.select_related("instance", "backend_service", "backend_service__circuit_breaker",
                                         "hosted_entry")
        .prefetch_related("security_schemes", "tools")
        .filter(pk=server_id)
        .first()
    )
    if server is None:
        return None
    backend = server.backend_service
    base_url = backend.base_url.rstrip("/") if backend else ""
    config = dict(server.config or {})
    if base_url:
        # Templates can say {{.config.baseUrl}} and URLs can be relative to the chosen backend service.
        config.setdefault("baseUrl", base_url)
    schemes = {s.scheme_id: _scheme(s) for s in server.security_schemes.all()}
    default_up = server.default_upstream_security or {}
    allowed = set(server.allow_tools) if server.allow_tools else None
    tools: dict[str, ToolConfig] = {}
    for tool in server.tools.all():
        if not tool.enabled or (allowed is not None and tool.name not in allowed):
            continue
        request = dict(tool.request_template or {})
        if base_url and str(request.get("url", "")).startswith("/"):
            request["url"] = base_url + request["url"]
        sec = request.pop("security", None) or {}
        credential = tool.request_credential
        if not sec.get("id"):
            sec, credential = default_up, server.default_upstream_credential
        upstream = None
        if sec.get("id") in schemes:
            upstream = UpstreamSecurity(scheme=schemes[sec["id"]], credential=credential or "",
                                        passthrough=bool(sec.get("passthrough")))
        tools[tool.name] = ToolConfig(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=input_schema_from_args(tool.args or []),
            args=tuple(tool.args or ()),
            request=request,
            response=tool.response_template or {},
            error_template=tool.error_response_template,
            output_schema=tool.output_schema,
            annotations=tool.annotations,
            upstream_security=upstream,
            downstream_security=tool.security or server.default_downstream_security or {},
        )
    return ServerConfig(
        id=server.pk,
        instance=server.instance.name,
        name=server.name,
        description=server.description,
        type=server.server_type,
        enabled=server.enabled,
        config=config,
        timeout=float(server.timeout_seconds),
        tools=tools,
        tool_order=tuple(sorted(tools)),
        schemes=schemes,
        backend_url=backend.base_url if backend else "",
        backend_transport=server.backend_transport,
        backend_path=server.backend_path,
        version=version,
        consumer_auth=_load_consumer_auth(server),
        allow_tools=frozenset(allowed) if allowed is not None else None,
        backend_security=_backend_security(server, schemes),
        governance=load_governance(server),
        circuit=_circuit(backend),
        hosted=_hosted(server),
    )


def _hosted(server):
    if server.server_type != "hosted_stdio":
        return None
    from console.services.hosted import hosted_program

    return hosted_program(mcp_server=server)


def _backend_security(server, schemes: dict[str, SchemeConfig]) -> UpstreamSecurity | None:
    """A Direct Proxy's credential for its backend MCP service: the server's default upstream scheme."""
    chosen = (server.default_upstream_security or {}).get("id")
    if server.server_type != "direct_proxy" or chosen not in schemes:
        return None
    return UpstreamSecurity(scheme=schemes[chosen], credential=server.default_upstream_credential or "")


def server_snapshot(server_id: int) -> ServerConfig | None:
    """The server as the gateway sees it, for synchronous callers (the console's view of a proxied backend)."""
    return _build_server(server_id, 0)


def _circuit(backend) -> CircuitConfig | None:
    breaker = getattr(backend, "circuit_breaker", None) if backend is not None else None
    if breaker is None or not breaker.enabled:
        return None
    return CircuitConfig(service_id=backend.pk, service_name=backend.name, failure_threshold=breaker.failure_threshold,
                         open_seconds=breaker.open_seconds)


_load_routes_sync = sync_to_async(_load_routes, thread_sensitive=False)
_load_server_sync = sync_to_async(_load_server, thread_sensitive=False)


async def _from_database(load, *args):
    """Run a configuration load: an unreachable database is the typed ConfigStoreUnavailable (logged once)."""
    try:
        value = await load(*args)
    except (OperationalError, InterfaceError) as exc:
        text = str(exc).strip()
        database_outage.failed(f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__)
        raise ConfigStoreUnavailable(type(exc).__name__) from None
    database_outage.succeeded()
    return value


async def _load_routes_async():
    return await _from_database(_load_routes_sync)


async def _load_server_async(server_id: int, version: int):
    return await _from_database(_load_server_sync, server_id, version)


class ConfigCache:
    """Per-process, per-event-loop cache; the only place the gateway touches the database."""

    def __init__(self) -> None:
        self._version = -1
        self._checked = 0.0
        self._local_changes = 0
        self._routes: Routes | None = None
        self._servers: dict[int, ServerConfig | None] = {}
        self._loading: dict[object, asyncio.Future] = {}
        self._missed = False  # a version poll failed: drop the caches at the next one that succeeds
        # The configuration before the last version change, served while the database cannot be read.
        self._previous_routes: Routes | None = None
        self._previous_servers: dict[int, ServerConfig | None] = {}

    async def _current_version(self, *, fresh: bool = False) -> int:
        state = get_state()
        now = time.monotonic()
        # Reading the version is free in-process; over Redis it is polled, which bounds staleness (a change made by
        # this process's own console is looked at on the next request).
        local = shared_state.local_changes
        if (not fresh and not isinstance(state, MemoryState) and local == self._local_changes
                and now - self._checked < settings.GATEWAY_CONFIG_POLL_SECONDS):
            return self._version
        self._checked = now
        self._local_changes = local
        try:
            version = await state.config_version()
        except DependencyUnavailable:
            # Serve what is cached; changes made meanwhile may not have been announced, so everything cached is
            # dropped once Redis answers again.
            self._missed = True
            return self._version
        if self._missed:
            self._missed = False
            self._version = -1
        if version != self._version:
            # Kept for as long as the database cannot be read: the gateway serves what it had.
            if self._routes is not None:
                self._previous_routes = self._routes
            self._previous_servers.update(self._servers)
            self._version = version
            self._routes = None
            self._servers = {}
        return version

    async def _once(self, key: object, loader):
        future = self._loading.get(key)
        if future is not None:
            return await asyncio.shield(future)
        future = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await loader()
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._loading.pop(key, None)

    async def _routes_at(self, version: int) -> Routes:
        if self._routes is not None:
            return self._routes
        try:
            routes = await self._once(("routes", version), _load_routes_async)
        except ConfigStoreUnavailable:
            if self._previous_routes is None:
                raise
            return self._previous_routes
        if version == self._version:
            self._routes = routes
            self._previous_routes = None
        return routes

    async def _server_at(self, server_id: int, version: int) -> ServerConfig | None:
        if server_id in self._servers:
            return self._servers[server_id]
        try:
            config = await self._once(("server", server_id, version), lambda: _load_server_async(server_id, version))
        except ConfigStoreUnavailable:
            if server_id not in self._previous_servers:
                raise
            return self._previous_servers[server_id]
        if version == self._version:
            self._servers[server_id] = config
            self._previous_servers.pop(server_id, None)
        return config

    async def latest(self, server: ServerConfig) -> ServerConfig | None:
        """The server as configured right now: listings must show a change made a moment ago."""
        await self._current_version(fresh=True)
        return await self.server(server.id)

    async def newer(self, server: ServerConfig) -> ServerConfig | None:
        """The server at the current config version if that moved on since `server` was built, else None."""
        if await self._current_version(fresh=True) == server.version:
            return None
        newer = await self.server(server.id)
        return newer if newer is not None and newer.enabled else None

    async def server(self, server_id: int) -> ServerConfig | None:
        return await self._server_at(server_id, await self._current_version())

    async def resolve(self, *, host: str, instance: str | None, name: str) -> ServerConfig | None:
        """The MCP server a request addresses: by instance path, else by Host among domains, else default."""
        server = await self._resolve(host=host, instance=instance, name=name)
        if server is None:
            # A miss may be a server created a moment ago: look again at the current version before a 404.
            version = self._version
            if await self._current_version(fresh=True) != version:
                server = await self._resolve(host=host, instance=instance, name=name)
        return server

    async def serves_host(self, host: str) -> bool:
        """Whether `host` is a name this gateway answers for: its own (PUBLIC_BASE_URL, GATEWAY_PUBLIC_HOSTS, a
        loopback address) or a domain an MCP server claims."""
        from console.hostnames import reserved_reason

        if reserved_reason(host) is not None:  # the names no MCP server may claim are exactly the gateway's own
            return True
        routes = await self._routes_at(await self._current_version())
        return host in routes.domains or ("." in host and "*." + host.split(".", 1)[1] in routes.domains)

    async def _resolve(self, *, host: str, instance: str | None, name: str) -> ServerConfig | None:
        # One version check per request serves both lookups.
        version = await self._current_version()
        routes = await self._routes_at(version)
        if instance is not None:
            server_id = routes.servers.get((instance, name))
        else:
            by_name = routes.domains.get(host)
            if by_name is None and "." in host:
                by_name = routes.domains.get("*." + host.split(".", 1)[1])
            if by_name is not None:
                server_id = by_name.get(name)
            elif routes.default_instance is not None:
                server_id = routes.servers.get((routes.default_instance, name))
            else:
                server_id = None
        if server_id is None:
            return None
        return await self._server_at(server_id, version)


_caches: dict[int, ConfigCache] = {}


def get_config_cache() -> ConfigCache:
    loop_id = id(asyncio.get_running_loop())
    cache = _caches.get(loop_id)
    if cache is None:
        cache = _caches[loop_id] = ConfigCache()
    return cache
