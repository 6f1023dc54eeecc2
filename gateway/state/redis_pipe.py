"""A pipelined Redis connection speaking RESP itself, for the rate-limit script run on every tools/call."""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from redis.asyncio.connection import parse_url

from django.conf import settings

from .outage import StateUnavailable



def _timeout() -> float:
    """Seconds a connection or a reply may take before it is given up (the gateway's one Redis timeout)."""
    return settings.REDIS_TIMEOUT_SECONDS


class ReplyError(Exception):
    """Redis answered with an error (e.g. NOSCRIPT)."""


def plain_tcp(url: str) -> dict[str, Any] | None:
    """host, port, db, username, password of a redis:// URL; None for TLS or a Unix socket (redis-py serves those)."""
    options = parse_url(url)
    if "connection_class" in options or "path" in options:
        return None
    return options


def _command(*parts: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def _parse(buffer: bytearray, at: int) -> tuple[Any, int]:
    """One RESP2 reply from buffer[at:], and where the next one starts; _Incomplete when it has not all arrived."""
    end = buffer.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete
    kind, rest = buffer[at:at + 1], bytes(buffer[at + 1:end])
    at = end + 2
    if kind == b"+":
        return rest, at
    if kind == b"-":
        return ReplyError(rest.decode(errors="replace")), at
    if kind == b":":
        return int(rest), at
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None, at
        if len(buffer) < at + size + 2:
            raise _Incomplete
        return bytes(buffer[at:at + size]), at + size + 2
    if kind == b"*":
        count = int(rest)
        if count < 0:
            return None, at
        items = []
        for _ in range(count):
            item, at = _parse(buffer, at)
            items.append(item)
        return items, at
    raise ConnectionError(f"unexpected reply from Redis: {bytes(buffer[at - 2 - len(rest) - 1:end])[:40]!r}")


class _Protocol(asyncio.Protocol):
    """Replies parsed as the bytes arrive, each completing the oldest waiting command: no reader task, no await per
    line."""

    def __init__(self, pipe: "Pipe") -> None:
        self.pipe = pipe
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.hello: collections.deque[asyncio.Future] | None = None  # AUTH / SELECT answers while opening

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        at = 0
        try:
            while at < len(buffer):
                try:
                    answer, at = _parse(buffer, at)
                except _Incomplete:
                    break
                waiting = self.hello if self.hello else self.pipe._waiting
                if not waiting:
                    raise ConnectionError("a reply from Redis that no command asked for")
                entry = waiting.popleft()
                future = entry if isinstance(entry, asyncio.Future) else entry[0]
                if not future.done():
                    future.set_result(answer)
        except (ConnectionError, ValueError) as exc:
            self.pipe._fail(self, f"Redis connection lost ({exc}).")
            return
        del buffer[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe._fail(self, f"Redis connection lost ({exc or 'closed'}).")


class Pipe:
    """One connection; commands are written as they come and their replies matched in order (Redis answers a
    connection's commands in the order sent). redis-py's asyncio client spends about 120 µs of CPU on a command,
    a quarter of a whole tool call; this spends about 25. A connection that fails or stalls fails every waiting command with
    StateUnavailable and is opened again by the next one."""

    def __init__(self, options: dict[str, Any]):
        self._options = options
        self._protocol: _Protocol | None = None
        self._waiting: collections.deque[tuple[asyncio.Future, float]] = collections.deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> None:
        options = self._options
        loop = asyncio.get_running_loop()
        protocol: _Protocol | None = None
        try:
            _, protocol = await asyncio.wait_for(loop.create_connection(
                lambda: _Protocol(self), options.get("host", "localhost"), options.get("port", 6379)), _timeout())
            hello = []
            if options.get("password"):
                auth = [options["username"], options["password"]] if options.get("username") else [options["password"]]
                hello.append(_command("AUTH", *auth))
            if options.get("db"):
                hello.append(_command("SELECT", str(options["db"])))
            if hello:
                protocol.hello = collections.deque(loop.create_future() for _ in hello)
                answers = list(protocol.hello)
                protocol.transport.write(b"".join(hello))
                for answer in answers:
                    reply = await asyncio.wait_for(answer, _timeout())
                    if isinstance(reply, ReplyError):
                        protocol.transport.close()
                        raise StateUnavailable(f"Redis refused the connection: {reply}")
                protocol.hello = None
        except (OSError, asyncio.TimeoutError, ConnectionError, StateUnavailable) as exc:
            if protocol is not None and protocol.transport is not None:
                protocol.transport.close()
            if isinstance(exc, StateUnavailable):
                raise
            raise StateUnavailable(f"Redis is unreachable ({exc or type(exc).__name__}).") from exc
        self._protocol = protocol

    def _fail(self, protocol: _Protocol, message: str) -> None:
        if self._protocol is protocol:
            self._protocol = None
        if protocol.transport is not None:
            protocol.transport.close()
        for future in protocol.hello or ():
            if not future.done():
                future.set_exception(StateUnavailable(message))
        if self._protocol is None:
            while self._waiting:
                future, _ = self._waiting.popleft()
                if not future.done():
                    future.set_exception(StateUnavailable(message))

    def _check_stall(self) -> None:
        self._watchdog = None
        protocol = self._protocol
        if protocol is None or not self._waiting:
            return
        if time.monotonic() - self._waiting[0][1] > _timeout():
            self._fail(protocol, f"Redis did not answer within {_timeout():g} s.")
            return
        self._watchdog = asyncio.get_running_loop().call_later(1.0, self._check_stall)

    async def call(self, *parts: bytes | str) -> Any:
        if self._protocol is None:
            async with self._lock:
                if self._protocol is None:
                    await self._open()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((future, time.monotonic()))
        self._protocol.transport.write(_command(*parts))
        if self._watchdog is None:
            self._watchdog = loop.call_later(1.0, self._check_stall)
        return await future

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            self._fail(protocol, "Redis connection closed.")
