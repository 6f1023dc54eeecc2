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


async def _reply(reader: asyncio.StreamReader) -> Any:
    line = await reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return ReplyError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = await reader.readexactly(size + 2)
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [await _reply(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected reply from Redis: {line[:40]!r}")


class Pipe:
    """One connection; commands are written as they come and their replies matched in order (Redis answers a
    connection's commands in the order sent). redis-py's asyncio client spends about 120 µs of CPU on a command,
    a quarter of a whole tool call; this spends about 25. A connection that fails or stalls fails every waiting command with
    StateUnavailable and is opened again by the next one."""

    def __init__(self, options: dict[str, Any]):
        self._options = options
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: collections.deque[tuple[asyncio.Future, float]] = collections.deque()
        self._reader_task: asyncio.Task | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> None:
        options = self._options
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(options.get("host", "localhost"), options.get("port", 6379)), _timeout())
            hello = []
            if options.get("password"):
                auth = [options["username"], options["password"]] if options.get("username") else [options["password"]]
                hello.append(_command("AUTH", *auth))
            if options.get("db"):
                hello.append(_command("SELECT", str(options["db"])))
            if hello:
                writer.write(b"".join(hello))
                for _ in hello:
                    answer = await asyncio.wait_for(_reply(reader), _timeout())
                    if isinstance(answer, ReplyError):
                        writer.close()
                        raise StateUnavailable(f"Redis refused the connection: {answer}")
        except (OSError, asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            raise StateUnavailable(f"Redis is unreachable ({exc or type(exc).__name__}).") from exc
        self._writer = writer
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader, writer))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                answer = await _reply(reader)
                future, _ = self._waiting.popleft()
                if not future.done():
                    future.set_result(answer)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self._fail(writer, f"Redis connection lost ({exc or type(exc).__name__}).")
        except asyncio.CancelledError:
            self._fail(writer, "Redis connection closed.")
            raise

    def _fail(self, writer: asyncio.StreamWriter, message: str) -> None:
        if self._writer is writer:
            self._writer = None
        writer.close()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(StateUnavailable(message))

    def _check_stall(self) -> None:
        self._watchdog = None
        writer = self._writer
        if writer is None or not self._waiting:
            return
        if time.monotonic() - self._waiting[0][1] > _timeout():
            if self._reader_task is not None:
                self._reader_task.cancel()
            self._fail(writer, f"Redis did not answer within {_timeout():g} s.")
            return
        self._watchdog = asyncio.get_running_loop().call_later(1.0, self._check_stall)

    async def call(self, *parts: bytes | str) -> Any:
        if self._writer is None:
            async with self._lock:
                if self._writer is None:
                    await self._open()
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((future, time.monotonic()))
        self._writer.write(_command(*parts))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(1.0, self._check_stall)
        return await future

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
