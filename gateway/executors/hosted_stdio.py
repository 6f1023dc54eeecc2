"""Hosted stdio executor: the Direct Proxy relay in front of a child process the gateway runs from the catalogue.

What differs from a Direct Proxy (everything else — id mapping, requests the server sends, allow-lists, list_changed,
records, limits — is the relay's):
- The backend session is a child process (gateway/hosted/children.py) started on initialize, one per client session;
  a shareable entry's sessions share a pool of children per server and consumer, their request ids rewritten so
  they never see each other's messages (the relay's handshake-free path). A child is never started on any other request.
- A child that exits — crashed, killed, out of CPU time, idle past its timeout — ends its client's session: pending
  requests get an error at once, the next request a 404, and the client initializes again (a new child). Nothing
  reopens a child behind the client's back: the old one's state is gone.
- The child lives in the gateway process that handled initialize. A message of that session reaching another process
  is handed to the owner over the shared state's pub/sub, as the relay does for SSE links; an owner that is gone
  ends the session, one that does not answer in time is a clear error (never a hang).
"""
from __future__ import annotations

import itertools
import zlib
from typing import Any

from .. import protocol as p
from ..hosted.children import registry
from ..jsonrpc import Message, RpcError
from ..lifecycle import CallContext
from ..readmodel import ServerConfig
from ..sessions import session_end
from . import Initialized
from . import upstream as up
from .direct_proxy import DirectProxyExecutor

STDIO = "stdio"


class HostedStdioExecutor(DirectProxyExecutor):
    def transport_of(self, server: ServerConfig) -> str:
        return STDIO

    def backend_name(self, server: ServerConfig) -> str:
        return f"hosted stdio server {server.hosted.entry_slug if server.hosted else server.name}"

    async def _open_link(self, server: ServerConfig, sid: str | None, record: dict[str, Any]) -> up.MessageLink:
        return await registry.start(server, session_id=sid, on_message=self._publisher(sid, server))

    def _link_missing(self, record: dict[str, Any]) -> up.UpstreamError:
        return up.SessionLost("The session's hosted process has stopped")

    async def initialize(self, message: Message, ctx: CallContext) -> Initialized:
        hosted = ctx.server.hosted
        if hosted is None or hosted.unavailable:
            raise RpcError(p.INTERNAL_ERROR, hosted.unavailable if hosted else "Not a Hosted stdio server.")
        if not hosted.shareable:
            return await super().initialize(message, ctx)
        # A pool of children for the sessions of this server and consumer: the session keeps no backend session of
        # its own, and is served by the same child of the pool every time.
        stateless = CallContext(server=ctx.server, version=ctx.version, consumer=ctx.consumer, stateless=True,
                                session_id=ctx.session_id)
        try:
            shared = await self._shared_for(stateless)
        except up.UpstreamError as exc:
            raise RpcError(p.INTERNAL_ERROR, exc.message) from None
        from ..jsonrpc import params_of, result_response
        from ..lifecycle import client_of, server_info

        result = shared.result
        answer = {"protocolVersion": p.negotiate(params_of(message).get("protocolVersion")),
                  "capabilities": result.get("capabilities") if isinstance(result.get("capabilities"), dict) else {},
                  "serverInfo": result.get("serverInfo") or server_info(ctx.server)}
        if isinstance(result.get("instructions"), str):
            answer["instructions"] = result["instructions"]
        return Initialized(result_response(message["id"], answer), answer["protocolVersion"], client_of(message),
                           {"t": STDIO, "shared": True})

    _round = itertools.count()

    def _shared_key(self, ctx: CallContext) -> tuple:
        """A shareable entry's pool holds up to its max_processes children, started as sessions need them; a
        session always reaches the same one, handshake-free requests take turns."""
        key = super()._shared_key(ctx)
        hosted = ctx.server.hosted
        size = hosted.limits.max_processes if hosted is not None and hosted.shareable else 1
        if size <= 1:
            return key
        slot = zlib.crc32(ctx.session_id.encode()) if ctx.session_id else next(self._round)
        return (*key, slot % size)

    async def handle(self, message: Message, ctx: CallContext) -> Message | None:
        hosted = ctx.server.hosted
        if hosted is not None and hosted.unavailable and "id" in message and message.get("method") not in (None, "ping"):
            raise RpcError(p.INTERNAL_ERROR, hosted.unavailable)
        return await super().handle(message, ctx)

    async def _session_send(self, message: Message, ctx: CallContext, *, recover: bool = True) -> Message | None:
        record = ctx.session.upstream if ctx.session is not None else None
        if record and record.get("shared"):
            if "method" not in message or "id" not in message:
                return None  # the shared child's own requests are not routed to one client; nothing to forward
            return await self._stateless(message, ctx)
        return await super()._session_send(message, ctx, recover=recover)

    async def _recover(self, message: Message, ctx: CallContext, record: dict, on_message) -> Message | None:
        # The child is gone, and with it the session's state: end the session so the client starts afresh.
        await session_end(ctx.session.id)
        await self._let_go(ctx.session.id)
        raise up.SessionEnded("The session's hosted process has stopped; the session has ended: initialize again.")

    async def session_closed(self, session: Any, server: ServerConfig) -> None:
        await self._let_go(session.id)
