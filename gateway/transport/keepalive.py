"""What an open stream does at each keepalive: keep its session from expiring, and check its consumer is still admitted."""
from __future__ import annotations

from ..config import get_config_cache
from ..consumer_auth import still_admitted
from ..readmodel import ServerConfig
from ..sessions import session_get
from .http import Request


def on_keepalive(req: Request, server: ServerConfig, session_id: str):
    """The `on_idle` callback of stream_subscription for a stream `req` opened on `session_id`."""

    async def check() -> bool:
        await session_get(session_id)
        # The config version as last polled (no extra read per stream): a revocation ends the stream within one
        # keepalive interval once this process has seen it.
        current = await get_config_cache().server(server.id)
        return await still_admitted(req, current)

    return check
