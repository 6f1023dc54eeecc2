"""Direct Proxy executor: every message of a client session relayed to the server's backend MCP service.

Relaying rules (the gateway's decisions):
- One backend session per client session, opened when the client initializes, with the client's capabilities and
  clientInfo; its record (backend transport, Mcp-Session-Id, negotiated revision) lives in the client's session in
  the shared state, so any gateway process can relay to a Streamable HTTP backend. An SSE backend's stream is held
  by the process that opened it (the record names it): another process hands that session's messages to it over
  the shared state's pub/sub, and opens a backend session of its own only when no process holds the stream any more.
- A backend that forgets the session (404) gets a new one, opened with what the client sent at initialize, and the
  message is sent again once; if no new one opens, the client's session ends too (404 next, the client initializes
  again). A backend that is merely unreachable leaves the session as it is.
- The client speaks its revision, the backend its own: the gateway negotiates each side separately and relays the
  messages; a handshake-free (2026-07-28) client is relayed on a backend session shared by the requests of the same
  server and consumer in this process, with request ids and progress tokens rewritten so requests never meet.
- Requests the backend sends (sampling, elicitation, roots) reach the client with ids of the form `mcpgw-<id>`;
  the client's answer goes back to the backend with the original id.
- Tools outside the server's allow-list, or the consumer's authorization, are missing from tools/list and unknown
  to tools/call, whatever the backend lists after a list_changed.
- The backend gets the server's backend credential, never the consumer's: no header of the client is forwarded.
- A backend that fails, times out or resets becomes an isError result for tools/call and a JSON-RPC error otherwise.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
import uuid
from typing import Any

from .. import circuit
from .. import protocol as p
from ..governance import backend_answered
from ..jsonrpc import Message, RpcError, dumps, error_response, result_response
from ..lifecycle import CallContext, client_of, discover_result, lifecycle_answer, server_info
from ..readmodel import ServerConfig
from ..sessions import session_end, session_update
from ..state import get_state
from . import Initialized
from . import upstream as up

log = logging.getLogger(__name__)

# Backend requests as the client sees them; a client's response with any other id answers nothing here.
ID_PREFIX = "mcpgw-"
_STATELESS_META = (p.META_PROTOCOL_VERSION, p.META_CLIENT_CAPABILITIES, p.META_CLIENT_INFO)
_counter = itertools.count(1)
_process_tokens: dict[int, str] = {}


def process_token() -> str:
    """This process among the gateway's: the owner of the links it holds, named in the sessions they serve. Per
    process id, so that a process forked after import never passes for its parent."""
    pid = os.getpid()
    token = _process_tokens.get(pid)
    if token is None:
        token = _process_tokens[pid] = f"{pid}-{uuid.uuid4().hex[:12]}"
    return token


def _link_channel(sid: str) -> str:
    return f"mcpgw:link:{sid}"


# HTTP statuses with which a backend refuses initialize as a handshake-free (2026-07-28) server would.
_REFUSED_INITIALIZE = (400, 404, 405)
# A client's capabilities are sent again when a backend session is reopened; a sane client's are small.
MAX_CAPABILITIES_BYTES = 16 * 1024


def backend_transport(server: ServerConfig) -> str:
    if server.backend_transport in (up.SSE, up.STREAMABLE):
        return server.backend_transport
    return up.SSE if up.backend_url(server).rstrip("/").endswith("/sse") else up.STREAMABLE


def modern_meta(record: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The _meta a handshake-free backend needs on every request: its revision and the client's capabilities and info
    (the request's own when a handshake-free client sent them, else those recorded when the session opened)."""
    meta = meta or {}
    capabilities = meta.get(p.META_CLIENT_CAPABILITIES)
    info = meta.get(p.META_CLIENT_INFO)
    return {p.META_PROTOCOL_VERSION: up.MODERN,
            p.META_CLIENT_CAPABILITIES: capabilities if isinstance(capabilities, dict) else record.get("caps") or {},
            p.META_CLIENT_INFO: info if isinstance(info, dict) else record.get("info") or {}}


def for_backend(message: Message, record: dict[str, Any]) -> Message:
    """A request as the backend's revision wants it: unchanged for a session, with the revision's _meta otherwise."""
    if record.get("ver") != up.MODERN:
        return message
    params = dict(message.get("params") or {})
    params["_meta"] = {**(params.get("_meta") or {}), **modern_meta(record)}
    return {**message, "params": params}


def to_client(message: Message) -> Message:
    """A backend message as the client gets it: a backend request's id carries the gateway's prefix."""
    if "method" in message and "id" in message:
        return {**message, "id": ID_PREFIX + json.dumps(message["id"], separators=(",", ":"))}
    return message


def from_client_id(value: Any) -> tuple[bool, Any]:
    if not isinstance(value, str) or not value.startswith(ID_PREFIX):
        return False, None
    try:
        original = json.loads(value[len(ID_PREFIX):])
    except ValueError:
        return False, None
    return isinstance(original, (str, int)) and not isinstance(original, bool), original


def tool_allowed(ctx: CallContext, name: Any) -> bool:
    if not isinstance(name, str):
        return False
    allowed = ctx.server.allow_tools
    if allowed is not None and name not in allowed:
        return False
    return ctx.consumer is None or ctx.consumer.may_use(name)


_LIST_CHANGED = {"notifications/tools/list_changed", "notifications/resources/list_changed",
                 "notifications/prompts/list_changed"}
_forgetting: set[asyncio.Future] = set()


def catalog_watch(server: ServerConfig, message: Message) -> None:
    """A backend announcing a changed list makes the console fetch its catalogue again on the next look."""
    if message.get("method") not in _LIST_CHANGED:
        return
    from django.core.cache import cache

    # The console's cache is Django's (Redis in production): dropped off the event loop, never awaited by a call.
    future = asyncio.get_running_loop().run_in_executor(None, cache.delete, catalog_cache_key(server.id))
    _forgetting.add(future)
    future.add_done_callback(_forgetting.discard)


def catalog_cache_key(server_id: int) -> str:
    return f"proxy-catalog:{server_id}"


@contextlib.asynccontextmanager
async def _outcome_of(server: ServerConfig):
    """What the circuit of the backend service counts: no answer from the backend (UpstreamError) fails, any
    answer (a JSON-RPC error too) succeeds, a cancelled call or one refused before reaching the backend says
    nothing."""
    try:
        yield
    except up.UpstreamError:
        circuit.record(server.circuit, ok=False)
        raise
    except BaseException:
        circuit.abandon(server.circuit)
        raise
    circuit.record(server.circuit, ok=True)


class _Shared:
    """A backend session this process opened for handshake-free clients of one server and consumer."""

    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None
        self.result: dict[str, Any] = {}
        self.link: up.MessageLink | None = None
        self.lock = asyncio.Lock()
        self.emits: dict[Any, Any] = {}  # rewritten progress token -> (the request's emit, the client's token)


class DirectProxyExecutor:
    relays_all = True

    def __init__(self) -> None:
        # Process-local parts of backend sessions, by client session id: SSE links and Streamable listening streams.
        self._links: dict[str, up.MessageLink] = {}
        self._listeners: dict[str, asyncio.Task] = {}
        self._shared: dict[tuple, _Shared] = {}
        self._watchers: set[asyncio.Task] = set()

    # ------------------------------------------------------------ opening and closing backend sessions

    async def initialize(self, message: Message, ctx: CallContext) -> Initialized:
        from ..jsonrpc import params_of

        params = params_of(message)
        version = p.negotiate(params.get("protocolVersion"))
        capabilities = params.get("capabilities") if isinstance(params.get("capabilities"), dict) else {}
        if len(dumps(capabilities)) > MAX_CAPABILITIES_BYTES:
            raise RpcError(p.INVALID_PARAMS, f"Invalid params: capabilities larger than {MAX_CAPABILITIES_BYTES} "
                                             "bytes.")
        client = client_of(message)
        refused = circuit.admit(ctx.server.circuit)
        if refused is not None:
            raise RpcError(p.INTERNAL_ERROR, refused)
        try:
            async with _outcome_of(ctx.server):
                record, result = await self._open(ctx.server, capabilities, client, ctx.session_id)
        except up.UpstreamError as exc:
            raise RpcError(p.INTERNAL_ERROR, exc.message) from None
        answer: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": result.get("capabilities") if isinstance(result.get("capabilities"), dict) else {},
            "serverInfo": result.get("serverInfo") if isinstance(result.get("serverInfo"), dict)
            else server_info(ctx.server),
        }
        if isinstance(result.get("instructions"), str):
            answer["instructions"] = result["instructions"]
        return Initialized(result_response(message["id"], answer), version, client, record)

    async def _open(self, server: ServerConfig, capabilities: dict, client: dict, sid: str | None, *,
                    prefer_modern: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open a backend session; `sid` is the client session it serves (None: one shared by stateless requests).

        A Streamable HTTP backend that speaks the handshake-free revision gets no session at all: with
        `prefer_modern` (handshake-free clients, whose requests stand alone anyway) whenever it offers that revision,
        otherwise only when it refuses initialize. Its record says so ("ver" 2026-07-28) and every request then
        carries the revision's _meta; the backend answers each on its cheapest path, with nothing to keep."""
        record: dict[str, Any] = {"t": self.transport_of(server), "caps": capabilities,
                                  "info": client or {"name": p.SERVER_NAME, "version": p.SERVER_VERSION},
                                  "ver": p.LATEST_HANDSHAKE}
        target = up.target_of(server) if record["t"] == up.STREAMABLE else None
        if target is not None and (prefer_modern or target.handshake_free):
            found = await self._discover(server, record)
            if found is not None:
                return found
            target.handshake_free = False
        request = {"jsonrpc": "2.0", "id": ID_PREFIX + "initialize", "method": "initialize",
                   "params": {"protocolVersion": p.LATEST_HANDSHAKE, "capabilities": capabilities,
                              "clientInfo": record["info"]}}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        link = await self._open_link(server, sid, record)
        if link is not None:
            try:
                response = await link.send(request)
            except BaseException:
                await link.close()
                raise
        else:
            try:
                response, headers = await up.post(server, record, request)
            except up.UpstreamError as exc:
                found = await self._discover(server, record) if exc.status in _REFUSED_INITIALIZE else None
                if found is None:
                    raise
                target.handshake_free = True
                return found
            if headers.get("mcp-session-id"):
                record["sid"] = headers["mcp-session-id"]
        result = response.get("result") if isinstance(response, dict) else None
        if not isinstance(result, dict) and link is None and not prefer_modern:
            found = await self._discover(server, record)  # initialize refused: perhaps a handshake-free backend
            if found is not None:
                target.handshake_free = True
                return found
        if not isinstance(result, dict):
            if link is not None:
                await link.close()
            error = (response or {}).get("error") if isinstance(response, dict) else None
            reason = error.get("message") if isinstance(error, dict) else "no result"
            raise up.UpstreamError(f"The {self.backend_name(server)} refused initialize: {reason}")
        if result.get("protocolVersion") in p.HANDSHAKE_VERSIONS:
            record["ver"] = result["protocolVersion"]
        if link is not None:
            await link.send(initialized)
            if sid is not None:
                old = self._links.pop(sid, None)
                self._links[sid] = link
                if old is not None:
                    await old.close()
                record["owner"] = process_token()  # other processes hand this session's messages to this one
                await self._serve_others(server, sid, link)
                self._watch(sid, link)
        else:
            await up.post(server, record, initialized)
            if sid is not None:
                self._listen(server, sid, record)
        if link is not None and sid is None:
            record["link"] = True  # the shared session keeps its link on the _Shared entry
        return record, (result if link is None else {**result, "_link": link})

    async def _discover(self, server: ServerConfig, record: dict[str, Any]) -> tuple[dict, dict] | None:
        """server/discover in the handshake-free revision: (its record, the result) when the backend speaks it."""
        modern = {k: v for k, v in record.items() if k != "sid"} | {"ver": up.MODERN}
        request = {"jsonrpc": "2.0", "id": ID_PREFIX + "discover", "method": "server/discover",
                   "params": {"_meta": modern_meta(modern)}}
        try:
            response, _ = await up.post(server, modern, request)
        except up.UpstreamError as exc:
            if exc.status is None:
                raise  # unreachable, or not MCP at all: initialize would not fare better
            return None
        result = response.get("result") if isinstance(response, dict) else None
        if not isinstance(result, dict) or up.MODERN not in (result.get("supportedVersions") or ()):
            return None
        return modern, result

    def transport_of(self, server: ServerConfig) -> str:
        return backend_transport(server)

    def backend_name(self, server: ServerConfig) -> str:
        return f"backend MCP server {up.backend_url(server)}"

    async def _open_link(self, server: ServerConfig, sid: str | None, record: dict[str, Any]) -> up.MessageLink | None:
        """The link that carries the backend session both ways; None for Streamable HTTP (one POST per message)."""
        if record["t"] != up.SSE:
            return None
        link = up.SseLink(server, on_message=self._publisher(sid, server))
        await link.open()
        return link

    def _link_missing(self, record: dict[str, Any]) -> up.UpstreamError:
        return up.SessionLost("The backend MCP server's stream is not open in this process")

    def _listen(self, server: ServerConfig, sid: str, record: dict[str, Any]) -> None:
        old = self._listeners.pop(sid, None)
        if old is not None:
            old.cancel()

        async def alive() -> bool:
            return await up.session_alive(sid)

        task = asyncio.ensure_future(up.listen(server, dict(record), on_message=self._publisher(sid, server), alive=alive))
        self._listeners[sid] = task
        task.add_done_callback(lambda t: self._listeners.get(sid) is t and self._listeners.pop(sid, None))

    def _watch(self, sid: str, link: up.MessageLink) -> None:
        """An SSE link outlives no client session: one that expired without a goodbye lets its link go too."""

        async def watch() -> None:
            while link.open_ and self._links.get(sid) is link:
                await asyncio.sleep(up.LISTEN_CHECK_SECONDS)
                if not await up.session_alive(sid):
                    if self._links.get(sid) is link:
                        del self._links[sid]
                    await link.close()
                    return

        task = asyncio.ensure_future(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _serve_others(self, server: ServerConfig, sid: str, link: up.MessageLink) -> None:
        """Relay what other gateway processes receive for this session to the SSE link held here, and their
        answers (with whatever the backend sends ahead of them) back on the reply channel each request names."""
        subscription = await get_state().subscribe(_link_channel(sid))

        async def serve() -> None:
            try:
                while link.open_ and self._links.get(sid) is link:
                    raw = await subscription.get(timeout=up.LISTEN_CHECK_SECONDS)
                    if raw is not None:
                        task = asyncio.ensure_future(self._serve_one(server, link, json.loads(raw)))
                        self._watchers.add(task)
                        task.add_done_callback(self._watchers.discard)
            finally:
                await subscription.close()

        task = asyncio.ensure_future(serve())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _serve_one(self, server: ServerConfig, link: up.MessageLink, forwarded: dict) -> None:
        message, reply = forwarded.get("m"), forwarded.get("r")
        state = get_state()

        async def emit(received: Message) -> None:
            catalog_watch(server, received)
            await state.publish(reply, dumps({"emit": received}))

        try:
            if not reply:
                await link.send(message)
                return
            response = await link.send(message, emit=emit)
            await state.publish(reply, dumps({"response": response}))
        except up.UpstreamError as exc:
            if reply:
                kind = "lost" if isinstance(exc, up.SessionLost) else "ended" if isinstance(exc, up.SessionEnded) else ""
                await state.publish(reply, dumps({"error": exc.message, "kind": kind}))
        except RpcError as exc:
            if reply:
                await state.publish(reply, dumps({"error": str(exc)}))
        except Exception as exc:  # the asking process must hear of it now, not at its timeout
            log.exception("Relaying a forwarded message on %s failed", server.key)
            if reply:
                await state.publish(reply, dumps({"error": f"The gateway could not relay the message: {exc}"}))

    async def _forward(self, server: ServerConfig, sid: str, message: Message, on_message) -> Message | None:
        """Hand a message of this session to the process holding its SSE link; SessionLost when none does."""
        state = get_state()
        wants_answer = "id" in message and "method" in message
        reply = f"mcpgw:link-reply:{uuid.uuid4().hex}" if wants_answer else None
        subscription = await state.subscribe(reply) if reply else None
        try:
            if await state.publish(_link_channel(sid), dumps({"m": message, "r": reply})) == 0:
                raise up.SessionLost("The gateway process holding the backend MCP server's stream is gone")
            if subscription is None:
                return None
            async with asyncio.timeout(up.timeout_of(server) + 1):
                while True:
                    raw = await subscription.get()
                    if raw is None:
                        continue
                    answer = json.loads(raw)
                    if "emit" in answer:
                        await on_message(answer["emit"])
                    elif "error" in answer:
                        error = {"lost": up.SessionLost, "ended": up.SessionEnded}.get(answer.get("kind"),
                                                                                     up.UpstreamError)
                        raise error(answer["error"])
                    else:
                        return answer.get("response")
        except TimeoutError:
            raise up.UpstreamError(f"The backend MCP server {up.backend_url(server)} did not answer in time") from None
        finally:
            if subscription is not None:
                await subscription.close()

    def _publisher(self, sid: str | None, server: ServerConfig | None = None):
        channel = f"mcpgw:stream:{sid}" if sid else None

        async def publish(message: Message) -> None:
            if server is not None:
                catalog_watch(server, message)
            if channel is not None:
                await get_state().publish(channel, dumps(to_client(message)))

        return publish

    async def _let_go(self, sid: str) -> None:
        listener = self._listeners.pop(sid, None)
        if listener is not None:
            listener.cancel()
        link = self._links.pop(sid, None)
        if link is not None:
            await link.close()

    async def session_closed(self, session: Any, server: ServerConfig) -> None:
        await self._let_go(session.id)
        record = getattr(session, "upstream", None)
        if record and record.get("t") == up.STREAMABLE:
            await up.delete(server, record)

    # ------------------------------------------------------------ messages

    async def handle(self, message: Message, ctx: CallContext) -> Message | None:
        method = message.get("method")
        if method is None:
            await self._client_response(message, ctx)
            return None
        if "id" not in message:
            if method != "notifications/initialized" and not ctx.stateless:
                with contextlib.suppress(up.UpstreamError, RpcError):
                    await self._session_send(message, ctx)
            return None
        msg_id = message["id"]
        if method == "ping" and not ctx.stateless:
            return result_response(msg_id, {})
        if method == "initialize" and ctx.stateless:
            return result_response(msg_id, lifecycle_answer(method, ctx))
        if method == "tools/call":
            name = (message.get("params") or {}).get("name")
            if not tool_allowed(ctx, name):
                raise RpcError(p.INVALID_PARAMS, f"Unknown tool: {name}")
        sent = time.perf_counter()
        refused = circuit.admit(ctx.server.circuit)
        try:
            if refused is not None:
                raise up.UpstreamError(refused)
            async with _outcome_of(ctx.server):
                if ctx.stateless:
                    response = await self._stateless(message, ctx)
                else:
                    response = await self._session_send(message, ctx)
        except up.UpstreamError as exc:
            backend_answered(exc.status, time.perf_counter() - sent if exc.status is not None else None)
            if method == "tools/call" and not isinstance(exc, up.SessionEnded):
                return result_response(msg_id, {"content": [{"type": "text", "text": exc.message}], "isError": True})
            return error_response(msg_id, p.INTERNAL_ERROR, exc.message)
        if response is None:
            backend_answered(None)
            return error_response(msg_id, p.INTERNAL_ERROR, "The backend MCP server sent no response.")
        # A JSON-RPC response in the body or on the stream: HTTP 200 as far as the client is concerned.
        backend_answered(200, time.perf_counter() - sent)
        response["id"] = msg_id  # the backend's answer was parsed for this call alone: no copy needed
        if method == "tools/list" and isinstance(response.get("result"), dict):
            result = response["result"]
            tools = result.get("tools")
            if isinstance(tools, list):
                response["result"] = {**result, "tools": [t for t in tools
                                                          if isinstance(t, dict) and tool_allowed(ctx, t.get("name"))]}
        return response

    async def _client_response(self, message: Message, ctx: CallContext) -> None:
        """The client answers a backend request (sampling, elicitation, roots): back to the backend, original id."""
        ours, original = from_client_id(message.get("id"))
        if not ours or ctx.stateless:
            return
        with contextlib.suppress(up.UpstreamError, RpcError):
            await self._session_send({**message, "id": original}, ctx, recover=False)

    async def _session_send(self, message: Message, ctx: CallContext, *, recover: bool = True) -> Message | None:
        session = ctx.session
        record = session.upstream if session is not None else None
        if not record:
            raise RpcError(p.INVALID_REQUEST, "Invalid request: the session has not initialized its backend; send "
                                              "initialize first.")
        emit = ctx.emit or self._publisher(ctx.session_id)

        async def on_message(received: Message) -> None:
            catalog_watch(ctx.server, received)
            await emit(to_client(received))

        try:
            return await self._send(ctx.server, session.id, record, message, on_message)
        except up.SessionLost:
            if not recover or "id" not in message:
                raise
        return await self._recover(message, ctx, record, on_message)

    async def _recover(self, message: Message, ctx: CallContext, record: dict, on_message) -> Message | None:
        session = ctx.session
        # The backend forgot the session (restarted, expired), or its SSE stream is held by no process here.
        try:
            record, _ = await self._open(ctx.server, record.get("caps") or {}, record.get("info") or {}, session.id)
        except up.UpstreamError as exc:
            # No new backend session either: the client's session ends too, so its next request gets 404 and the
            # client initializes again, as it would in front of the backend itself.
            await session_end(session.id)
            await self._let_go(session.id)
            raise up.UpstreamError(f"{exc.message}. The backend lost the session and no new one could be opened; "
                                   "the session has ended: initialize again.") from None
        ctx.session = await session_update(session, upstream=record)
        return await self._send(ctx.server, session.id, record, message, on_message)

    async def _send(self, server: ServerConfig, sid: str, record: dict, message: Message, on_message) -> Message | None:
        if record.get("t") != up.STREAMABLE:
            link = self._links.get(sid)
            if link is not None and link.open_:
                return await link.send(message, emit=on_message)
            if record.get("owner") and record["owner"] != process_token():
                return await self._forward(server, sid, message, on_message)
            raise self._link_missing(record)
        if record.get("ver") == up.MODERN:
            if "method" not in message or "id" not in message:
                return None  # a handshake-free backend takes no notifications and sends no requests to answer
            message = for_backend(message, record)
        response, _ = await up.post(server, record, message, on_message=on_message)
        return response

    # ------------------------------------------------------------ handshake-free clients (2026-07-28)

    def _shared_key(self, ctx: CallContext) -> tuple:
        """Which shared backend session serves a request: one per server (at this version) and consumer."""
        return ctx.server.id, ctx.server.version, ctx.consumer.id if ctx.consumer is not None else None

    async def _shared_for(self, ctx: CallContext) -> _Shared:
        server = ctx.server
        key = self._shared_key(ctx)
        shared = self._shared.get(key)
        if shared is not None and shared.record is not None and (shared.link is None or shared.link.open_):
            return shared  # the common case: the backend session is open, no lock to take
        if shared is None:
            # Entries of configurations that moved on are dropped as new ones arrive.
            for old in [k for k in self._shared if k[0] == server.id and k[1] != server.version]:
                stale = self._shared.pop(old)
                if stale.link is not None:
                    await stale.link.close()
            shared = self._shared[key] = _Shared()
        async with shared.lock:
            if shared.record is None or (shared.link is not None and not shared.link.open_):
                record, result = await self._open(server, {}, {}, None, prefer_modern=True)
                shared.link = result.pop("_link", None)
                shared.record, shared.result = record, result
        return shared

    async def _stateless(self, message: Message, ctx: CallContext) -> Message | None:
        shared = await self._shared_for(ctx)
        if message["method"] == "server/discover":
            result = shared.result
            return result_response(message["id"], discover_result(
                ctx.server, capabilities=result.get("capabilities") or {},
                info=result.get("serverInfo") or server_info(ctx.server),
                instructions=result.get("instructions") if isinstance(result.get("instructions"), str) else ""))
        upstream_id = f"{ID_PREFIX}s{next(_counter)}"
        params = dict(message.get("params") or {})
        client_meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        meta = {k: v for k, v in client_meta.items() if k not in _STATELESS_META}
        token = meta.get("progressToken")
        if token is not None:
            meta["progressToken"] = upstream_id
        if shared.record.get("ver") == up.MODERN:
            meta.update(modern_meta(shared.record, client_meta))  # the client's own capabilities, as it sent them
        if meta:
            params["_meta"] = meta
        else:
            params.pop("_meta", None)
        outgoing = {"jsonrpc": "2.0", "id": upstream_id, "method": message["method"], "params": params}
        emit = ctx.emit

        async def on_message(received: Message) -> None:
            if emit is None or "id" in received:
                return  # a handshake-free client cannot answer a backend's request
            if received.get("method") == "notifications/progress":
                params_in = received.get("params") or {}
                if params_in.get("progressToken") != upstream_id:
                    return
                received = {**received, "params": {**params_in, "progressToken": token}}
            await emit(received)

        async def send(record: dict) -> Message | None:
            if shared.link is not None:
                return await shared.link.send(outgoing, emit=on_message)
            response, _ = await up.post(ctx.server, record, outgoing, on_message=on_message)
            return response

        try:
            return await send(shared.record)
        except up.SessionLost:
            async with shared.lock:
                shared.record = None
            shared = await self._shared_for(ctx)
            return await send(shared.record)


# ---------------------------------------------------------------- what the console lists

# The console lists at most this many of each kind; a backend listing more is cut short, and says so.
CATALOG_LIMIT = 500
_CATALOG_LISTS = (("tools/list", "tools"), ("resources/list", "resources"),
                  ("resources/templates/list", "resourceTemplates"), ("prompts/list", "prompts"))


async def fetch_catalog(server: ServerConfig, executor: DirectProxyExecutor | None = None) -> dict[str, Any]:
    """The backend's tools, resources, resource templates and prompts, fetched on a backend session of its own.

    Answers {"info", "capabilities", "tools", "resources", "resourceTemplates", "prompts", "truncated"}; raises
    upstream.UpstreamError when the backend cannot be reached or refuses initialize.
    """
    executor = executor or DirectProxyExecutor()
    record, result = await executor._open(server, {}, {}, None)
    link = result.pop("_link", None)
    capabilities = result.get("capabilities") if isinstance(result.get("capabilities"), dict) else {}
    catalog: dict[str, Any] = {"info": result.get("serverInfo") or {}, "capabilities": capabilities,
                               "truncated": False}
    try:
        for method, key in _CATALOG_LISTS:
            catalog[key] = []
            if key.startswith("resource") and "resources" not in capabilities or \
                    key == "tools" and "tools" not in capabilities or key == "prompts" and "prompts" not in capabilities:
                continue
            cursor = None
            for page in itertools.count():
                params = {"cursor": cursor} if cursor else {}
                request = {"jsonrpc": "2.0", "id": f"{ID_PREFIX}c{page}", "method": method, "params": params}
                if link is not None:
                    response = await link.send(request)
                else:
                    response, _ = await up.post(server, record, for_backend(request, record))
                listed = (response or {}).get("result") if isinstance(response, dict) else None
                if not isinstance(listed, dict):
                    break
                items = [item for item in listed.get(key) or [] if isinstance(item, dict)]
                catalog[key].extend(items)
                cursor = listed.get("nextCursor")
                if len(catalog[key]) >= CATALOG_LIMIT:
                    catalog["truncated"] = len(catalog[key]) > CATALOG_LIMIT or bool(cursor)
                    catalog[key] = catalog[key][:CATALOG_LIMIT]
                    break
                if not isinstance(cursor, str) or not cursor or page >= 50:
                    break
    finally:
        if link is not None:
            await link.close()
        else:
            await up.delete(server, record)
    return catalog
