"""Direct Proxy executor: every message of a client session relayed to the server's backend MCP service."""
from __future__ import annotations

from typing import Any

from .. import protocol as p
from ..jsonrpc import Message, RpcError
from ..lifecycle import CallContext, initialize
from . import Initialized


class DirectProxyExecutor:
    relays_all = True

    async def initialize(self, message: Message, ctx: CallContext) -> Initialized:
        return Initialized(*initialize(ctx.server, message))

    async def session_closed(self, session: Any) -> None:
        return None

    async def handle(self, message: Message, ctx: CallContext) -> Message | None:
        if "id" not in message or "method" not in message:
            return None
        raise RpcError(p.INTERNAL_ERROR, f"MCP server {ctx.server.name} is a Direct Proxy; relaying to backend MCP "
                                         "servers is not available in this version.")
