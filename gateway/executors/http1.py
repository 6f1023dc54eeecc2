"""The relay's lean HTTP/1.1 client for POSTs to Streamable HTTP backends: pooled keep-alive connections, each new
one opened through the egress policy.

A relayed tools/call is one small POST and one small answer; aiohttp's client spends more CPU on the request and
response objects around that exchange than on the exchange itself, and the gateway's core is what a busy Direct
Proxy runs out of. This client writes a request whose head was built once per backend session, reads the answer's
head in one call, and hands the body over by Content-Length, chunks or until close, within the caller's limits.
Listening streams, SSE backends and everything else keep aiohttp."""
from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections import deque
from typing import Any

from yarl import URL

from .. import egress

HEAD_LIMIT = 64 * 1024  # bytes of status line and headers
IDLE_SECONDS = 30.0  # an idle pooled connection is closed after this long
IDLE_PER_HOST = 256
_CHUNK = 64 * 1024


class ProtocolError(Exception):
    """The backend's answer is not HTTP/1.1 this client can read; the message says what was wrong."""


class ConnectTimeout(asyncio.TimeoutError):
    """No connection within the connect timeout."""


class ReadTimeout(asyncio.TimeoutError):
    """The backend sent nothing for the first-byte timeout."""


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing() and \
            time.monotonic() - self.idle_since < IDLE_SECONDS

    def close(self) -> None:
        self.writer.close()


class _Pool:
    """Idle connections by (scheme, host, port), per event loop: a connection is used by one exchange at a time."""

    def __init__(self) -> None:
        self.idle: dict[tuple, deque[_Connection]] = {}

    def take(self, key: tuple) -> _Connection | None:
        idle = self.idle.get(key)
        while idle:
            connection = idle.pop()  # the most recently used: the likeliest still open
            if connection.usable():
                return connection
            connection.close()
        return None

    def give(self, key: tuple, connection: _Connection) -> None:
        idle = self.idle.setdefault(key, deque())
        if len(idle) >= IDLE_PER_HOST:
            idle.popleft().close()
        connection.idle_since = time.monotonic()
        idle.append(connection)


_pools: dict[int, tuple[asyncio.AbstractEventLoop, _Pool]] = {}
_tls: ssl_module.SSLContext | None = None


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    entry = _pools.get(id(loop))
    if entry is None or entry[0] is not loop:
        for key in [k for k, (other, _) in _pools.items() if other.is_closed()]:
            del _pools[key]
        entry = _pools[id(loop)] = (loop, _Pool())
    return entry[1]


def _tls_context() -> ssl_module.SSLContext:
    global _tls
    if _tls is None:
        _tls = ssl_module.create_default_context()
    return _tls


class Response:
    """Status, lower-cased headers and the body of one answer; `readany()` hands the decoded body over in pieces."""

    def __init__(self, url: URL, key: tuple, connection: _Connection, status: int, headers: dict[str, str],
                 read_timeout: float | None) -> None:
        self.url = url
        self._key = key
        self._connection: _Connection | None = connection
        self.status = status
        self.headers = headers
        self._read_timeout = read_timeout
        self.content = self
        length = headers.get("content-length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if self._chunked:
            self.content_length = None  # chunks win over a length sent beside them
        self._left = self.content_length  # bytes of the body not yet read (by length)
        self._chunk_left = 0  # bytes of the current chunk not yet read
        self._done = status in (204, 304) or self.content_length == 0
        self._reusable = headers.get("connection", "").lower() != "close" and \
            (self.content_length is not None or self._chunked)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/octet-stream").split(";", 1)[0].strip().lower()

    async def _read(self, call) -> bytes:
        return await _within(self._read_timeout, call)

    async def readany(self) -> bytes:
        """The next piece of the body, b"" once it is complete."""
        if self._done:
            return b""
        reader = self._connection.reader
        if self._chunked:
            if self._chunk_left == 0:
                line = await self._read(reader.readuntil(b"\r\n"))
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("a chunk size that is not a number") from None
                if size == 0:
                    while (await self._read(reader.readuntil(b"\r\n"))) != b"\r\n":
                        pass  # trailers: not used
                    self._done = True
                    return b""
                self._chunk_left = size
            data = await self._read(reader.read(min(self._chunk_left, _CHUNK)))
            if not data:
                raise ConnectionResetError("the backend closed the connection inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0 and await self._read(reader.readexactly(2)) != b"\r\n":
                raise ProtocolError("a chunk not followed by CRLF")
            return data
        if self._left is not None:
            data = await self._read(reader.read(min(self._left, _CHUNK)))
            if not data:
                raise ConnectionResetError("the backend closed the connection before the whole body")
            self._left -= len(data)
            self._done = self._left == 0
            return data
        data = await self._read(reader.read(_CHUNK))  # until close
        if not data:
            self._done = True
        return data

    async def read(self) -> bytes:
        """The whole body of an answer that declared its length (the caller checked it against its limit)."""
        if self._left is None:
            chunks = []
            while chunk := await self.readany():
                chunks.append(chunk)
            return b"".join(chunks)
        if self._done:
            return b""
        data = await self._read(self._connection.reader.readexactly(self._left))
        self._left = 0
        self._done = True
        return data

    def release(self) -> None:
        """Back to the pool when the answer was read to its end and the connection may be kept; closed otherwise."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._done and self._reusable:
            _pool().give(self._key, connection)
        else:
            connection.close()


def request_head(method: str, url: URL, headers: dict[str, str]) -> bytes:
    """The request line and headers up to the body's length: built once per backend session and kind of request."""
    target = url.raw_path_qs or "/"
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    if url.explicit_port:
        host = f"{host}:{url.port}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name} carries a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


async def _within(seconds: float | None, call):
    """`call` awaited for at most `seconds` of silence (ReadTimeout), or as long as the caller's own deadline allows
    when None: a timer costs a few per cent of a relayed call, so none is set where it could never fire first."""
    if seconds is None:
        return await call
    # asyncio.timeout, not wait_for: wait_for wraps every read in a task of its own.
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise ReadTimeout() from None


async def post(url: URL, head: bytes, body: bytes, *, connect_timeout: float, read_timeout: float | None) -> Response:
    """Send one request on a pooled (or new) connection; the caller reads the answer and then calls release().

    `read_timeout` bounds the wait for the answer's head and then each read of its body; None leaves both to a
    deadline the caller holds around the whole exchange. A pooled connection the backend closed meanwhile is
    noticed before any byte of an answer arrived, and the request goes once more on a new connection: the backend
    cannot have acted on a request it never read."""
    secure = url.scheme == "https"
    key = (url.scheme, url.raw_host, url.port)
    pool = _pool()
    payload = head + str(len(body)).encode() + b"\r\n\r\n" + body
    for attempt in (0, 1):
        connection = pool.take(key) if attempt == 0 else None
        reused = connection is not None
        if connection is None:
            try:
                reader, writer = await asyncio.wait_for(
                    egress.open_stream(url.raw_host, url.port, ssl=_tls_context() if secure else None,
                                       limit=HEAD_LIMIT), connect_timeout)
            except asyncio.TimeoutError:
                raise ConnectTimeout() from None
            connection = _Connection(reader, writer)
        try:
            connection.writer.write(payload)
            head_bytes = await _within(read_timeout, connection.reader.readuntil(b"\r\n\r\n"))
        except asyncio.IncompleteReadError as exc:
            connection.close()
            if reused and not exc.partial:
                continue  # closed while idle: send again on a fresh connection
            raise ConnectionResetError("the backend closed the connection without answering") from None
        except asyncio.LimitOverrunError:
            connection.close()
            raise ProtocolError(f"the answer's headers are larger than {HEAD_LIMIT} bytes") from None
        except (ConnectionError, OSError):
            connection.close()
            if reused:
                continue
            raise
        except BaseException:
            connection.close()
            raise
        try:
            status, headers = _parse_head(head_bytes)
        except ProtocolError:
            connection.close()
            raise
        if status == 100:
            connection.close()
            raise ProtocolError("an interim 100 answer to a request that did not ask for one")
        return Response(url, key, connection, status, headers, read_timeout)
    raise ConnectionResetError("the backend closed the connection without answering")


def _parse_head(data: bytes) -> tuple[int, dict[str, str]]:
    lines = data.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ProtocolError("an answer that is not HTTP/1.x")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError("a malformed header line")
        name = name.lower()
        value = value.strip()
        if name in headers and name not in ("content-length",):
            headers[name] = headers[name] + ", " + value
        elif name == "content-length" and name in headers and headers[name] != value:
            raise ProtocolError("two different Content-Length headers")
        else:
            headers[name] = value
    return int(parts[1]), headers


def close_all() -> None:
    """Close this loop's idle connections (tests, shutdown)."""
    pool = _pool()
    for idle in pool.idle.values():
        while idle:
            idle.pop().close()
