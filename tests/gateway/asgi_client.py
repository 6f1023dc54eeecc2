"""An HTTP client that drives the gateway's real ASGI application in-process, streams included.

httpx's ASGITransport waits for the whole response body, so it cannot read an SSE stream that stays open;
this speaks the ASGI HTTP protocol directly: requests in, response start and body chunks out, and an
`http.disconnect` when the caller is done (as a server does when the client goes away).
"""
from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from dataclasses import dataclass
from typing import Any, AsyncIterator


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Stream:
    """An open streamed response: status and headers now, events as they come."""

    def __init__(self, status: int, headers: dict[str, str], outbox: asyncio.Queue):
        self.status = status
        self.headers = headers
        self._outbox = outbox
        self._buffer = b""
        self.ended = False

    async def _more(self, timeout: float) -> bool:
        if self.ended:
            return False
        message = await asyncio.wait_for(self._outbox.get(), timeout)
        self._buffer += message.get("body", b"")
        if not message.get("more_body", False):
            self.ended = True
        return True

    async def event(self, timeout: float = 10.0) -> dict[str, str]:
        """The next SSE event that is not a comment: {"event": …, "data": …, "id": …} (fields present only)."""
        while True:
            while b"\n\n" not in self._buffer:
                if not await self._more(timeout):
                    raise EOFError("the stream ended")
            raw, self._buffer = self._buffer.split(b"\n\n", 1)
            fields: dict[str, str] = {}
            for line in raw.decode().split("\n"):
                if not line or line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = fields[name] + "\n" + value if name in fields else value
            if fields:
                return fields

    @property
    def buffered(self) -> bytes:
        """What has arrived and not been taken as an event yet."""
        return self._buffer

    async def until_seen(self, marker: bytes, count: int, timeout: float = 10.0) -> None:
        """Read on until `marker` (an SSE comment, say) has arrived `count` times; EOFError if the stream ends first."""
        while self._buffer.count(marker) < count:
            if not await self._more(timeout):
                raise EOFError(f"the stream ended after {self._buffer.count(marker)} of {count} {marker!r}")

    async def body(self, timeout: float = 10.0) -> bytes:
        while await self._more(timeout):
            pass
        return self._buffer


class AsgiClient:
    def __init__(self, app, *, host: str = "testserver"):
        self.app = app
        self.host = host
        self._tasks: set[asyncio.Task] = set()

    def _scope(self, method: str, url: str, headers: dict[str, str] | None) -> dict:
        path, _, query = url.partition("?")
        raw = [(b"host", self.host.encode())]
        raw += [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in (headers or {}).items()]
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                "headers": raw, "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 40000)}

    async def _start(self, method: str, url: str, headers: dict[str, str] | None, body: bytes):
        inbox: asyncio.Queue = asyncio.Queue()
        outbox: asyncio.Queue = asyncio.Queue()
        inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        task = asyncio.ensure_future(self.app(self._scope(method, url, headers), inbox.get, outbox.put))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        start = await asyncio.wait_for(outbox.get(), 15)
        assert start["type"] == "http.response.start", start
        names: dict[str, str] = {}
        for name, value in start.get("headers", []):
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            names[key] = f"{names[key]}, {text}" if key in names else text
        return task, inbox, outbox, start["status"], names

    @staticmethod
    async def _finish(task: asyncio.Task, inbox: asyncio.Queue) -> None:
        inbox.put_nowait({"type": "http.disconnect"})
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, json: Any = None,
                      body: bytes = b"") -> Response:
        if json is not None:
            body = jsonlib.dumps(json).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        task, inbox, outbox, status, names = await self._start(method, url, headers, body)
        stream = Stream(status, names, outbox)
        content = await stream.body(15)
        await self._finish(task, inbox)
        return Response(status, names, content)

    async def post(self, url: str, **kw) -> Response:
        return await self.request("POST", url, **kw)

    async def get(self, url: str, **kw) -> Response:
        return await self.request("GET", url, **kw)

    async def delete(self, url: str, **kw) -> Response:
        return await self.request("DELETE", url, **kw)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, headers: dict[str, str] | None = None) -> AsyncIterator[Stream]:
        task, inbox, outbox, status, names = await self._start(method, url, headers, b"")
        try:
            yield Stream(status, names, outbox)
        finally:
            await self._finish(task, inbox)
