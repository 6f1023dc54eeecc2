"""Executors, one module per MCP server type: each answers whole JSON-RPC messages for the servers of its type."""
from __future__ import annotations

from typing import Any, Protocol

from ..jsonrpc import Message
from ..lifecycle import CallContext
from ..readmodel import ServerConfig


class Initialized:
    """What an executor's initialize hands the transport: the answer, the revision, and what the session keeps."""

    __slots__ = ("response", "version", "client", "upstream")

    def __init__(self, response: Message, version: str, client: dict[str, Any], upstream: dict | None = None):
        self.response = response
        self.version = version
        self.client = client
        self.upstream = upstream  # the executor's own per-session record (a backend session), JSON-able


class Executor(Protocol):
    # False: only requests reach handle(); True: notifications and responses too (a relay forwards them).
    relays_all: bool

    async def initialize(self, message: Message, ctx: CallContext) -> Initialized: ...

    async def handle(self, message: Message, ctx: CallContext) -> Message | None:
        """The response to a request (RpcError for a refusal), None for a notification or response."""

    async def session_closed(self, session: Any, server: ServerConfig) -> None:
        """The client's session ended (DELETE, SSE stream gone): let go of what was kept for it."""


def executor_for(server: ServerConfig) -> Executor:
    return _EXECUTORS.get(server.type) or _EXECUTORS["direct_proxy"]


from .direct_proxy import DirectProxyExecutor  # noqa: E402  (the executors import the interface above)
from .hosted_stdio import HostedStdioExecutor  # noqa: E402
from .http_to_mcp import HttpToMcpExecutor  # noqa: E402

_EXECUTORS: dict[str, Executor] = {"http_to_mcp": HttpToMcpExecutor(), "direct_proxy": DirectProxyExecutor(),
                                   "hosted_stdio": HostedStdioExecutor()}
