"""The gateway's ASGI application: routing → origin check → transport → session → dispatch → executor."""
from __future__ import annotations

import contextlib
import logging
import re
from urllib.parse import urlsplit

from django.conf import settings

from . import consumer_auth, routing
from .config import get_config_cache
from .drain import drain
from .jsonrpc import RpcError, error_response
from .protocol import INTERNAL_ERROR
from .readmodel import ServerConfig
from .state.outage import DependencyUnavailable
from .transport import sse, streamable
from .transport.http import JSON, Request, respond, respond_error, respond_json

log = logging.getLogger(__name__)


class ShuttingDown(DependencyUnavailable):
    """This process is draining (gateway/drain.py): a new call goes to another process."""

    def __init__(self):
        super().__init__("gateway process (shutting down)")

    @property
    def message(self) -> str:
        return f"Gateway process shutting down; retry in {self.retry_after} s (another process will answer)."


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_CORS_ALLOW_HEADERS = (b"content-type, accept, authorization, mcp-session-id, mcp-protocol-version, mcp-method, "
                       b"mcp-name, last-event-id, x-api-key")
_CORS_ALLOWED_SET = frozenset(name.strip() for name in _CORS_ALLOW_HEADERS.split(b","))
_HEADER_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]{1,100}")
_CORS_EXPOSE = b"mcp-session-id, mcp-protocol-version, www-authenticate"


def _allow_headers(requested: str | None) -> bytes:
    """The standard list plus what the preflight asks for: a server may read its consumer credential from any
    header it names, and the preflight comes before the server is known (the Origin was checked already)."""
    if not requested:
        return _CORS_ALLOW_HEADERS
    extra = [name for name in (part.strip().lower() for part in requested.split(","))
             if _HEADER_TOKEN.fullmatch(name) and name.encode() not in _CORS_ALLOWED_SET]
    return _CORS_ALLOW_HEADERS + b"".join(b", " + name.encode() for name in extra[:20])


def origin_allowed(origin: str, host: str, *, host_is_ours: bool = False) -> bool:
    """DNS-rebinding guard: a loopback page, an origin the operator listed, or a page of the request's own host
    when that host is one the gateway answers for. A rebound name (evil.example resolving to 127.0.0.1) sends a
    matching Host and Origin, so matching alone proves nothing; the host must be a known one too."""
    allowed = settings.MCP_ALLOWED_ORIGINS
    if "*" in allowed or origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    hostname = (parts.hostname or "").lower()
    if not hostname or parts.scheme not in {"http", "https"}:
        return False
    return hostname in _LOOPBACK or (hostname == host and host_is_ours)


async def app(scope: dict, receive, send) -> None:
    req = Request(scope, receive, send)
    try:
        if drain.started:
            raise ShuttingDown()
        if req.method == "GET":  # an event stream: it ends when draining closes streams, not counted as a call
            await _serve(req)
        else:
            with drain.track():
                await _serve(req)
    except ConnectionResetError:
        return
    except RpcError as exc:
        await respond_error(req, exc.http_status, exc.message, exc.code)
    except DependencyUnavailable as exc:
        # Logged once per outage where it was noticed; the client gets an answer it can retry.
        await answer_unavailable(req, exc)
    except Exception:
        # The edge: answer rather than leave the client hanging (channels #1350).
        log.exception("Gateway error on %s %s", req.method, req.path)
        try:
            await respond_error(req, 500, "Internal gateway error.", -32603)
        except Exception:
            pass


async def answer_unavailable(req: Request, exc: DependencyUnavailable) -> None:
    retry_after = settings.GATEWAY_RETRY_AFTER_SECONDS
    exc.retry_after = retry_after
    with contextlib.suppress(Exception):  # a stream that already started cannot take another answer
        await respond_json(req, 503, error_response(None, INTERNAL_ERROR, exc.message,
                                                    {"unavailable": exc.what, "retryAfter": retry_after}),
                           headers=[(b"retry-after", str(retry_after).encode())])


async def _serve(req: Request) -> None:
    endpoint = routing.match(req.path)
    if endpoint is None:
        await respond_error(req, 404, f"No MCP endpoint at {req.path}.")
        return
    origin = req.headers.get("origin")
    if origin is not None:
        host = req.host
        # Whether the host is the gateway's (a routes lookup) is asked only once the cheap rules refuse.
        if not origin_allowed(origin, host) and not origin_allowed(
                origin, host, host_is_ours=await get_config_cache().serves_host(host)):
            await respond_error(req, 403, f"Forbidden: origin {origin} is not allowed.")
            return
        req.cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                    (b"access-control-expose-headers", _CORS_EXPOSE)]
    if req.method == "OPTIONS":
        await respond(req, 204, headers=[
            (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
            (b"access-control-allow-headers", _allow_headers(req.headers.get("access-control-request-headers"))),
            (b"access-control-max-age", b"600"),
        ])
        return
    server = await get_config_cache().resolve(host=req.host, instance=endpoint.instance, name=endpoint.name)
    kind = endpoint.kind
    if kind == "unknown" and server is not None and server.type == "direct_proxy" and \
            endpoint.rest == server.backend_path.rstrip("/"):
        # A Direct Proxy also answers at its backend's path, in its backend's transport (/mcp-servers/weather/test/sse).
        kind = "sse" if server.backend_transport == "sse" else "streamable"
    if kind == "unknown":
        await respond_error(req, 404, f"No MCP endpoint at {req.path}: use {endpoint.base} (Streamable HTTP) or "
                                      f"{endpoint.base}/sse (SSE).")
        return
    if server is None:
        where = f"instance {endpoint.instance}" if endpoint.instance else f"host {req.host}"
        await respond_error(req, 404, f"No MCP server named {endpoint.name} on {where}.")
        return
    if not server.enabled:
        await respond_error(req, 503, f"MCP server {server.name} is disabled.")
        return
    auth = server.consumer_auth
    if auth is not None and auth.enabled:
        server = await _authenticate(req, server)
        if server is None:
            return
    if kind == "streamable":
        await streamable.handle(req, server)
    elif kind == "sse":
        await sse.open_stream(req, server, endpoint.base + "/message")
    else:
        await sse.post_message(req, server)


async def _authenticate(req: Request, server: ServerConfig) -> ServerConfig | None:
    """Consumer Authentication at the edge: sets req.consumer and returns the server to serve, or answers and returns
    None. The credential leaves the request here, so nothing downstream can forward it."""
    credential = req.credential = consumer_auth.take_credential(req, server.consumer_auth)
    try:
        req.consumer = await consumer_auth.identify(credential, server, req=req)
        return server
    except consumer_auth.Refused as refused:
        first = refused
    # A key issued or an authorization granted a moment ago may not have reached this process yet (with Redis
    # the config version is polled): look once at the current version before refusing. Only refusals pay this.
    newer = await get_config_cache().newer(server)
    if newer is not None:
        auth, was = newer.consumer_auth, server.consumer_auth
        if auth is None or not auth.enabled:
            return newer  # authentication was turned off meanwhile
        if (auth.source, auth.name) == (was.source, was.name):
            try:
                req.consumer = await consumer_auth.identify(credential, newer, req=req)
                return newer
            except consumer_auth.Refused as refused:
                first = refused
    await respond(req, first.status, first.body, content_type=JSON, headers=first.headers)
    return None
