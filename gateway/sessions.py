"""MCP sessions (2024-11-05 … 2025-11-25): minted on initialize, kept in shared state so any process can serve them."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from .state import get_state


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    server: str  # "<instance>/<server name>": a session only works on the endpoint that minted it
    version: str
    transport: str  # "streamable" | "sse"
    client: dict[str, Any]
    # The consumer that opened it (None: opened while the server was open); only that consumer may use it.
    consumer: int | None = None
    # The executor's own record for this session (a Direct Proxy's backend session), JSON-able; None: nothing kept.
    upstream: dict[str, Any] | None = None

    def stream_channel(self) -> str:
        return f"mcpgw:stream:{self.id}"


def new_session_id() -> str:
    # 32 random bytes as URL-safe text: visible ASCII only, as the spec requires.
    return secrets.token_urlsafe(32)


async def _store(session: Session) -> Session:
    data = {"server": session.server, "version": session.version, "transport": session.transport,
            "client": session.client, "consumer": session.consumer}
    if session.upstream is not None:
        data["upstream"] = session.upstream
    await get_state().session_put(session.id, data, settings.MCP_SESSION_TTL)
    return session


async def session_create(*, server: str, version: str, transport: str, client: dict[str, Any] | None = None,
                         consumer: int | None = None, sid: str | None = None,
                         upstream: dict[str, Any] | None = None) -> Session:
    return await _store(Session(id=sid or new_session_id(), server=server, version=version, transport=transport,
                                client=client or {}, consumer=consumer, upstream=upstream))


async def session_update(session: Session, *, version: str | None = None, client: dict[str, Any] | None = None,
                         upstream: dict[str, Any] | None = None) -> Session:
    """The session after initialize on the SSE transport (the stream opened it before negotiation), or after its
    executor replaced its record."""
    return await _store(replace(session, version=version or session.version, client=client or session.client,
                                upstream=upstream if upstream is not None else session.upstream))


async def session_get(sid: str) -> Session | None:
    data = await get_state().session_get(sid, settings.MCP_SESSION_TTL)
    if data is None:
        return None
    return Session(id=sid, server=data["server"], version=data["version"], transport=data["transport"],
                   client=data.get("client") or {}, consumer=data.get("consumer"), upstream=data.get("upstream"))


async def session_for(sid: str, *, server: str, consumer, transport: str | None = None) -> Session | None:
    """The session if this caller may use it on this endpoint, else None (answered as an unknown session).

    `consumer` is the authenticated ConsumerIdentity, None while the server is open (then any caller may). A
    session opened before authentication was turned on goes to the first consumer that authenticates on it.
    """
    session = await session_get(sid)
    if session is None or session.server != server or (transport is not None and session.transport != transport):
        return None
    if consumer is None or session.consumer == consumer.id:
        return session
    if session.consumer is None:
        return await _store(replace(session, consumer=consumer.id))
    return None


async def session_end(sid: str) -> bool:
    return await get_state().session_delete(sid)
