"""What every executor shares: the call context and the gateway's own lifecycle answers (initialize, discover, ping)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from . import protocol as p
from .jsonrpc import Message, RpcError, meta_of, params_of, result_response
from .readmodel import ServerConfig

Emit = Callable[[Message], Awaitable[None]]


@dataclass
class CallContext:
    server: ServerConfig
    version: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased request headers
    session_id: str | None = None
    stateless: bool = False
    # Who is calling (gateway.consumer_auth.ConsumerIdentity), set at the edge; None while the server is open.
    consumer: Any = None
    # Sends a message to the client ahead of the response (progress, a backend's own request); None: nowhere to send.
    emit: Emit | None = None
    # The session as stored (gateway.sessions.Session), for executors that keep per-session state in it.
    session: Any = None
    transport: str = ""  # "streamable" | "sse" | "stateless", as call records name it
    client_name: str = ""  # the session's clientInfo.name


def server_capabilities(server: ServerConfig) -> dict[str, Any]:
    return {"tools": {"listChanged": False}}


def server_info(server: ServerConfig) -> dict[str, Any]:
    info: dict[str, Any] = {"name": server.name, "version": p.SERVER_VERSION}
    if server.description:
        info["title"] = server.description.splitlines()[0][:100]
    return info


def initialize_result(server: ServerConfig, version: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": server_capabilities(server),
        "serverInfo": server_info(server),
    }
    if server.description:
        result["instructions"] = server.description
    return result


_CLIENT_INFO_KEPT = ("name", "title", "version")


def client_of(message: Message) -> dict[str, Any]:
    """The client's clientInfo as the session keeps it: identifying strings only, never a megabyte of extras."""
    info = params_of(message).get("clientInfo")
    info = info if isinstance(info, dict) else {}
    return {key: info[key][:200] for key in _CLIENT_INFO_KEPT if isinstance(info.get(key), str)}


def initialize(server: ServerConfig, message: Message) -> tuple[Message, str, dict[str, Any]]:
    """The answer to initialize, the negotiated revision, and the client's clientInfo as the session keeps it."""
    version = p.negotiate(params_of(message).get("protocolVersion"))
    return result_response(message["id"], initialize_result(server, version)), version, client_of(message)


def is_stateless(message: Message) -> bool:
    """A request tagged with a handshake-free revision in its _meta (2026-07-28)."""
    return meta_of(message).get(p.META_PROTOCOL_VERSION) in p.STATELESS_VERSIONS


def discover_result(server: ServerConfig, capabilities: dict[str, Any] | None = None,
                    info: dict[str, Any] | None = None, instructions: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "supportedVersions": list(p.SUPPORTED_VERSIONS),
        "capabilities": capabilities if capabilities is not None else server_capabilities(server),
        "serverInfo": info or server_info(server),
        "ttlMs": 0,
        "cacheScope": "private",
    }
    instructions = server.description if instructions is None else instructions
    if instructions:
        result["instructions"] = instructions
    return result


def lifecycle_answer(method: str, ctx: CallContext) -> dict[str, Any]:
    """ping, and initialize sent in a handshake-free revision; every other method is unknown here."""
    if method == "ping" and not ctx.stateless:
        return {}
    if method == "initialize" and ctx.stateless:
        raise RpcError(p.METHOD_NOT_FOUND, "Method not found: initialize (2026-07-28 has no handshake; "
                                           "use server/discover).", http_status=404)
    raise RpcError(p.METHOD_NOT_FOUND, f"Method not found: {method}", http_status=404)
