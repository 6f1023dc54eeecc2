"""HTTP-to-MCP executor: a tools/call becomes one REST call described by the tool's REST-to-MCP YAML.

Call-time behaviour beyond the YAML reference (gateway decisions, kept compatible with Higress):
- Arguments: a null counts as not given; defaults fill missing arguments; values are coerced to the declared
  type where the reading is unambiguous ("5" -> 5 for integer, "true" -> true for boolean, a JSON-array string
  for array, a number -> its text for string), anything else is an argument error. Items of arrays whose
  `items.type` is a scalar are coerced and checked against `items.enum` too. A path argument whose `{name}`
  is in the URL is required. Undeclared arguments are forwarded only in the argsToJsonBody /
  argsToFormBody / argsToUrlParam modes ("all arguments"); elsewhere they have no place and are dropped.
- The argsTo* modes carry the arguments without a position plus the `position: body` ones; arguments
  with a query, path, header or cookie position always go there. argsToUrlParam puts them all in the query.
- Query and form values: arrays of scalars repeat the name (OpenAPI form/explode), objects go as JSON text,
  booleans as true/false. A query parameter the URL template already has is replaced by an argument
  of the same name; the template's other parameters stay as written.
- Basic credentials: "Basic …" is sent as is, "user:pass" is base64-encoded, anything else is taken as
  already encoded (base64 has no ":"). Passthrough takes the client's credential from the header its
  client-side scheme names (Authorization for http schemes, without the "Bearer"/"Basic" word); with
  none, the configured credential, then the scheme's default; with no credential at all the call fails
  with a message rather than reaching the backend unauthenticated. No other client header is forwarded.
- Redirects are not followed (a credential in a custom header or the query must not reach another host);
  a 3xx is reported with its Location.
- Request templates see `.args`, `.config` and `.consumer` (`.consumer.name`, `.consumer.id`: the authenticated
  consumer, both empty while the server's Consumer Authentication is off).
- Response templates see the decoded JSON body as their root; a body that is not JSON is `{"_body": text}`.
  Error templates see the decoded JSON object (or `{}`) plus `_headers` (lower-case names, and ":status"
  as Higress has it), `_status` and `_body`; if one renders to blank text the plain account is used.
- An empty 2xx body answers "success" (as Higress does). structuredContent (from 2025-06-18) is the
  decoded JSON object; its JSON is the text block, or follows the template's text as a second block.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import http
import time
from typing import Any, Mapping

import aiohttp
from django.conf import settings

from .. import circuit, egress
from .. import protocol as p
from ..backends import get_http_session
from ..config import get_config_cache
from ..governance import backend_answered
from ..consumer_auth import OPEN_TEMPLATE, ConsumerIdentity
from ..jsonrpc import Message, RpcError, params_of, result_response
from ..lifecycle import CallContext, discover_result, initialize, lifecycle_answer
from ..readmodel import ServerConfig, ToolConfig
from . import Initialized
from . import response_mapper as respond
from . import template_runs
from .request_builder import CallError, build_request, get_plan, resolve_arguments

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0
_timeouts: dict[tuple[float, float, float], aiohttp.ClientTimeout] = {}


def _max_response_bytes() -> int:
    if settings.configured:
        return int(getattr(settings, "GATEWAY_MAX_BACKEND_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES))
    return DEFAULT_MAX_RESPONSE_BYTES


def _limits(total: float) -> tuple[float, float]:
    """(connect, first byte) for a call whose server allows `total` seconds: the gateway's settings, never longer."""
    connect = float(getattr(settings, "GATEWAY_BACKEND_CONNECT_TIMEOUT", 5.0))
    first_byte = float(getattr(settings, "GATEWAY_BACKEND_FIRST_BYTE_TIMEOUT", 0) or total)
    return min(connect, total), min(first_byte, total)


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    """Three limits on every backend call: the connection (per attempt), the wait for a first byte and between any
    two reads after it (sock_read), and the whole call (total, including a wait for a pooled connection)."""
    connect, first_byte = _limits(seconds)
    key = (seconds, connect, first_byte)
    timeout = _timeouts.get(key)
    if timeout is None:
        if len(_timeouts) > 64:
            _timeouts.clear()
        timeout = _timeouts[key] = aiohttp.ClientTimeout(total=seconds, sock_connect=connect, sock_read=first_byte)
    return timeout


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


class _TooLarge(Exception):
    pass


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > limit:
        raise _TooLarge
    if declared is not None and not response.headers.get("Content-Encoding"):
        return await response.read()  # size known and within the limit: one read
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)


async def call_tool(*, server: ServerConfig, tool: ToolConfig, arguments: dict | None,
                    request_headers: Mapping[str, str] | None = None,
                    protocol_version: str = "2025-11-25", consumer: ConsumerIdentity | None = None) -> dict[str, Any]:
    """Call one tool's backend and answer with an MCP CallToolResult.

    Backend, argument and template problems become results with isError true and a message a person
    can act on; only programming errors raise.
    """
    plan = get_plan(tool)
    if plan.invalid:
        return respond.error_result(plan.invalid)
    args, errors = resolve_arguments(plan, arguments or {})
    if errors:
        return respond.error_result("\n".join(errors))
    data = {"args": args, "config": server.config,
            "consumer": consumer.template if consumer is not None else OPEN_TEMPLATE}
    limit = _max_response_bytes()
    if plan.direct:
        return await template_runs.run(respond.direct, plan, data, protocol_version=protocol_version,
                                       max_output=limit)
    try:
        request = await template_runs.run(build_request, plan, server=server, args=args, data=data,
                                          request_headers=request_headers)
    except CallError as exc:
        return respond.error_result(exc.message)

    seconds = server.timeout if server.timeout and server.timeout > 0 else DEFAULT_TIMEOUT_SECONDS
    method = request.method
    refused = circuit.admit(server.circuit)
    if refused is not None:
        return respond.error_result(f"{refused} ({method} {request.public_url})")
    failed: bool | None = True  # no answer, or a 5xx: what the circuit of the backend service counts
    sent = time.perf_counter()
    try:
        async with get_http_session().request(
            method, request.url, headers=request.headers, data=request.body, allow_redirects=False,
            timeout=_timeout(seconds), skip_auto_headers=request.skip_auto_headers,
        ) as response:
            failed = response.status >= 500
            raw = await _read(response, limit)
            status = response.status
            backend_answered(status, time.perf_counter() - sent)
            content_type = response.content_type
            charset = response.charset
            if not 200 <= status < 300:
                reason = response.reason or _phrase(status)
                return await template_runs.run(respond.failure, plan, status=status, reason=reason,
                                               headers=response.headers, raw=raw, charset=charset, method=method,
                                               url=str(request.public_url), max_output=limit)
    except _TooLarge:
        backend_answered(None)
        return respond.error_result(f"Backend response is larger than the gateway's limit of {_size(limit)} "
                                    f"({method} {request.public_url})")
    except aiohttp.ConnectionTimeoutError:
        failed = True
        connect, _ = _limits(seconds)
        return respond.error_result(f"Backend did not accept a connection within {connect:g} s "
                                    f"({method} {request.public_url})")
    except aiohttp.SocketTimeoutError:
        failed = True
        _, first_byte = _limits(seconds)
        if first_byte < seconds:
            return respond.error_result(f"Backend sent nothing for {first_byte:g} s ({method} {request.public_url})")
        return respond.error_result(f"Backend did not answer within {seconds:g} s ({method} {request.public_url})")
    except asyncio.TimeoutError:
        backend_answered(None)
        failed = True
        return respond.error_result(f"Backend did not answer within {seconds:g} s ({method} {request.public_url})")
    except aiohttp.ClientError as exc:
        backend_answered(None)
        failed = True
        return respond.error_result(_connection_message(exc, method, str(request.public_url)))
    except asyncio.CancelledError:
        failed = None  # the client went away: says nothing about the backend
        raise
    finally:
        if failed is None:
            circuit.abandon(server.circuit)
        else:
            circuit.record(server.circuit, ok=not failed)
    return await template_runs.run(respond.success, plan, raw=raw, content_type=content_type, charset=charset,
                                   url=str(request.public_url), protocol_version=protocol_version,
                                   max_output=limit)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _connection_message(exc: aiohttp.ClientError, method: str, url: str) -> str:
    refused = egress.refusal_of(exc)
    if refused is not None:  # before the DNS case: a name whose addresses are all refused fails in resolution
        return f"{refused.describe()} ({method} {url})"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"Backend host {exc.host} could not be resolved ({method} {url})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"Backend {url} presented a TLS certificate the gateway does not trust: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS handshake with backend {url} failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if getattr(exc.os_error, "errno", None) == errno.ECONNREFUSED:
            return f"Backend {url} refused the connection"
        return f"Could not connect to backend {url}: {exc.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientOSError) and getattr(exc, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
        return f"Backend {url} reset the connection ({method})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"Backend {url} closed the connection without answering ({method})"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"Backend {url} sent a malformed response body ({method}): {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"Backend {url} sent a response the gateway cannot read ({method}): {exc.message}"
    return f"Backend call {method} {url} failed: {exc}"


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

    relays_all = False

    async def initialize(self, message: Message, ctx: CallContext) -> Initialized:
        return Initialized(*initialize(ctx.server, message))

    async def session_closed(self, session: Any, server: ServerConfig) -> None:
        return None

    async def handle(self, message: Message, ctx: CallContext) -> Message | None:
        method = message["method"]
        if method == "tools/call":
            return result_response(message["id"], await self.tools_call(params_of(message), ctx))
        if method == "tools/list":
            return result_response(message["id"], await self.tools_list(params_of(message), ctx))
        if method == "server/discover":
            return result_response(message["id"], discover_result(ctx.server))
        return result_response(message["id"], lifecycle_answer(method, ctx))

    async def tools_list(self, params: dict, ctx: CallContext) -> dict[str, Any]:
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
