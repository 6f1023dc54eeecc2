"""Client sessions with a Direct Proxy's backend MCP service, over Streamable HTTP or SSE, through the egress policy."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import logging
import socket
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import aiohttp
from django.conf import settings
from yarl import URL

from .. import boundedjson, egress
from .. import protocol as p
from ..backends import USER_AGENT, get_http_session
from ..jsonrpc import Message, dumps
from ..readmodel import ServerConfig
from ..state import get_state
from . import http1

log = logging.getLogger(__name__)

OnMessage = Callable[[Message], Awaitable[None]]

STREAMABLE = "streamable_http"
SSE = "sse"
ACCEPT_BOTH = "application/json, text/event-stream"
# A backend whose listening stream fails is reconnected after this long (never in a tight loop).
RECONNECT_SECONDS = 1.0
# How often a quiet listening stream looks whether its client session still exists.
LISTEN_CHECK_SECONDS = 15.0
# A backend's `retry:` is honoured within these bounds; an event id longer than this is not kept.
MIN_RETRY_SECONDS, MAX_RETRY_SECONDS = 0.1, 30.0
MAX_EVENT_ID = 512
# A POST's event stream that breaks before its answer is resumed (GET with Last-Event-ID) at most this often.
MAX_RESUMES = 3


# A backend speaking the handshake-free revision: every request stands alone, routed on its headers and _meta.
MODERN = p.V2026_07_28
# The params member a handshake-free request names in Mcp-Name, by method.
_NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def named_in(message: Message) -> str | None:
    """The Mcp-Name of a handshake-free request: the tool, prompt or resource it names, when a header can carry it."""
    member = _NAMED.get(message.get("method"))
    if member is None:
        return None
    value = (message.get("params") or {}).get(member)
    if not isinstance(value, str) or not value.isascii() or not value.isprintable() or len(value) > 2048:
        raise UpstreamError(f"The {member} of this {message.get('method')} cannot be carried in the Mcp-Name header "
                            "a handshake-free backend requires (visible ASCII, at most 2048 characters)")
    return value


class UpstreamError(Exception):
    """The backend could not be reached or answered something that is not MCP; the message says what happened."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status  # the backend's HTTP status when it answered one that is not a response


class SessionLost(UpstreamError):
    """The backend no longer knows the session (404 on a request that carried its id)."""


class SessionEnded(UpstreamError):
    """The backend side of the session is gone for good and the client's session ends with it: every request,
    tools/call included, gets a JSON-RPC error (not an isError result: no tool ran and failed)."""


# ---------------------------------------------------------------- where and how

def backend_url(server: ServerConfig) -> str:
    """The backend service's base URL followed by the server's backend path (`xxx.com` + `/test/sse`)."""
    base = server.backend_url.rstrip("/")
    path = (server.backend_path or "").strip()
    if not path:
        return base or ""
    return base + (path if path.startswith("/") else "/" + path)


def _auth(server: ServerConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters carrying the server's backend credential (never the consumer's)."""
    security = server.backend_security
    if security is None or not security.credential and not security.scheme.default_credential:
        return {}, {}
    scheme, credential = security.scheme, security.credential or security.scheme.default_credential
    if scheme.type == "http":
        if scheme.scheme == "basic":
            if credential[:6].lower() == "basic ":
                return {"Authorization": credential}, {}
            if ":" in credential:
                return {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode("ascii")}, {}
            return {"Authorization": "Basic " + credential}, {}
        return {"Authorization": credential if credential[:7].lower() == "bearer " else "Bearer " + credential}, {}
    if scheme.type == "apiKey" and scheme.name:
        if scheme.location == "query":
            return {}, {scheme.name: credential}
        return {scheme.name: credential}, {}
    return {}, {}


class _Target:
    """Where and how one server's backend is called, worked out once per configuration of it."""

    __slots__ = ("url", "text", "headers", "posts", "handshake_free")

    def __init__(self, server: ServerConfig):
        self.text = backend_url(server)
        headers, query = _auth(server)
        self.url = _with_query(self.text, query)
        self.headers = headers
        # (backend session id, revision) -> the head of a POST on it: built once, not per relayed message.
        self.posts: dict[tuple, bytes] = {}
        # The backend refused initialize and spoke 2026-07-28 instead: later sessions skip the refused handshake.
        self.handshake_free = False

    def post_head(self, record: dict[str, Any], message: Message) -> bytes:
        """The head of a POST on this backend session (http1.request_head), built once and kept."""
        if record.get("ver") == MODERN:
            # A handshake-free backend routes on Mcp-Method / Mcp-Name: one entry per method and name instead.
            method = message.get("method")
            name = named_in(message)
            key = (None, MODERN, method, name)
        else:
            method = name = None
            key = (record.get("sid"), record.get("ver"))
        head = self.posts.get(key)
        if head is None:
            if len(self.posts) > 256:  # one entry per backend session or name: bounded like the targets themselves
                self.posts.clear()
            headers = {"User-Agent": USER_AGENT, **_headers_for(self.headers, record, ACCEPT_BOTH),
                       "Content-Type": "application/json"}
            if isinstance(method, str):
                headers["Mcp-Method"] = method
            if name is not None:
                headers["Mcp-Name"] = name
            try:
                head = http1.request_head("POST", self.url, headers)
            except ValueError as exc:
                raise UpstreamError(f"The request to the backend MCP server cannot be sent: {exc}") from None
            self.posts[key] = head
        return head


_targets: dict[tuple, _Target] = {}


def target_of(server: ServerConfig) -> _Target:
    return _target(server)


def _target(server: ServerConfig) -> _Target:
    # The version alone is not enough: the console's snapshots of a server all carry version 0.
    key = (server.id, server.version, server.backend_url, server.backend_path, server.backend_security)
    target = _targets.get(key)
    if target is None:
        if len(_targets) > 256:
            _targets.clear()
        target = _targets[key] = _Target(server)
    return target


def timeout_of(server: ServerConfig) -> float:
    """The longest one exchange with the server's backend may take."""
    return server.timeout if server.timeout and server.timeout > 0 else 30.0


def _limits(server: ServerConfig) -> tuple[float, float]:
    """(connect, first byte) seconds for one exchange with the backend: the gateway's settings, never longer than
    the server's own timeout, which bounds the whole exchange."""
    total = timeout_of(server)
    first_byte = float(settings.GATEWAY_BACKEND_FIRST_BYTE_TIMEOUT or 0) or total
    return min(float(settings.GATEWAY_BACKEND_CONNECT_TIMEOUT), total), min(first_byte, total)


def _own_first_byte(server: ServerConfig) -> float | None:
    """The first-byte limit when it is shorter than the server's timeout; None when that timeout bounds it anyway
    (the default), so no timer of its own is set."""
    first_byte = _limits(server)[1]
    return first_byte if first_byte < timeout_of(server) else None


def _limit() -> int:
    return int(settings.GATEWAY_MAX_BACKEND_RESPONSE_BYTES)


def _with_query(url: str, query: dict[str, str]) -> URL:
    target = URL(url, encoded=False)
    return target.update_query(query) if query else target


def describe(exc: BaseException, url: str, server: ServerConfig | None = None) -> str:
    """What went wrong reaching the backend, in words a person can act on."""
    refused = egress.refusal_of(exc)
    if refused is not None:
        return f"{refused.describe()} ({url})"
    if server is not None and isinstance(exc, (aiohttp.ConnectionTimeoutError, http1.ConnectTimeout)):
        return f"Backend MCP server {url} did not accept a connection within {_limits(server)[0]:g} s"
    if server is not None and isinstance(exc, (aiohttp.SocketTimeoutError, http1.ReadTimeout)) and \
            _own_first_byte(server) is not None:
        return f"Backend MCP server {url} sent nothing for {_own_first_byte(server):g} s"
    if isinstance(exc, asyncio.TimeoutError):
        return f"Backend MCP server {url} did not answer in time"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"Backend host {exc.host} could not be resolved ({url})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if getattr(exc.os_error, "errno", None) == errno.ECONNREFUSED:
            return f"Backend MCP server {url} refused the connection"
        return f"Could not connect to backend MCP server {url}: {exc.strerror or exc.os_error}"
    if isinstance(exc, socket.gaierror):
        return f"Backend host {urlsplit(url).hostname} could not be resolved ({url})"
    if isinstance(exc, ConnectionRefusedError):
        return f"Backend MCP server {url} refused the connection"
    if isinstance(exc, http1.ProtocolError):
        return f"Backend MCP server {url} sent an answer that is not HTTP: {exc}"
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, ConnectionResetError)) or \
            getattr(exc, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
        return f"Backend MCP server {url} closed the connection without answering"
    if isinstance(exc, UpstreamError):
        return exc.message
    return f"Backend MCP server {url} failed: {exc}"


# ---------------------------------------------------------------- reading

def parse_message(data: bytes | str, url: str) -> Any:
    try:
        return boundedjson.loads(data, max_depth=settings.MCP_MAX_JSON_DEPTH, max_values=settings.MCP_MAX_JSON_VALUES)
    except ValueError as exc:
        raise UpstreamError(f"The backend MCP server {url} sent a message that is not acceptable JSON: {exc}") from None


async def read_events(response: aiohttp.ClientResponse, *, idle: float | None = None, seen: dict | None = None
                      ) -> AsyncIterator[tuple[str, bytes] | None]:
    """The (event, data) pairs of an event stream, within the response size limit; None each `idle` seconds of quiet.

    `seen` keeps the stream's last event id ("id") and reconnection delay ("retry", seconds) as they arrive, so that
    the stream can be resumed with Last-Event-ID when it breaks."""
    limit = _limit()
    buffer = bytearray()
    data: list[bytes] = []
    size = 0
    event = ""
    event_id: str | None = None
    while True:
        if idle is None:
            chunk = await response.content.readany()
        else:
            try:
                chunk = await asyncio.wait_for(response.content.readany(), idle)
            except asyncio.TimeoutError:
                yield None
                continue
        if not chunk:
            return
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[:end + 1]
            if not line:
                if event_id is not None and seen is not None:
                    seen["id"] = event_id  # a priming event (an id, empty data) counts: it is where resuming starts
                payload = b"\n".join(data)
                if payload.strip():  # a priming event carries no message
                    yield event or "message", payload
                data, size, event, event_id = [], 0, "", None
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                size += len(value)
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
            elif name == b"id" and b"\x00" not in value and len(value) <= MAX_EVENT_ID:
                event_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit() and seen is not None:
                seen["retry"] = min(max(int(value) / 1000, MIN_RETRY_SECONDS), MAX_RETRY_SECONDS)
        if len(buffer) + size > limit:
            raise UpstreamError(f"The backend MCP server {response.url.with_query(None)} sent an event larger than the gateway's "
                                f"limit of {limit} bytes")


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    limit = _limit()
    declared = response.content_length
    if declared is not None and declared <= limit and not response.headers.get("content-encoding"):
        return await response.read()  # size known and within the limit: one read
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise UpstreamError(f"The backend MCP server's answer is larger than the gateway's limit of {limit} bytes")
        chunks.append(chunk)


# ---------------------------------------------------------------- Streamable HTTP backends

def _headers(server: ServerConfig, record: dict[str, Any], accept: str) -> dict[str, str]:
    return _headers_for(_target(server).headers, record, accept)


def _headers_for(base: dict[str, str], record: dict[str, Any], accept: str) -> dict[str, str]:
    headers = dict(base)
    headers["Accept"] = accept
    if record.get("sid"):
        headers["Mcp-Session-Id"] = record["sid"]
    if record.get("ver") and record["ver"] >= p.V2025_06_18:
        headers["MCP-Protocol-Version"] = record["ver"]
    return headers


async def post(server: ServerConfig, record: dict[str, Any], message: Message, *,
               on_message: OnMessage | None = None) -> tuple[Message | None, Any]:
    """POST one message to a Streamable HTTP backend: the response to it (None for a notification) and the headers.

    Whatever the backend sends ahead of the response on its event stream goes to `on_message`.
    """
    target = _target(server)
    url = target.text
    head = target.post_head(record, message)
    wanted = message.get("id") if "method" in message else None
    try:
        async with asyncio.timeout(timeout_of(server)):
            response = await http1.post(target.url, head, dumps(message), connect_timeout=_limits(server)[0],
                                        read_timeout=_own_first_byte(server))
            try:
                if response.status == 404 and record.get("sid"):
                    raise SessionLost(f"The backend MCP server {url} ended the session")
                if response.status in (202, 204) or wanted is None and response.status < 300:
                    return None, response.headers
                if response.content_type == "text/event-stream" and response.status < 300:
                    seen: dict[str, Any] = {}
                    try:
                        answer = await _answer_on(read_events(response, seen=seen), wanted, url, on_message)
                    except (aiohttp.ClientError, OSError, http1.ProtocolError, asyncio.IncompleteReadError) as exc:
                        if not seen.get("id"):
                            raise
                        answer, broken = None, exc
                    else:
                        broken = None
                    if answer is not None:
                        return answer, response.headers
                    if seen.get("id") and record.get("sid"):
                        # 2025-11-25: a stream that ends before its answer is resumed by GET with Last-Event-ID.
                        answer = await _resume(server, record, seen, wanted, on_message)
                        if answer is not None:
                            return answer, response.headers
                    if broken is not None:
                        raise broken
                    raise UpstreamError(f"The backend MCP server {url} closed its stream without answering")
                body = await _read_body(response)
                answer = parse_message(body, url) if body.strip() else None
                if isinstance(answer, dict) and ("result" in answer or "error" in answer):
                    return answer, response.headers
                if response.status >= 300:
                    snippet = body[:200].decode("utf-8", "replace").strip()
                    raise UpstreamError(f"The backend MCP server {url} answered HTTP {response.status}"
                                        + (f": {snippet}" if snippet else ""), response.status)
                raise UpstreamError(f"The backend MCP server {url} answered something that is not a JSON-RPC "
                                    "response")
            finally:
                response.release()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, http1.ProtocolError) as exc:
        raise UpstreamError(describe(exc, url, server)) from None


async def _answer_on(events: AsyncIterator, wanted: Any, url: str, on_message: OnMessage | None) -> Message | None:
    """Read an event stream up to the response to `wanted`, handing everything before it to `on_message`."""
    async for item in events:
        if item is None or item[0] != "message":
            continue
        received = parse_message(item[1], url)
        if isinstance(received, dict) and "method" not in received and received.get("id") == wanted:
            return received
        if on_message is not None and isinstance(received, dict):
            await on_message(received)
    return None


async def _resume(server: ServerConfig, record: dict[str, Any], seen: dict, wanted: Any,
                  on_message: OnMessage | None) -> Message | None:
    """GET the broken stream again from its last event id until the answer arrives (within the caller's timeout)."""
    url = backend_url(server)
    _, query = _auth(server)
    for _ in range(MAX_RESUMES):
        await asyncio.sleep(seen.get("retry", 0))
        headers = {**_headers(server, record, "text/event-stream"), "Last-Event-ID": seen["id"]}
        last = seen["id"]
        try:
            async with get_http_session().get(_with_query(url, query), headers=headers, allow_redirects=False,
                                              timeout=aiohttp.ClientTimeout(total=None,
                                                                            sock_connect=_limits(server)[0],
                                                                            sock_read=_limits(server)[1])) as response:
                if response.status == 404:
                    raise SessionLost(f"The backend MCP server {url} ended the session")
                if response.status >= 300 or response.content_type != "text/event-stream":
                    return None  # the backend cannot resume: the caller says the stream ended unanswered
                answer = await _answer_on(read_events(response, seen=seen), wanted, url, on_message)
                if answer is not None:
                    return answer
        except (aiohttp.ClientError, OSError):
            pass
        if seen.get("id") == last:
            return None  # nothing new on that attempt: give up rather than loop
    return None


async def listen(server: ServerConfig, record: dict[str, Any], *, on_message: OnMessage,
                 alive: Callable[[], Awaitable[bool]]) -> None:
    """Hold the backend's GET stream for one session, handing each message over, while `alive()` says so."""
    url = backend_url(server)
    _, query = _auth(server)
    seen: dict[str, Any] = {}  # the stream's last event id and retry delay, kept across reconnections
    while await alive():
        headers = _headers(server, record, "text/event-stream")
        if seen.get("id"):
            headers["Last-Event-ID"] = seen["id"]  # what was sent while the stream was down is replayed
        try:
            async with get_http_session().get(_with_query(url, query), headers=headers,
                                              allow_redirects=False, timeout=aiohttp.ClientTimeout(
                                                  total=None, sock_connect=_limits(server)[0])) as response:
                if response.status in (404, 405) or response.content_type != "text/event-stream":
                    return  # the backend offers no stream of its own (or forgot the session): nothing to hold
                async for item in read_events(response, idle=LISTEN_CHECK_SECONDS, seen=seen):
                    if item is None:
                        if not await alive():
                            return
                        continue
                    if item[0] == "message":
                        received = parse_message(item[1], url)
                        if isinstance(received, dict):
                            await on_message(received)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken stream is reopened; its reason is only worth a log line
            log.info("Listening stream of %s ended: %s", server.key, describe(exc, url))
        await asyncio.sleep(seen.get("retry", RECONNECT_SECONDS))


async def delete(server: ServerConfig, record: dict[str, Any]) -> None:
    if not record.get("sid"):
        return
    url = backend_url(server)
    _, query = _auth(server)
    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
        async with get_http_session().delete(_with_query(url, query), headers=_headers(server, record, ACCEPT_BOTH),
                                             allow_redirects=False, timeout=aiohttp.ClientTimeout(total=5)):
            pass


# ---------------------------------------------------------------- SSE backends (2024-11-05)

class MessageLink:
    """One open channel to a backend that carries every message of a backend session both ways (an SSE stream, a
    child's stdin/stdout): requests wait for their response by id, the backend's own messages are routed.

    Subclasses open the channel, `_post` one message on it, and call `_deliver` for each message received and
    `_fail_pending` when the channel ends.
    """

    def __init__(self, server: ServerConfig, *, on_message: OnMessage):
        self.server = server
        self.url = backend_url(server)
        self.on_message = on_message
        self.pending: dict[Any, asyncio.Future] = {}
        self.emits: dict[Any, OnMessage] = {}

    @property
    def open_(self) -> bool:
        raise NotImplementedError

    async def _post(self, message: Message) -> None:
        raise NotImplementedError

    def _timeout_of(self, message: Message) -> float:
        return timeout_of(self.server)

    def _describe(self, exc: BaseException) -> str:
        return describe(exc, self.url, self.server)

    async def _deliver(self, received: Any) -> None:
        if not isinstance(received, dict):
            return
        if "method" not in received:
            future = self.pending.get(received.get("id"))
            if future is not None and not future.done():
                future.set_result(received)
            return
        await self._route(received)

    def _fail_pending(self, reason: str, kind: type[UpstreamError] = UpstreamError) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(kind(reason))

    async def _route(self, message: Message) -> None:
        # On one stream nothing says which request a message belongs to, except a progress token.
        target = None
        if message["method"] == "notifications/progress":
            token = (message.get("params") or {}).get("progressToken")
            target = self.emits.get(("progress", token))
        elif "id" in message or message["method"] == "notifications/message":
            target = next(reversed(self.emits.values()), None) if self.emits else None
        await (target or self.on_message)(message)

    async def send(self, message: Message, *, emit: OnMessage | None = None) -> Message | None:
        """Send one message; for a request, wait for its response on the stream."""
        if "method" not in message or "id" not in message:
            try:
                await self._post(message)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise UpstreamError(self._describe(exc)) from None
            return None
        msg_id = message["id"]
        future = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        token = ((message.get("params") or {}).get("_meta") or {}).get("progressToken")
        keys = [msg_id] + ([("progress", token)] if token is not None else [])
        if emit is not None:
            for key in keys:
                self.emits[key] = emit
        try:
            async with asyncio.timeout(self._timeout_of(message)):
                await self._post(message)
                return await future
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise UpstreamError(self._describe(exc)) from None
        finally:
            self.pending.pop(msg_id, None)
            for key in keys:
                self.emits.pop(key, None)


class SseLink(MessageLink):
    """One open SSE stream to a backend: requests go by POST to the announced endpoint, answers come on the stream.

    It lives in the process that opened it; a session served elsewhere opens its own (see DirectProxyExecutor).
    """

    def __init__(self, server: ServerConfig, *, on_message: OnMessage):
        super().__init__(server, on_message=on_message)
        self.endpoint = ""
        self._reader: asyncio.Task | None = None
        self._context = None

    async def open(self) -> None:
        headers, query = _auth(self.server)
        headers = {**headers, "Accept": "text/event-stream"}
        try:
            async with asyncio.timeout(timeout_of(self.server)):
                self._context = get_http_session().get(_with_query(self.url, query), headers=headers,
                                                       allow_redirects=False,
                                                       timeout=aiohttp.ClientTimeout(
                                                           total=None, sock_connect=_limits(self.server)[0]))
                response = await self._context.__aenter__()
                if response.status != 200 or response.content_type != "text/event-stream":
                    raise UpstreamError(f"The backend MCP server {self.url} answered HTTP {response.status} instead "
                                        "of an event stream")
                events = read_events(response)
                async for item in events:
                    if item is not None and item[0] == "endpoint":
                        self.endpoint = self._endpoint_url(item[1].decode("utf-8", "replace").strip())
                        break
                else:
                    raise UpstreamError(f"The backend MCP server {self.url} closed its stream before naming its "
                                        "message endpoint")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, UpstreamError) as exc:
            await self.close()
            raise UpstreamError(describe(exc, self.url, self.server)) from None
        self._reader = asyncio.ensure_future(self._read(events))

    def _endpoint_url(self, announced: str) -> str:
        endpoint = urljoin(self.url, announced)
        if urlsplit(endpoint).netloc != urlsplit(self.url).netloc:
            # The credential travels to the endpoint too: never to a host other than the configured one.
            raise UpstreamError(f"The backend MCP server {self.url} named a message endpoint on another host")
        return endpoint

    @property
    def open_(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def _read(self, events) -> None:
        try:
            async for item in events:
                if item is None or item[0] != "message":
                    continue
                await self._deliver(parse_message(item[1], self.url))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("SSE stream of %s ended: %s", self.server.key, describe(exc, self.url))
        finally:
            self._fail_pending(f"The backend MCP server {self.url} closed its stream without answering")

    async def _post(self, message: Message) -> None:
        headers, _ = _auth(self.server)
        headers = {**headers, "Content-Type": "application/json"}
        connect, first_byte = _limits(self.server)
        async with get_http_session().post(self.endpoint, data=dumps(message), headers=headers, allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=timeout_of(self.server),
                                                                         sock_connect=connect,
                                                                         sock_read=first_byte)) as response:
            if response.status == 404:
                raise SessionLost(f"The backend MCP server {self.url} ended the session")
            if response.status >= 300:
                raise UpstreamError(f"The backend MCP server {self.url} answered HTTP {response.status}",
                                    response.status)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._context is not None:
            with contextlib.suppress(Exception):
                await self._context.__aexit__(None, None, None)
            self._context = None


async def session_alive(sid: str) -> bool:
    return await get_state().session_exists(sid)
