"""Streamable HTTP: sessions for 2025-03-26 … 2025-11-25, and the stateless 2026-07-28 exchange, at one endpoint."""
from __future__ import annotations

import asyncio
import secrets
from typing import Any

from django.conf import settings

from .. import protocol as p
from ..dispatch import CallContext, dispatch, is_stateless
from ..executors import executor_for
from ..governance import retry_after_of
from ..jsonrpc import Message, RpcError, dumps, error_response, kind, meta_of, params_of
from ..readmodel import ServerConfig
from ..sessions import Session, new_session_id, session_create, session_end, session_for
from ..state import get_state
from .http import (JSON, Request, read_payload, respond, respond_error, respond_json, respond_rpc_error, send_chunk,
                   sse_event, start_sse, stream_subscription)
from .keepalive import on_keepalive

ALLOW = [(b"allow", b"GET, POST, DELETE, OPTIONS")]


async def handle(req: Request, server: ServerConfig) -> None:
    version_header = req.headers.get("mcp-protocol-version")
    if req.method == "POST":
        await _post(req, server, version_header)
    elif req.method == "GET":
        await _get(req, server, version_header)
    elif req.method == "DELETE":
        await _delete(req, server, version_header)
    else:
        await respond_error(req, 405, f"Method {req.method} is not allowed here.", headers=ALLOW)


# ---------------------------------------------------------------- POST

async def _post(req: Request, server: ServerConfig, version_header: str | None) -> None:
    accept = req.headers.get("accept")
    if accept and not (req.accepts("application/json") or req.accepts("text/event-stream")):
        await respond_error(req, 406, "Not Acceptable: the client must accept application/json and text/event-stream.")
        return
    try:
        payload = await read_payload(req)
    except RpcError as exc:
        await respond_rpc_error(req, exc)
        return
    if version_header is not None and version_header not in p.SUPPORTED_VERSIONS:
        await _unsupported_version(req, version_header)
        return
    if version_header in p.STATELESS_VERSIONS or _looks_stateless(payload, req):
        await _post_stateless(req, server, payload, version_header)
    else:
        await _post_session(req, server, payload, version_header)


def _looks_stateless(payload: Any, req: Request) -> bool:
    """A request carrying a 2026-07-28 `_meta` version but no header is still a stateless request (and will fail its header check)."""
    return "mcp-session-id" not in req.headers and isinstance(payload, dict) and is_stateless(payload)


async def _unsupported_version(req: Request, requested: str) -> None:
    await respond_json(req, 400, error_response(
        None, p.UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported protocol version: {requested}. Supported: {', '.join(p.SUPPORTED_VERSIONS)}.",
        {"supported": list(p.SUPPORTED_VERSIONS), "requested": requested},
    ))


async def _post_session(req: Request, server: ServerConfig, payload: Any, version_header: str | None) -> None:
    batch = isinstance(payload, list)
    messages = payload if batch else [payload]
    if batch and not messages:
        await respond_error(req, 400, "Invalid request: an empty batch.")
        return
    if batch and len(messages) > settings.MCP_MAX_BATCH_LENGTH:
        await respond_error(req, 400, f"Invalid request: a batch of {len(messages)} messages; at most "
                                      f"{settings.MCP_MAX_BATCH_LENGTH} are accepted in one request.")
        return
    if any(isinstance(m, dict) and m.get("method") == "initialize" for m in messages):
        if batch:
            await respond_error(req, 400, "Invalid request: initialize must not be part of a batch.")
            return
        await _initialize(req, server, messages[0])
        return

    sid = req.headers.get("mcp-session-id")
    if not sid:
        await respond_error(req, 400, "Bad Request: the Mcp-Session-Id header is required; send initialize first.")
        return
    session = await session_for(sid, server=server.key, consumer=req.consumer)
    if session is None:
        await respond_error(req, 404, "Session not found: it ended or expired; initialize a new one.")
        return
    version = session.version
    # A Direct Proxy is as lenient as the backends it relays: another supported revision's header is not refused.
    if version_header is not None and version_header != version and version >= p.V2025_06_18 and \
            server.type != "direct_proxy":
        await respond_error(req, 400, f"Bad Request: MCP-Protocol-Version {version_header} does not match the "
                                      f"session's negotiated version {version}.")
        return
    if batch and not p.allows_batches(version):
        await respond_error(req, 400, f"Invalid request: JSON-RPC batches are not supported in protocol revision "
                                      f"{version} (only in {p.V2025_03_26}).")
        return

    reply = _Reply(req, session_id=session.id, version=version, channel=session.stream_channel())
    ctx = CallContext(server=server, version=version, headers=req.headers, session_id=session.id,
                      consumer=req.consumer, emit=reply.emit, session=session, transport="streamable",
                      client_name=session.client.get("name", ""))
    responses: list[Message | None] = []
    requests: list[Message] = []
    others: list[Message] = []
    for message in messages:
        try:
            if kind(message) == "request":
                requests.append(message)
            else:
                others.append(message)
        except RpcError as exc:
            if not batch:
                await respond_rpc_error(req, exc)
                return
            responses.append(exc.response())  # the message's id only when it is a valid one, else null
    if others and executor_for(server).relays_all:
        # A relay forwards notifications and responses (a client's answer to a backend's request) before the 202.
        await asyncio.gather(*(dispatch(m, ctx) for m in others))
    if not requests and not responses:
        await respond(req, 202)  # notifications and responses only
        return
    answered = await asyncio.gather(*(dispatch(m, ctx) for m in requests)) if requests else []
    out = [r for r in responses + list(answered) if r is not None]
    result: Any = out if batch else out[0]
    await reply.finish(result, _status_of(result))


class _Reply:
    """The answer to one POST: plain JSON, or an event stream once something has to go ahead of the response."""

    __slots__ = ("req", "session_id", "version", "channel", "started")

    def __init__(self, req: Request, *, session_id: str | None, version: str, channel: str | None = None):
        self.req = req
        self.session_id = session_id
        self.version = version
        self.channel = channel
        self.started = False

    async def emit(self, message: Message) -> None:
        if not self.req.accepts("text/event-stream"):
            # The client takes only JSON here: what precedes the response goes on its GET stream instead.
            if self.channel is not None:
                await get_state().publish(self.channel, dumps(message))
            return
        if not self.started:
            self.started = True
            headers = [(b"mcp-session-id", self.session_id.encode())] if self.session_id else []
            await start_sse(self.req, headers)
            if self.version >= p.V2025_11_25:
                await send_chunk(self.req, sse_event(b"", event_id=secrets.token_hex(8)))  # priming event
        await send_chunk(self.req, sse_event(dumps(message), event="message"))

    async def finish(self, result: Any, status: int | tuple[int, int] = 200) -> None:
        if not self.started:
            await _answer(self.req, result, session_id=self.session_id, version=self.version, status=status)
            return
        await send_chunk(self.req, sse_event(dumps(result), event="message"))
        await send_chunk(self.req, b"", more=False)


async def _initialize(req: Request, server: ServerConfig, message: Any) -> None:
    try:
        if kind(message) != "request":
            raise RpcError(p.INVALID_REQUEST, "Invalid request: initialize must be a request with an id.")
    except RpcError as exc:
        await respond_rpc_error(req, exc)
        return
    sid = new_session_id()
    ctx = CallContext(server=server, version=p.negotiate(params_of(message).get("protocolVersion")),
                      headers=req.headers, session_id=sid, consumer=req.consumer)
    try:
        done = await executor_for(server).initialize(message, ctx)
    except RpcError as exc:
        await respond_json(req, 200, exc.response(message["id"]))
        return
    session = await session_create(server=server.key, version=done.version, transport="streamable",
                                   client=done.client, consumer=req.consumer.id if req.consumer is not None else None,
                                   sid=sid, upstream=done.upstream)
    await _answer(req, done.response, session_id=session.id, version=done.version)


def _status_of(result: Any, status: int = 200) -> int | tuple[int, int]:
    """429 and its Retry-After when the one answer is a rate-limit error; a batch keeps 200."""
    retry_after = retry_after_of(result)
    return (429, retry_after) if retry_after is not None else status


async def _answer(req: Request, result: Any, *, session_id: str | None, version: str,
                  status: int | tuple[int, int] = 200) -> None:
    headers = [(b"mcp-session-id", session_id.encode())] if session_id else []
    if isinstance(status, tuple):
        status, retry_after = status
        headers.append((b"retry-after", str(retry_after).encode()))
    # JSON unless the client accepts only an event stream (a refusal is never a stream).
    if req.accepts("application/json") or "accept" not in req.headers or status == 429:
        await respond(req, status, dumps(result), content_type=JSON, headers=headers)
        return
    await start_sse(req, headers)
    if version >= p.V2025_11_25:
        await send_chunk(req, sse_event(b"", event_id=secrets.token_hex(8)))  # priming event
    await send_chunk(req, sse_event(dumps(result), event="message"))
    await send_chunk(req, b"", more=False)


# ---------------------------------------------------------------- stateless (2026-07-28)

async def _post_stateless(req: Request, server: ServerConfig, payload: Any, version_header: str | None) -> None:
    if isinstance(payload, list):
        await respond_error(req, 400, "Invalid request: JSON-RPC batches are not supported in protocol revision "
                                      f"{p.V2026_07_28}.")
        return
    try:
        message_kind = kind(payload)
    except RpcError as exc:
        await respond_rpc_error(req, exc)
        return
    msg_id = payload.get("id")
    if message_kind != "request":
        await respond(req, 202)
        return
    try:
        _check_stateless_headers(req, payload, version_header)
    except RpcError as exc:
        await respond_rpc_error(req, exc, msg_id)
        return
    reply = _Reply(req, session_id=None, version=p.V2026_07_28)
    ctx = CallContext(server=server, version=p.V2026_07_28, headers=req.headers, stateless=True,
                      consumer=req.consumer, emit=reply.emit, transport="stateless")
    response = await dispatch(payload, ctx)
    status = 200
    error = response.get("error") if response else None
    if error and error.get("code") == p.METHOD_NOT_FOUND:
        status = 404
    await reply.finish(response, _status_of(response, status))


def _check_stateless_headers(req: Request, message: Message, version_header: str | None) -> None:
    params = params_of(message)
    body_version = meta_of(message).get(p.META_PROTOCOL_VERSION)
    if version_header is None:
        raise RpcError(p.HEADER_MISMATCH, "Header mismatch: the MCP-Protocol-Version header is required.")
    if body_version is None:
        raise RpcError(p.HEADER_MISMATCH, f'Header mismatch: params._meta["{p.META_PROTOCOL_VERSION}"] is required.')
    if body_version != version_header:
        if body_version not in p.SUPPORTED_VERSIONS:
            raise RpcError(p.UNSUPPORTED_PROTOCOL_VERSION,
                           f"Unsupported protocol version: {body_version}.",
                           {"supported": list(p.SUPPORTED_VERSIONS), "requested": body_version})
        raise RpcError(p.HEADER_MISMATCH, f"Header mismatch: MCP-Protocol-Version is {version_header} but "
                                          f"_meta names {body_version}.")
    method = message["method"]
    header_method = req.headers.get("mcp-method")
    if header_method is None:
        raise RpcError(p.HEADER_MISMATCH, "Header mismatch: the Mcp-Method header is required.")
    if header_method != method:
        raise RpcError(p.HEADER_MISMATCH, f"Header mismatch: Mcp-Method is {header_method} but the body's method "
                                          f"is {method}.")
    named = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}.get(method)
    if named:
        header_name = req.headers.get("mcp-name")
        if header_name is None:
            raise RpcError(p.HEADER_MISMATCH, "Header mismatch: the Mcp-Name header is required for " + method + ".")
        if header_name != params.get(named):
            raise RpcError(p.HEADER_MISMATCH, f"Header mismatch: Mcp-Name is {header_name} but params.{named} is "
                                              f"{params.get(named)}.")


# ---------------------------------------------------------------- GET stream and DELETE

async def _session_from_header(req: Request, server: ServerConfig) -> Session | None:
    sid = req.headers.get("mcp-session-id")
    if not sid:
        await respond_error(req, 400, "Bad Request: the Mcp-Session-Id header is required.")
        return None
    session = await session_for(sid, server=server.key, consumer=req.consumer)
    if session is None:
        await respond_error(req, 404, "Session not found: it ended or expired; initialize a new one.")
        return None
    return session


async def _get(req: Request, server: ServerConfig, version_header: str | None) -> None:
    if version_header in p.STATELESS_VERSIONS:
        await respond_error(req, 405, "Method Not Allowed: 2026-07-28 has no GET stream.", headers=ALLOW)
        return
    if not req.accepts("text/event-stream"):
        await respond_error(req, 405, "Method Not Allowed: GET opens an event stream; accept text/event-stream.",
                            headers=ALLOW)
        return
    session = await _session_from_header(req, server)
    if session is None:
        return
    subscription = await get_state().subscribe(session.stream_channel())
    first = []
    if session.version >= p.V2025_11_25:
        first.append(b"retry: 3000\n" + sse_event(b"", event_id=secrets.token_hex(8)))
    await stream_subscription(req, subscription, keepalive=settings.MCP_SSE_KEEPALIVE_SECONDS, first=first,
                              frame=lambda data: sse_event(data, event="message"),
                              on_idle=on_keepalive(req, server, session.id))


async def _delete(req: Request, server: ServerConfig, version_header: str | None) -> None:
    if version_header in p.STATELESS_VERSIONS:
        await respond_error(req, 405, "Method Not Allowed: 2026-07-28 has no sessions to end.", headers=ALLOW)
        return
    session = await _session_from_header(req, server)
    if session is None:
        return
    await session_end(session.id)
    await executor_for(server).session_closed(session, server)
    await respond(req, 204)
