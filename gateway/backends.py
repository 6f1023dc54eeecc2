"""The gateway's one outbound HTTP client: a shared aiohttp session per running event loop."""
from __future__ import annotations

import asyncio

import aiohttp

from . import egress
from .protocol import SERVER_NAME, SERVER_VERSION

# Sized for a gateway fanning out to many backends: a generous share of sockets per host, idle connections kept
# for reuse, DNS answers cached so a busy backend is not resolved on every call. No cap across hosts: with one, a
# burst of calls to a backend that never answers (or two) would hold every socket and stall calls to healthy
# backends until their timeouts; a call beyond its host's share waits within its own total timeout.
CONNECTION_LIMIT = 0
CONNECTION_LIMIT_PER_HOST = 256
KEEPALIVE_SECONDS = 30.0
DNS_CACHE_SECONDS = 300
# A ceiling for callers that pass no timeout of their own; executors always pass one.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=60)
USER_AGENT = f"{SERVER_NAME}/{SERVER_VERSION}"

# loop id -> (loop, session); the loop is kept to tell a reused id from the loop that owned the session.
_sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}
_last: tuple[asyncio.AbstractEventLoop | None, aiohttp.ClientSession | None] = (None, None)


def _new_session() -> aiohttp.ClientSession:
    # Every backend connection passes the egress policy, checked on the resolved address right before connect.
    connector = egress.aiohttp_connector(
        limit=CONNECTION_LIMIT,
        limit_per_host=CONNECTION_LIMIT_PER_HOST,
        keepalive_timeout=KEEPALIVE_SECONDS,
        ttl_dns_cache=DNS_CACHE_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Cookies a backend sets must never reach the next tenant's call.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Backends are called directly; HTTP(S)_PROXY in the gateway's environment must not reroute them.
        trust_env=False,
        auto_decompress=True,
        timeout=DEFAULT_TIMEOUT,
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,
    )


def get_http_session() -> aiohttp.ClientSession:
    """The shared session of the running event loop, created on first use. Must be called inside a loop."""
    global _last
    loop = asyncio.get_running_loop()
    last_loop, session = _last
    if last_loop is loop and session is not None and not session.closed:
        return session
    entry = _sessions.get(id(loop))
    if entry is not None and entry[0] is loop and not entry[1].closed:
        session = entry[1]
    else:
        for key, (other_loop, _) in list(_sessions.items()):
            if other_loop.is_closed():
                del _sessions[key]
        session = _new_session()
        _sessions[id(loop)] = (loop, session)
    _last = (loop, session)
    return session


async def close_http_sessions() -> None:
    """Close the running loop's session (tests, shutdown) and forget sessions of loops that are gone."""
    global _last
    loop = asyncio.get_running_loop()
    for key, (owner, session) in list(_sessions.items()):
        if owner is loop:
            del _sessions[key]
            await session.close()
        elif owner.is_closed():
            del _sessions[key]
    if _last[0] is loop or (_last[0] is not None and _last[0].is_closed()):
        _last = (None, None)
