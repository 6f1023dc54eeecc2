"""The relay behind `connect`: every stdio message to a gateway endpoint over Streamable HTTP (HTTP+SSE when that is
all the endpoint serves), every answer and server-initiated message back, and a new remote session opened behind the
client's back when the gateway ends the old one.

The command connects from the user's machine to the gateway, on the user's own behalf; it is not a connection the
gateway makes for a tenant, so the gateway's egress policy is not its business (the gateway applies it to the
backends behind the endpoint, and its refusals reach the user here as errors).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from .stdio import StdinLines, Stdout, TooLong

log = logging.getLogger("mcp-gateway")

USER_AGENT = "mcp-gateway-local/0.1"
CHUNK = 64 * 1024

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_EGRESS = 5
EXIT_NOT_MCP = 6

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
META_VERSION = "io.modelcontextprotocol/protocolVersion"
# The request header each stateless (2026-07-28) method names its target in.
NAMED_BY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


class Fatal(Exception):
    """A failure the bridge cannot work around: said on stderr, then the process exits with `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SessionGone(Exception):
    """The gateway no longer knows the session (404 on a request that carried it, or the SSE stream ended)."""


class NotThere(Exception):
    """The transport is not served at that URL: a fallback may try another."""


class Broken(Exception):
    """One exchange failed (connection refused or cut, an answer too large); the bridge itself goes on."""


class Credential:
    """The consumer credential and where the endpoint's Consumer Authentication reads it."""

    def __init__(self, key: str = "", source: str = "bearer", name: str = "") -> None:
        self.key = key
        self.source = source
        self.name = name

    def headers(self) -> dict[str, str]:
        if not self.key or self.source == "query":
            return {}
        if self.source == "header":
            return {self.name: self.key}
        return {"Authorization": f"Bearer {self.key}"}

    def apply(self, url: str) -> str:
        """The URL with the key in its query when that is where it goes (kept when the URL already carries it)."""
        if not self.key or self.source != "query":
            return url
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(name == self.name for name, _ in query):
            return url
        return urlunsplit(parts._replace(query=urlencode(query + [(self.name, self.key)])))

    def where(self) -> str:
        if self.source == "header":
            return f"the header {self.name}"
        if self.source == "query":
            return f"the query parameter {self.name}"
        return "Authorization: Bearer"

    def hint(self) -> str:
        """The credential as a person recognises it, never in full."""
        tail = self.key[-4:]
        if self.key.startswith("mck_"):
            return f"API key mck_…{tail}"
        if self.key.count(".") == 2:
            return f"JWT …{tail}"
        return f"key …{tail}"


def shown_url(url: str) -> str:
    """A URL for messages: its query (which may hold the key) left out."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


# ---------------------------------------------------------------- reading answers


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise Broken(f"The gateway's answer is larger than the bridge passes on ({limit} bytes; "
                         "--max-message-bytes).")
    return bytes(data)


async def sse_events(resp: aiohttp.ClientResponse, limit: int) -> AsyncIterator[tuple[str, str, str | None]]:
    """(event, data, id) of each event of a text/event-stream body, each event bounded by `limit` bytes."""
    buf = bytearray()
    event, data, event_id, size = "", [], None, 0
    async for chunk in resp.content.iter_any():
        searched = len(buf)  # no line break before here: a long line is scanned once, not once per chunk
        buf += chunk
        start = 0
        while True:
            end = buf.find(b"\n", max(start, searched))
            if end < 0:
                break
            line = bytes(buf[start:end]).rstrip(b"\r")
            start = end + 1
            if not line:
                if data:
                    yield event or "message", "\n".join(data), event_id
                event, data, size = "", [], 0
                continue
            if line.startswith(b":"):
                continue  # a comment: keepalive
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            size += len(value)
            if size > limit:
                raise Broken(f"The gateway sent an event larger than the bridge passes on ({limit} bytes; "
                             "--max-message-bytes).")
            text = value.decode("utf-8", "replace")
            if field == b"data":
                data.append(text)
            elif field == b"event":
                event = text
            elif field == b"id":
                event_id = text
        del buf[:start]
        if len(buf) > limit:
            raise Broken(f"The gateway sent a line larger than the bridge passes on ({limit} bytes).")


def parse_json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def is_jsonrpc(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) and item.get("jsonrpc") == "2.0" for item in value)
    return isinstance(value, dict) and value.get("jsonrpc") == "2.0"


def client_message_ok(value: Any) -> bool:
    """A request, a notification or a response (a batch of them): what a client may send."""
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(
        isinstance(m, dict) and m.get("jsonrpc") == "2.0"
        and (isinstance(m.get("method"), str) or ("id" in m and ("result" in m or "error" in m)))
        for m in items)


def refusal_reason(status: int, body: bytes, headers: Any) -> str:
    """What the gateway said about a refusal: its JSON-RPC error, an OAuth-style error, or the start of the text."""
    parsed = parse_json(body) if body else None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:500]
        if isinstance(parsed.get("error_description"), str):
            return parsed["error_description"][:500]
        if isinstance(parsed.get("detail"), str):
            return parsed["detail"][:500]
    challenge = headers.get("WWW-Authenticate", "") if headers is not None else ""
    if 'error_description="' in challenge:
        return challenge.split('error_description="', 1)[1].split('"', 1)[0][:500]
    text = body.decode("utf-8", "replace").strip() if body else ""
    if text.startswith("<"):
        return f"HTTP {status} with an HTML page"
    return text[:200] or f"HTTP {status}"


def gateway_refusal(body: bytes, headers: Any) -> bool:
    """A 401/403 of an MCP endpoint (a challenge, or a JSON error) rather than some web page's (a CSRF check)."""
    return "WWW-Authenticate" in headers or isinstance(parse_json(body), dict)


def auth_failure(status: int, body: bytes, headers: Any, credential: Credential, url: str) -> Fatal:
    reason = refusal_reason(status, body, headers)
    if not credential.key:
        return Fatal(f"The gateway asks for a consumer credential at {shown_url(url)} (HTTP {status}: {reason}). "
                     "Give the key in the MCP_GATEWAY_KEY environment variable (or --key).", EXIT_AUTH)
    if status == 403:
        return Fatal(f"The gateway refused the consumer credential ({credential.hint()}) sent as {credential.where()} "
                     f"to {shown_url(url)}: HTTP 403: {reason}", EXIT_AUTH)
    return Fatal(f"The gateway refused the consumer credential ({credential.hint()}) sent as {credential.where()} "
                 f"to {shown_url(url)}: HTTP {status}: {reason} Check the key, and where the MCP server's Consumer "
                 "Authentication reads it (--header NAME or --query NAME when not Authorization: Bearer).", EXIT_AUTH)


def unreachable(url: str, exc: BaseException) -> Broken:
    parts = urlsplit(url)
    reason = getattr(exc, "os_error", None) or exc
    errno = getattr(reason, "errno", None)
    text = (os.strerror(errno).lower() if errno else str(reason)) or exc.__class__.__name__
    return Broken(f"Cannot reach the gateway at {parts.scheme}://{parts.netloc}: {text}.")


def error_message(msg_id: Any, code: int, message: str, data: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": error}


def request_ids(message: Any) -> list[Any]:
    items = message if isinstance(message, list) else [message]
    return [m["id"] for m in items if isinstance(m, dict) and "method" in m and m.get("id") is not None]


# ---------------------------------------------------------------- transports


class Streamable:
    """Streamable HTTP (2025-03-26 and later): one POST per message, answers as JSON or an event stream, and a GET
    stream for what the server sends on its own."""

    name = "Streamable HTTP"

    def __init__(self, relay: "Relay", url: str) -> None:
        self.relay = relay
        self.url = url
        self.session_id: str | None = None
        self.version: str | None = None
        self.gone = False
        self._listener: asyncio.Task | None = None

    def _headers(self, message: Any = None, *, accept: str = "application/json, text/event-stream") -> dict:
        headers = {"Accept": accept, **self.relay.credential.headers()}
        if message is not None:
            headers["Content-Type"] = "application/json"
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        params = message.get("params") if isinstance(message, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        stateless = meta.get(META_VERSION) if isinstance(meta, dict) else None
        if isinstance(stateless, str) and not self.session_id:
            # A stateless request names its revision, method and target in headers too.
            headers["MCP-Protocol-Version"] = stateless
            headers["Mcp-Method"] = str(message.get("method", ""))
            named = NAMED_BY.get(message.get("method"))
            if named and isinstance(params.get(named), str):
                headers["Mcp-Name"] = params[named]
        elif self.version:
            headers["MCP-Protocol-Version"] = self.version
        return headers

    async def open(self, initialize: dict) -> None:
        self.session_id, self.version, self.gone = None, None, False
        await self.post(initialize, opening=True)

    async def post(self, message: Any, *, opening: bool = False) -> None:
        relay = self.relay
        sent_session = self.session_id
        try:
            resp = await relay.http.post(relay.credential.apply(self.url), data=json.dumps(message).encode(),
                                         headers=self._headers(message), allow_redirects=False)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise unreachable(self.url, exc) from None
        except aiohttp.ClientError as exc:
            raise Broken(f"The connection to the gateway broke: {exc.__class__.__name__}.") from None
        async with resp:
            status = resp.status
            ctype = resp.headers.get("Content-Type", "")
            if status in (401, 403):
                body = await read_body(resp, 64 * 1024)
                if opening and not gateway_refusal(body, resp.headers):
                    raise NotThere(f"HTTP {status}: {refusal_reason(status, body, None)}")
                raise auth_failure(status, body, resp.headers, relay.credential, self.url)
            if opening and (status in (404, 405) or 300 <= status < 400):
                raise NotThere(f"HTTP {status}: {refusal_reason(status, await read_body(resp, 64 * 1024), None)}")
            if status == 404 and sent_session:
                raise SessionGone()
            if opening and resp.headers.get("Mcp-Session-Id"):
                self.session_id = resp.headers["Mcp-Session-Id"]
            if status in (202, 204):
                return
            try:
                if status == 200 and "text/event-stream" in ctype:
                    async for event, data, _ in sse_events(resp, relay.max_bytes):
                        if event == "message" and data.strip():
                            relay.deliver_text(data)
                    return
                body = await read_body(resp, relay.max_bytes)
            except aiohttp.ClientError as exc:
                raise Broken(f"The connection to the gateway broke mid-answer: {exc.__class__.__name__}.") from None
            parsed = parse_json(body)
            if status == 200 and is_jsonrpc(parsed):
                relay.deliver(parsed)
                return
            if opening and not is_jsonrpc(parsed):
                if status >= 500:  # a proxy or load balancer in the way, or the gateway down: not a missing endpoint
                    raise Broken(f"The gateway answered HTTP {status} at {shown_url(self.url)}: "
                                 f"{refusal_reason(status, body, None)}.")
                raise NotThere(f"HTTP {status} ({ctype or 'no content type'}), not a JSON-RPC answer")
            relay.answer_failed(message, status, parsed, body)

    def start_listening(self) -> None:
        if self._listener is not None:
            self._listener.cancel()  # a stream of an earlier session, perhaps waiting to reconnect
        self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        relay = self.relay
        backoff = 1.0
        session = self.session_id
        while self.session_id == session and not self.gone:
            try:
                async with relay.http.get(relay.credential.apply(self.url), allow_redirects=False,
                                          headers=self._headers(accept="text/event-stream")) as resp:
                    if resp.status in (401, 403):
                        relay.fail(auth_failure(resp.status, await read_body(resp, 64 * 1024), resp.headers,
                                                relay.credential, self.url))
                        return
                    if resp.status == 404 and session:
                        self.gone = True
                        relay.session_lost(session)
                        return
                    if resp.status != 200 or "text/event-stream" not in resp.headers.get("Content-Type", ""):
                        return  # 405: this server sends everything on the answers to POSTs
                    backoff = 1.0
                    async for event, data, _ in sse_events(resp, relay.max_bytes):
                        if event == "message" and data.strip():
                            relay.deliver_text(data)
            except (aiohttp.ClientError, asyncio.TimeoutError, Broken) as exc:
                log.debug("Listening stream ended: %s", exc.__class__.__name__)  # no URL: it may hold the key
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        if self.session_id and not self.gone:
            try:
                async with self.relay.http.delete(self.relay.credential.apply(self.url), headers=self._headers(),
                                                  timeout=aiohttp.ClientTimeout(total=2)):
                    pass
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass  # the session expires on the gateway by itself


class LegacySse:
    """HTTP+SSE (2024-11-05): a GET event stream announces where to POST; every answer comes on the stream."""

    name = "HTTP+SSE (2024-11-05)"
    version = None

    def __init__(self, relay: "Relay", url: str) -> None:
        self.relay = relay
        self.url = url
        self.post_url: str | None = None
        self.session_id: str | None = None
        self.gone = False
        self._reader: asyncio.Task | None = None

    async def open(self, initialize: dict) -> None:
        await self.connect()
        await self.post(initialize, opening=True)

    async def connect(self) -> None:
        relay = self.relay
        if self._reader is not None:
            self._reader.cancel()
        self.gone = False
        try:
            resp = await relay.http.get(relay.credential.apply(self.url), allow_redirects=False,
                                        headers={"Accept": "text/event-stream", **relay.credential.headers()})
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise unreachable(self.url, exc) from None
        except aiohttp.ClientError as exc:
            raise Broken(f"The connection to the gateway broke: {exc.__class__.__name__}.") from None
        if resp.status in (401, 403):
            body = await read_body(resp, 64 * 1024)
            resp.release()
            if not gateway_refusal(body, resp.headers):
                raise NotThere(f"HTTP {resp.status}: {refusal_reason(resp.status, body, None)}")
            raise auth_failure(resp.status, body, resp.headers, relay.credential, self.url)
        if resp.status != 200 or "text/event-stream" not in resp.headers.get("Content-Type", ""):
            body = await read_body(resp, 64 * 1024) if resp.status != 200 else b""
            resp.release()
            raise NotThere(f"HTTP {resp.status}: {refusal_reason(resp.status, body, None)}" if resp.status != 200
                           else f"HTTP 200 ({resp.headers.get('Content-Type', 'no content type')}), not an event stream")
        events = sse_events(resp, relay.max_bytes)
        try:
            event, data, _ = await asyncio.wait_for(anext(events), relay.connect_timeout)
        except (StopAsyncIteration, asyncio.TimeoutError, aiohttp.ClientError, Broken):
            resp.release()
            raise NotThere("the event stream announced no endpoint") from None
        if event != "endpoint":
            resp.release()
            raise NotThere(f"the event stream's first event is {event!r}, not the endpoint")
        self.post_url = relay.credential.apply(urljoin(self.url, data.strip()))
        self.session_id = self.post_url
        self._reader = asyncio.create_task(self._read(resp, events, self.session_id))

    async def _read(self, resp: aiohttp.ClientResponse, events: AsyncIterator, session: str) -> None:
        try:
            async for event, data, _ in events:
                if event == "message" and data.strip():
                    self.relay.deliver_text(data)
        except (aiohttp.ClientError, asyncio.TimeoutError, Broken) as exc:
            log.debug("Event stream ended: %s", exc.__class__.__name__)
        finally:
            resp.release()
        if self.session_id == session:
            self.gone = True
            self.relay.session_lost(session)

    async def post(self, message: Any, *, opening: bool = False) -> None:
        relay = self.relay
        if self.gone or self.post_url is None:
            raise SessionGone()
        try:
            resp = await relay.http.post(self.post_url, data=json.dumps(message).encode(), allow_redirects=False,
                                         headers={"Content-Type": "application/json", **relay.credential.headers()})
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise unreachable(self.post_url, exc) from None
        except aiohttp.ClientError as exc:
            raise Broken(f"The connection to the gateway broke: {exc.__class__.__name__}.") from None
        async with resp:
            if resp.status in (401, 403):
                raise auth_failure(resp.status, await read_body(resp, 64 * 1024), resp.headers, relay.credential,
                                   self.url)
            if resp.status == 404:
                self.gone = True
                raise SessionGone()
            if 200 <= resp.status < 300:
                return
            body = await read_body(resp, 64 * 1024)
            relay.answer_failed(message, resp.status, parse_json(body), body)

    async def close(self) -> None:
        self.gone = True
        if self._reader is not None:
            self._reader.cancel()


# ---------------------------------------------------------------- the relay


class Relay:
    """Reads the stdio client's messages, sends each to the gateway, writes what comes back."""

    def __init__(self, *, url: str, credential: Credential, out: Stdout, transport: str = "auto",
                 connect_timeout: float = 10.0, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.url = url
        self.credential = credential
        self.out = out
        self.choice = transport
        self.connect_timeout = connect_timeout
        self.max_bytes = max_bytes
        self.http: aiohttp.ClientSession | None = None
        self.transport: Streamable | LegacySse | None = None
        self.init_message: dict | None = None
        self.renewals = 0
        self._lock = asyncio.Lock()
        self._opening: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()
        self._internal: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._id_prefix = "mcp-gateway-local-" + secrets.token_hex(4) + "-"
        self._done: asyncio.Future | None = None
        self._log_level: dict | None = None
        self._subscriptions: dict[str, dict] = {}
        self._candidate: Streamable | LegacySse | None = None  # the transport opening, before it is `transport`
        self._awaiting_init = False

    # ------------------------------------------------------------ running

    async def run(self, lines: StdinLines) -> int:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_connect=self.connect_timeout)
        # trust_env: company laptops reach the gateway through HTTPS_PROXY / HTTP_PROXY (NO_PROXY honoured).
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT},
                                         trust_env=True) as self.http:
            reader = asyncio.create_task(self._read(lines))
            await asyncio.wait({reader, self._done}, return_when=asyncio.FIRST_COMPLETED)
            if not self._done.done() and self._tasks:
                # stdin closed: the client is done; what it sent last still goes out, briefly
                await asyncio.wait(set(self._tasks), timeout=1.0)
            reader.cancel()
            for task in list(self._tasks):
                task.cancel()
            if self.transport is not None:
                await self.transport.close()
        return self._done.result() if self._done.done() else EXIT_OK

    def stop(self, code: int = EXIT_OK) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(code)

    def fail(self, failure: Fatal) -> None:
        if self._done is not None and not self._done.done():
            log.error("%s", failure.message)
            self._done.set_result(failure.code)

    async def _read(self, lines: StdinLines) -> None:
        async for line in lines.lines():
            if isinstance(line, TooLong):
                log.warning("Dropped a message of %d bytes from the client: larger than --max-message-bytes (%d).",
                            line.size, self.max_bytes)
                self.out.write(error_message(line.msg_id, INVALID_REQUEST, f"Invalid request: a message of "
                                             f"{line.size} bytes or more is larger than the bridge passes on "
                                             f"({self.max_bytes} bytes)."))
                continue
            message = parse_json(line)
            if message is None and line.strip() != b"null":
                self.out.write(error_message(None, PARSE_ERROR, "Parse error: the line is not JSON."))
                continue
            if not client_message_ok(message):
                msg_id = message.get("id") if isinstance(message, dict) else None
                self.out.write(error_message(msg_id if isinstance(msg_id, (str, int)) else None, INVALID_REQUEST,
                                             "Invalid request: not a JSON-RPC 2.0 request, notification or response."))
                continue
            task = asyncio.create_task(self._forward(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ client → gateway

    async def _forward(self, message: Any) -> None:
        try:
            if isinstance(message, dict) and message.get("method") == "initialize" and "id" in message:
                await self._open_for_client(message)
                return
            if self._opening is not None and not self._opening.done():
                await asyncio.wait({self._opening})
            if self.transport is None:
                await self._open_without_initialize()
                if self.transport is None:
                    self.answer_failed(message, 0, None, b"", reason="The gateway could not be reached.")
                    return
            self._remember(message)
            await self._send(message)
            if isinstance(message, dict) and message.get("method") == "notifications/initialized" and \
                    isinstance(self.transport, Streamable):
                self.transport.start_listening()
        except Fatal as exc:
            self.answer_failed(message, 0, None, b"", reason=exc.message)
            self.fail(exc)

    async def _send(self, message: Any) -> None:
        transport = self.transport
        session = transport.session_id
        try:
            try:
                await transport.post(message)
            except SessionGone:
                if self.init_message is None:
                    self.answer_failed(message, 404, None, b"", reason="The gateway ended the session.")
                    return
                if not await self._renew(session):
                    self.answer_failed(message, 404, None, b"", reason="The gateway ended the session and no new "
                                                                       "one could be opened; see the bridge's log.")
                    return
                try:
                    await self.transport.post(message)
                except SessionGone:
                    self.answer_failed(message, 404, None, b"", reason="The gateway ended the session again right "
                                                                       "after it was renewed.")
        except Broken as exc:
            log.warning("%s", exc)
            self.answer_failed(message, 0, None, b"", reason=str(exc))

    def _remember(self, message: Any) -> None:
        """What a renewed session must be told again: the logging level and the resource subscriptions."""
        if not isinstance(message, dict):
            return
        method, params = message.get("method"), message.get("params")
        if method == "logging/setLevel" and isinstance(params, dict):
            self._log_level = params
        elif method == "resources/subscribe" and isinstance(params, dict) and isinstance(params.get("uri"), str):
            if len(self._subscriptions) < 1000:
                self._subscriptions[params["uri"]] = params
        elif method == "resources/unsubscribe" and isinstance(params, dict):
            self._subscriptions.pop(params.get("uri"), None)

    # ------------------------------------------------------------ opening and renewing the remote session

    async def _open_for_client(self, message: dict) -> None:
        self.init_message = message
        self._awaiting_init = True
        async with self._lock:
            self._opening = asyncio.get_running_loop().create_future()
            if self.transport is not None:  # the client starts over: the old remote session goes
                await self.transport.close()
                self.transport = None
            try:
                self.transport = await self._open(message)
            except Fatal as exc:
                self.answer_failed(message, 0, None, b"", reason=exc.message)
                self.fail(exc)
            except Broken as exc:
                failure = Fatal(str(exc), EXIT_UNREACHABLE)
                self.answer_failed(message, 0, None, b"", reason=failure.message)
                self.fail(failure)
            finally:
                self._opening.set_result(None)

    async def _open(self, initialize: dict) -> Streamable | LegacySse:
        choice = self.choice
        if choice == "auto":
            choice = "sse" if urlsplit(self.url).path.rstrip("/").endswith("/sse") else "streamable-http"
        if choice == "sse":
            transport = self._candidate = LegacySse(self, self.url)
            try:
                await transport.open(initialize)
            except NotThere as exc:
                raise Fatal(f"{shown_url(self.url)} is not an MCP endpoint: HTTP+SSE: {exc}.", EXIT_NOT_MCP) from None
            return transport
        transport = self._candidate = Streamable(self, self.url)
        try:
            await transport.open(initialize)
            return transport
        except NotThere as exc:
            if self.choice != "auto":
                raise Fatal(f"{shown_url(self.url)} is not an MCP endpoint: Streamable HTTP: {exc}.",
                            EXIT_NOT_MCP) from None
            streamable_said = exc
        tried = []
        for sse_url in (self.url.rstrip("/") + "/sse", self.url):
            legacy = self._candidate = LegacySse(self, sse_url)
            try:
                await legacy.open(initialize)
            except NotThere as exc:
                tried.append(f"HTTP+SSE at {shown_url(sse_url)}: {exc}")
                continue
            log.info("%s does not serve Streamable HTTP (%s); using HTTP+SSE at %s.", shown_url(self.url),
                     streamable_said, shown_url(sse_url))
            return legacy
        raise Fatal(f"{shown_url(self.url)} is not an MCP endpoint: Streamable HTTP: {streamable_said}; "
                    + "; ".join(tried) + ".", EXIT_NOT_MCP)

    async def _open_without_initialize(self) -> None:
        """A client that never initializes (stateless 2026-07-28 requests) still needs a transport."""
        async with self._lock:
            if self.transport is not None:
                return
            if urlsplit(self.url).path.rstrip("/").endswith("/sse") or self.choice == "sse":
                legacy = LegacySse(self, self.url)
                try:
                    await legacy.connect()
                except (NotThere, Broken) as exc:
                    log.warning("%s", exc)
                    return
                self.transport = legacy
            else:
                self.transport = Streamable(self, self.url)

    def session_lost(self, session: str) -> None:
        """The gateway ended the session while the client was quiet: renew it now, so server-initiated messages
        (list_changed, resource updates) keep coming."""
        if self.init_message is None or self._done is None or self._done.done():
            return

        async def renew() -> None:
            try:
                await self._renew(session, quiet_wait=1.0)
            except Fatal as exc:
                self.fail(exc)

        task = asyncio.create_task(renew())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renew(self, session: str | None, *, quiet_wait: float = 0.0) -> bool:
        """A new remote session, opened with the client's own initialize; True once it is there."""
        if quiet_wait:
            await asyncio.sleep(quiet_wait * min(2 ** self.renewals, 30))
        async with self._lock:
            transport = self.transport
            if transport.session_id != session and not transport.gone:
                return True  # another message renewed it meanwhile
            msg_id = self._id_prefix + str(next(self._ids))
            try:
                answer = await self._internal_request({**self.init_message, "id": msg_id}, opening=True)
            except (NotThere, Broken, SessionGone, asyncio.TimeoutError) as exc:
                log.warning("The gateway ended the session and a new one could not be opened: %s",
                            exc or exc.__class__.__name__)
                return False
            if not isinstance(answer.get("result"), dict):
                log.warning("The gateway ended the session and refused a new one: %s",
                            (answer.get("error") or {}).get("message"))
                return False
            if isinstance(transport, Streamable):
                transport.version = answer["result"].get("protocolVersion") or transport.version
            try:
                await transport.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
                if self._log_level is not None:
                    await self._internal_request({"jsonrpc": "2.0", "method": "logging/setLevel",
                                                  "params": self._log_level})
                for params in list(self._subscriptions.values()):
                    await self._internal_request({"jsonrpc": "2.0", "method": "resources/subscribe", "params": params})
            except (Broken, SessionGone, asyncio.TimeoutError) as exc:
                log.warning("The renewed session did not take what the old one knew: %s", exc)
            self.renewals += 1
            if isinstance(transport, Streamable):
                transport.start_listening()
            log.info("The gateway ended the session; a new one is open (renewal %d).", self.renewals)
            return True

    async def _internal_request(self, message: dict, *, opening: bool = False) -> dict:
        """A request of the bridge's own (never shown to the client); its answer."""
        if "id" not in message:
            message = {**message, "id": self._id_prefix + str(next(self._ids))}
        waiter = asyncio.get_running_loop().create_future()
        self._internal[message["id"]] = waiter
        try:
            if opening:
                await self.transport.open(message)
            else:
                await self.transport.post(message)
            return await asyncio.wait_for(waiter, timeout=max(self.connect_timeout * 3, 10.0))
        finally:
            self._internal.pop(message["id"], None)

    # ------------------------------------------------------------ gateway → client

    def deliver_text(self, data: str) -> None:
        message = parse_json(data)
        if message is None:
            log.warning("The gateway sent an event that is not JSON; dropped.")
            return
        self.deliver(message)

    def deliver(self, message: Any) -> None:
        if isinstance(message, dict) and "method" not in message:
            waiter = self._internal.get(message.get("id")) if isinstance(message.get("id"), str) else None
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(message)
                return
            if self._awaiting_init and self.init_message is not None and \
                    message.get("id") == self.init_message.get("id"):
                self._awaiting_init = False
                self._initialized(message)
        try:
            self.out.write(message)
        except (BrokenPipeError, ValueError):
            self.stop(EXIT_OK)  # the client went away

    def _initialized(self, answer: dict) -> None:
        result = answer.get("result")
        if isinstance(result, dict):
            if isinstance(self._candidate, Streamable) and isinstance(result.get("protocolVersion"), str):
                self._candidate.version = result["protocolVersion"]
            return
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        reason = str(error.get("message", ""))
        if "egress policy" in reason:
            self.fail(Fatal(f"The gateway's egress policy refused the connection to the MCP server's backend: "
                            f"{reason}", EXIT_EGRESS))
        else:
            log.warning("The gateway answered initialize with an error: %s", reason)

    def answer_failed(self, message: Any, status: int, parsed: Any, raw: bytes, *, reason: str = "") -> None:
        """An exchange that brought no JSON-RPC answer: each request in it gets an error the client can show."""
        error = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]  # the gateway's own JSON-RPC error (a 400, a 429, a 503 …)
        if error is None:
            text = reason or (f"The gateway answered HTTP {status}: {refusal_reason(status, raw, None)}" if status
                              else "The gateway did not answer.")
            error = {"code": INTERNAL_ERROR, "message": text}
        ids = request_ids(message)
        if not ids:
            log.warning("The gateway did not take a message: %s", error.get("message"))
            return
        for msg_id in ids:
            try:
                self.out.write({"jsonrpc": "2.0", "id": msg_id, "error": error})
            except (BrokenPipeError, ValueError):
                self.stop(EXIT_OK)

