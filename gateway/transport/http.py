"""Small ASGI helpers: the request as the gateway sees it, and the ways it answers."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from django.conf import settings

from ..drain import drain
from ..governance.metrics import ACTIVE_STREAMS
from ..jsonrpc import RpcError, dumps, error_response, parse_body
from ..protocol import INVALID_REQUEST
from ..state.outage import DependencyUnavailable

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]

JSON = b"application/json"
SSE = b"text/event-stream"


class BodyTooLarge(Exception):
    pass


class Request:
    __slots__ = ("scope", "receive", "send", "method", "path", "headers", "_query", "cors", "consumer", "credential")

    def __init__(self, scope: dict, receive: Receive, send: Send):
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.headers = headers
        self._query: dict[str, list[str]] | None = None
        self.cors: list[tuple[bytes, bytes]] = []
        # The authenticated consumer (gateway.consumer_auth.ConsumerIdentity); None while the server is open.
        self.consumer = None
        # The credential the edge took out of the request: kept only so a long-lived stream can be checked again
        # (gateway.consumer_auth.still_admitted); never forwarded.
        self.credential = ""

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return self._query

    def query_value(self, *names: str) -> str | None:
        for name in names:
            values = self.query.get(name)
            if values:
                return values[0]
        return None

    @property
    def origin(self) -> str:
        """scheme://host[:port] as the client addressed this gateway (the Host header as sent)."""
        host = self.headers.get("host") or ""
        if not host and self.scope.get("server"):
            host = "%s:%s" % tuple(self.scope["server"][:2])
        return f"{self.scope.get('scheme', 'http')}://{host}"

    @property
    def host(self) -> str:
        host = self.headers.get("host") or ""
        if not host and self.scope.get("server"):
            host = self.scope["server"][0] or ""
        if host.startswith("["):
            return host[1:].split("]", 1)[0].lower()
        return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()

    def accepts(self, media: str) -> bool:
        accept = self.headers.get("accept", "")
        return media in accept or "*/*" in accept

    async def body(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ConnectionResetError("client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_payload(req: Request) -> Any:
    """The request's JSON body; RpcError (413, or 400 with -32700) when it is too large or not JSON."""
    limit = settings.MCP_MAX_REQUEST_BYTES
    try:
        body = await req.body(limit)
    except BodyTooLarge:
        raise RpcError(INVALID_REQUEST, f"The request body exceeds {limit} bytes.", http_status=413) from None
    return parse_body(body)


async def respond(req: Request, status: int, body: bytes = b"", *, content_type: bytes | None = None,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    out = list(headers or ())
    if content_type:
        out.append((b"content-type", content_type))
    if status not in (204, 304):
        # A declared length: the server sends the body as it is, not as chunks the client must reassemble.
        out.append((b"content-length", str(len(body)).encode()))
    out.extend(req.cors)
    await req.send({"type": "http.response.start", "status": status, "headers": out})
    await req.send({"type": "http.response.body", "body": body})


async def respond_json(req: Request, status: int, obj: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(req, status, dumps(obj), content_type=JSON, headers=headers)


async def respond_rpc_error(req: Request, exc: RpcError, msg_id: Any = None) -> None:
    await respond_json(req, exc.http_status, exc.response(msg_id))


async def respond_error(req: Request, status: int, message: str, code: int = INVALID_REQUEST,
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond_json(req, status, error_response(None, code, message), headers)


def sse_event(data: bytes, *, event: str | None = None, event_id: str | None = None) -> bytes:
    parts = []
    if event_id is not None:
        parts.append(b"id: " + event_id.encode())
    if event:
        parts.append(b"event: " + event.encode())
    for line in data.split(b"\n") or [b""]:
        parts.append(b"data: " + line if line else b"data:")
    return b"\n".join(parts) + b"\n\n"


SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


async def start_sse(req: Request, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await req.send({"type": "http.response.start", "status": 200,
                    "headers": SSE_HEADERS + list(extra or ()) + req.cors})


async def send_chunk(req: Request, data: bytes, *, more: bool = True) -> None:
    await req.send({"type": "http.response.body", "body": data, "more_body": more})


class Disconnect:
    """Watches the ASGI receive channel so a stream loop learns when its client goes away."""

    def __init__(self, receive: Receive):
        self._task = asyncio.ensure_future(self._watch(receive))

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    @property
    def happened(self) -> bool:
        return self._task.done()

    async def wait(self) -> None:
        await asyncio.shield(self._task)

    def cancel(self) -> None:
        self._task.cancel()


async def stream_subscription(req: Request, subscription, *, keepalive: float, first: list[bytes] = (),
                              frame: Callable[[bytes], bytes], on_close: Callable[[], Awaitable[None]] | None = None,
                              on_idle: Callable[[], Awaitable[object]] | None = None,
                              extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Hold an SSE response open, writing each published message as an event until the client leaves.

    `on_idle` runs at each keepalive: an open stream keeps its session from expiring. If it answers False the
    stream ends (its consumer's credential was revoked, say), and the client has to reconnect.
    """
    disconnect = Disconnect(req.receive)
    ACTIVE_STREAMS.inc()
    # Shutting down ends the stream cleanly, so its client reconnects to another process.
    stopping = drain.stopping()
    try:
        await start_sse(req, extra_headers)
        for chunk in first:
            await send_chunk(req, chunk)
        while not disconnect.happened and not stopping.done():
            getter = asyncio.ensure_future(subscription.get(keepalive))
            done, _ = await asyncio.wait({getter, disconnect._task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
                break
            try:
                message = getter.result()
                if message is not None:
                    await send_chunk(req, frame(message))
                    continue
                # A comment line keeps proxies and idle timers from closing a quiet stream.
                await send_chunk(req, b": keepalive\n\n")
                if on_idle is not None and await on_idle() is False:
                    break
            except DependencyUnavailable as exc:
                # Answers published meanwhile are lost: end the stream so the client reconnects (and gets a 503
                # it can retry until the dependency is back) rather than waiting on a stream nothing reaches.
                with contextlib.suppress(Exception):
                    await send_chunk(req, b": " + exc.message.encode() + b"\n\n")
                break
        with contextlib.suppress(Exception):
            await send_chunk(req, b"", more=False)
    finally:
        ACTIVE_STREAMS.dec()
        disconnect.cancel()
        stopping.cancel()
        with contextlib.suppress(DependencyUnavailable):
            await subscription.close()
            if on_close is not None:
                await on_close()
