"""HTTP+SSE (2024-11-05): a GET stream announces its message endpoint; POSTs there answer 202 and results go on the stream."""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs, urlencode

from django.conf import settings

from .. import protocol as p
from ..dispatch import CallContext, dispatch, is_stateless
from ..drain import drain
from ..executors import executor_for
from ..jsonrpc import Message, RpcError, dumps, kind, params_of
from ..readmodel import ServerConfig
from ..sessions import Session, session_create, session_end, session_for, session_get, session_update
from ..state.outage import DependencyUnavailable
from ..state import get_state
from .http import Request, read_payload, respond, respond_error, respond_rpc_error, sse_event, stream_subscription
from .keepalive import on_keepalive

log = logging.getLogger(__name__)

# Work started by a POST outlives its HTTP exchange; keep references so tasks are not collected mid-flight.
_background: set[asyncio.Task] = set()


async def open_stream(req: Request, server: ServerConfig, message_path: str) -> None:
    if req.method != "GET":
        await respond_error(req, 405, "Method Not Allowed: open the SSE stream with GET.",
                            headers=[(b"allow", b"GET, OPTIONS")])
        return
    consumer = req.consumer
    session = await session_create(server=server.key, version=p.V2024_11_05, transport="sse",
                                   consumer=consumer.id if consumer is not None else None)
    subscription = await get_state().subscribe(session.stream_channel())
    endpoint = f"{message_path}?sessionId={session.id}"
    auth = server.consumer_auth
    if consumer is not None and auth.source == "query":
        # Clients post to the announced URL as given: a credential read from the query has to travel in it.
        # (The edge took it out of the parsed query only; the raw query string still has it.)
        presented = parse_qs(req.scope.get("query_string", b"").decode("latin-1")).get(auth.name)
        if presented:
            endpoint += "&" + urlencode({auth.name: presented[0]})

    async def closed() -> None:
        # The stream is the session in this transport: when it goes, so does the session.
        # The stored session has what initialize recorded (maybe in another process) for the executor to let go.
        current = await session_get(session.id) or session
        await session_end(session.id)
        await executor_for(server).session_closed(current, server)

    await stream_subscription(
        req, subscription, keepalive=settings.MCP_SSE_KEEPALIVE_SECONDS,
        first=[sse_event(endpoint.encode(), event="endpoint")],
        frame=lambda data: sse_event(data, event="message"), on_close=closed,
        on_idle=on_keepalive(req, server, session.id),
    )


async def post_message(req: Request, server: ServerConfig) -> None:
    if req.method != "POST":
        await respond_error(req, 405, "Method Not Allowed: send messages with POST.",
                            headers=[(b"allow", b"POST, OPTIONS")])
        return
    sid = req.query_value("sessionId", "session_id")
    if not sid:
        await respond_error(req, 400, "Bad Request: the sessionId query parameter is required.")
        return
    session = await session_for(sid, server=server.key, consumer=req.consumer, transport="sse")
    if session is None:
        await respond_error(req, 404, "Session not found: the SSE stream ended; open a new one.")
        return
    try:
        payload = await read_payload(req)
        if isinstance(payload, list):
            raise RpcError(p.INVALID_REQUEST, "Invalid request: JSON-RPC batches are not supported on the SSE "
                                              "transport.")
        message_kind = kind(payload)
    except RpcError as exc:
        await respond_rpc_error(req, exc)
        return
    await respond(req, 202, b"Accepted", content_type=b"text/plain")
    if message_kind == "request" or executor_for(server).relays_all:
        task = asyncio.ensure_future(_answer(session, server, payload, dict(req.headers), req.consumer))
        _background.add(task)
        task.add_done_callback(_background.discard)


async def _answer(session: Session, server: ServerConfig, message: Message, headers: dict[str, str],
                  consumer) -> None:
    with drain.track():  # a shutdown waits for this answer before it closes the stream it goes to
        await _answer_on_stream(session, server, message, headers, consumer)


async def _answer_on_stream(session: Session, server: ServerConfig, message: Message, headers: dict[str, str],
                            consumer) -> None:
    channel = session.stream_channel()

    async def emit(out: Message) -> None:
        await get_state().publish(channel, dumps(out))

    try:
        if message.get("method") == "initialize" and "id" in message:
            ctx = CallContext(server=server, version=p.negotiate(params_of(message).get("protocolVersion")),
                              headers=headers, session_id=session.id, consumer=consumer, emit=emit)
            try:
                done = await executor_for(server).initialize(message, ctx)
            except RpcError as exc:
                response = exc.response(message["id"])
            else:
                await session_update(session, version=done.version, client=done.client, upstream=done.upstream)
                response = done.response
        else:
            # A client speaking 2026-07-28 over this transport tags each request; answer in that revision's shape.
            stateless = is_stateless(message)
            ctx = CallContext(server=server, version=p.V2026_07_28 if stateless else session.version,
                              headers=headers, session_id=session.id, stateless=stateless, consumer=consumer,
                              emit=emit, session=session, transport="sse",
                              client_name=session.client.get("name", ""))
            response = await dispatch(message, ctx)
        if response is not None:
            delivered = await get_state().publish(channel, dumps(response))
            if not delivered:
                log.info("SSE session %s… has no open stream; a response was dropped", session.id[:8])
    except DependencyUnavailable:
        pass  # logged once per outage; the stream it would go to has been ended, so its client reconnects
    except Exception:
        log.exception("Failed to answer an SSE message on %s", server.key)
