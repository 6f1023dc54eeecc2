"""JSON-RPC dispatch: one message in, one response (or none) out, by the executor of the server's type."""
from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from django.conf import settings

from . import protocol as p
from .governance import governed
from .jsonrpc import Message, RpcError, error_response, meta_of, params_of, result_response
from .readmodel import ServerConfig

log = logging.getLogger(__name__)


@dataclass
class CallContext:
    server: ServerConfig
    version: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased request headers
    session_id: str | None = None
    stateless: bool = False
    # Who is calling (gateway.consumer_auth.ConsumerIdentity), set at the edge; None while the server is open.
    consumer: Any = None
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


def initialize(server: ServerConfig, message: Message) -> tuple[Message, str, dict[str, Any]]:
    """The answer to initialize, the negotiated revision, and the client's clientInfo as the session keeps it."""
    params = params_of(message)
    version = p.negotiate(params.get("protocolVersion"))
    info = params.get("clientInfo") if isinstance(params.get("clientInfo"), dict) else {}
    # The session is read back on every request: keep its identifying strings only, never a megabyte of extras.
    client = {key: info[key][:200] for key in _CLIENT_INFO_KEPT if isinstance(info.get(key), str)}
    return result_response(message["id"], initialize_result(server, version)), version, client


def is_stateless(message: Message) -> bool:
    """A request tagged with a handshake-free revision in its _meta (2026-07-28)."""
    return meta_of(message).get(p.META_PROTOCOL_VERSION) in p.STATELESS_VERSIONS


def discover_result(server: ServerConfig) -> dict[str, Any]:
    result: dict[str, Any] = {
        "supportedVersions": list(p.SUPPORTED_VERSIONS),
        "capabilities": server_capabilities(server),
        "serverInfo": server_info(server),
        "ttlMs": 0,
        "cacheScope": "private",
    }
    if server.description:
        result["instructions"] = server.description
    return result


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> int:
    if not isinstance(cursor, str) or not cursor:
        raise RpcError(p.INVALID_PARAMS, "Invalid params: cursor must be a non-empty string from nextCursor.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError
        offset = int(raw[2:])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RpcError(p.INVALID_PARAMS, "Invalid params: unknown cursor.") from None


class HttpToMcpExecutor:
    """Serves tools described in REST-to-MCP YAML by calling their REST backend."""

    async def tools_list(self, params: dict, ctx: CallContext) -> dict[str, Any]:
        from .config import get_config_cache

        server = await get_config_cache().latest(ctx.server) or ctx.server
        offset = _decode_cursor(params["cursor"]) if "cursor" in params else 0
        size = max(1, settings.MCP_TOOLS_PAGE_SIZE)
        order = server.tool_order
        consumer = ctx.consumer
        if consumer is not None and consumer.tools is not None:
            # A consumer limited to some tools sees only those; the others are not there for it.
            order = tuple(name for name in order if name in consumer.tools)
        names = order[offset:offset + size]
        result: dict[str, Any] = {"tools": [server.tools[n].listing() for n in names]}
        if offset + size < len(order):
            result["nextCursor"] = _encode_cursor(offset + size)
        return result

    async def tools_call(self, params: dict, ctx: CallContext) -> dict[str, Any]:
        from .executors.http_to_mcp import call_tool

        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise RpcError(p.INVALID_PARAMS, 'Invalid params: "name" must name a tool.')
        tool = ctx.server.tools.get(name)
        consumer = ctx.consumer
        if tool is None or (consumer is not None and not consumer.may_use(name)):
            raise RpcError(p.INVALID_PARAMS, f"Unknown tool: {name}")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            if p.tool_errors_in_result(ctx.version):
                return {"content": [{"type": "text", "text": '"arguments" must be an object.'}], "isError": True}
            raise RpcError(p.INVALID_PARAMS, 'Invalid params: "arguments" must be an object.')
        return await call_tool(server=ctx.server, tool=tool, arguments=arguments, request_headers=ctx.headers,
                               protocol_version=ctx.version, consumer=consumer)


class UnavailableExecutor:
    """Server types whose relaying is not served yet answer every tool method with a clear error."""

    async def tools_list(self, params: dict, ctx: CallContext) -> dict[str, Any]:
        raise RpcError(p.INTERNAL_ERROR, f"MCP server {ctx.server.name} is a Direct Proxy; relaying to backend MCP "
                                         "servers is not available in this version.")

    tools_call = tools_list


_CACHEABLE = {"server/discover", "tools/list", "resources/list", "resources/templates/list", "resources/read",
              "prompts/list"}

EXECUTORS = {"http_to_mcp": HttpToMcpExecutor(), "direct_proxy": UnavailableExecutor()}


async def dispatch(message: Message, ctx: CallContext) -> Message | None:
    """Answer one request (notifications and responses get None). Never raises."""
    method = message.get("method")
    msg_id = message.get("id")
    is_request = "id" in message and method is not None
    if not is_request:
        return None
    params = message.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return error_response(msg_id, p.INVALID_PARAMS, 'Invalid params: "params" must be an object.')
    try:
        result = await governed(_call, method, params, ctx)
    except RpcError as exc:
        return exc.response(msg_id)
    except Exception:  # the edge: a bug must become a JSON-RPC error, never a hung client
        log.exception("Unhandled error in %s on %s", method, ctx.server.key)
        return error_response(msg_id, p.INTERNAL_ERROR, "Internal error while handling the request.")
    if ctx.stateless and isinstance(result, dict):
        result.setdefault("resultType", "complete")
        if method in _CACHEABLE:
            # 2026-07-28 requires caching directives; listings may differ per consumer, so never shared.
            result.setdefault("ttlMs", 0)
            result.setdefault("cacheScope", "private")
    return result_response(msg_id, result)


async def _call(method: str, params: dict, ctx: CallContext) -> dict[str, Any]:
    executor = EXECUTORS.get(ctx.server.type, EXECUTORS["direct_proxy"])
    if method == "tools/list":
        return await executor.tools_list(params, ctx)
    if method == "tools/call":
        return await executor.tools_call(params, ctx)
    if method == "ping" and not ctx.stateless:
        return {}
    if method == "server/discover":
        return discover_result(ctx.server)
    if method == "initialize" and ctx.stateless:
        raise RpcError(p.METHOD_NOT_FOUND, "Method not found: initialize (2026-07-28 has no handshake; "
                                           "use server/discover).", http_status=404)
    raise RpcError(p.METHOD_NOT_FOUND, f"Method not found: {method}", http_status=404)
