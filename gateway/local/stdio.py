"""Newline-delimited JSON-RPC on the process's own stdin and stdout: bounded lines in, protocol only out."""
from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator

CHUNK = 64 * 1024
# The id of an over-long line is looked for only near its start, where JSON-RPC writers put it.
_ID_NEAR_START = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,30})')


@dataclass(frozen=True)
class TooLong:
    """A line longer than the bound: dropped, answered with an error naming the id found near its start."""

    size: int
    msg_id: Any


class StdinLines:
    """Lines of stdin, read by a thread (pipes, files and terminals alike) and handed to the loop with backpressure."""

    def __init__(self, max_bytes: int, fd: int = 0) -> None:
        self.max_bytes = max_bytes
        self.fd = fd
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def pump() -> None:
            while True:
                try:
                    chunk = os.read(self.fd, CHUNK)
                except OSError:
                    chunk = b""
                try:
                    asyncio.run_coroutine_threadsafe(self._queue.put(chunk), loop).result()
                except (RuntimeError, asyncio.CancelledError, Exception):  # the loop is gone: the process is ending
                    return
                if not chunk:
                    return

        threading.Thread(target=pump, name="stdin", daemon=True).start()

    async def lines(self) -> AsyncIterator[bytes | TooLong]:
        buf = bytearray()
        discarding = False
        while True:
            chunk = await self._queue.get()
            if not chunk:
                if buf and not discarding:
                    yield bytes(buf)
                return
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if not discarding:
                    if len(buf) + len(piece) > self.max_bytes:
                        yield TooLong(size=len(buf) + len(piece), msg_id=_id_near_start(bytes(buf[:512]) or piece[:512]))
                        buf.clear()
                        discarding = True
                    else:
                        buf += piece
                if end < 0:
                    break
                if not discarding and buf.strip():
                    yield bytes(buf)
                buf.clear()
                discarding = False
                start = end + 1


def _id_near_start(head: bytes) -> Any:
    match = _ID_NEAR_START.search(head)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


class Stdout:
    """The protocol stream. The real stdout is kept for it alone; fd 1 then points at stderr, so a stray print (ours or
    a library's) can never corrupt the protocol."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._file = os.fdopen(os.dup(1), "wb")
        try:
            os.dup2(2, 1)
        except OSError:  # launched without a stderr: stray output goes nowhere rather than into the protocol
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        sys.stdout = sys.stderr

    def write(self, message: Any) -> None:
        try:
            data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        except UnicodeEncodeError:  # a lone surrogate ("\\ud800" in the input) has no UTF-8 form; escape it
            data = json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"
        self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
