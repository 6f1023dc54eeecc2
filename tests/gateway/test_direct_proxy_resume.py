"""Direct Proxy resuming a backend's broken event streams with Last-Event-ID (MCP 2025-11-25 resumability)."""
from __future__ import annotations

import asyncio
import json

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .mcp_backends import Backend
from .test_direct_proxy import Client, make_proxy, text_of

pytestmark = pytest.mark.live

SESSION = "resume-session"
TOOL = {"name": "flaky", "description": "Answers on a resumed stream.", "inputSchema": {"type": "object"}}


def event(data: dict | None, event_id: str) -> bytes:
    return f"id: {event_id}\ndata: {json.dumps(data) if data is not None else ''}\n\n".encode()


def resuming_backend() -> tuple[Backend, list[dict]]:
    """A session backend whose tools/call stream breaks after its priming event, answering on the GET that resumes
    it; its listening stream breaks once after a message and replays from the Last-Event-ID it is given."""
    gets: list[dict] = []
    pending: dict[str, dict] = {}  # event id the answer follows -> the answer

    async def endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            return Response(status_code=204)
        if request.method == "GET":
            last = request.headers.get("last-event-id")
            gets.append({"last": last, "session": request.headers.get("mcp-session-id")})
            if last in pending:
                answer = pending.pop(last)

                async def resumed():
                    yield event(answer, "call-2")
                return StreamingResponse(resumed(), media_type="text/event-stream")
            if last is None:
                async def first():
                    yield event({"jsonrpc": "2.0", "method": "notifications/message",
                                 "params": {"level": "info", "data": "before the break"}}, "listen-1")
                return StreamingResponse(first(), media_type="text/event-stream")  # ends: the stream breaks

            async def replay():
                yield event({"jsonrpc": "2.0", "method": "notifications/message",
                             "params": {"level": "info", "data": f"replayed after {last}"}}, "listen-2")
                await asyncio.sleep(30)
            return StreamingResponse(replay(), media_type="text/event-stream")
        message = json.loads(await request.body())
        if "id" not in message:
            return Response(status_code=202)
        msg_id, method = message["id"], message["method"]
        if method == "initialize":
            return JSONResponse({"jsonrpc": "2.0", "id": msg_id, "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}, "logging": {}},
                "serverInfo": {"name": "resuming", "version": "1"}}}, headers={"mcp-session-id": SESSION})
        if method == "tools/list":
            return JSONResponse({"jsonrpc": "2.0", "id": msg_id, "result": {"tools": [TOOL]}})
        if method == "tools/call":
            pending["call-1"] = {"jsonrpc": "2.0", "id": msg_id, "result": {
                "content": [{"type": "text", "text": "answered on the resumed stream"}]}}

            async def broken():
                yield event(None, "call-1")  # priming event, then the stream ends before the answer
            return StreamingResponse(broken(), media_type="text/event-stream")
        return JSONResponse({"jsonrpc": "2.0", "id": msg_id, "result": {}})

    app = Starlette(routes=[Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"])])
    return Backend(app, "/mcp").start(), gets


@pytest.fixture
def backend():
    started, gets = resuming_backend()
    yield started, gets
    started.stop()


async def test_a_broken_answer_stream_and_a_broken_listening_stream_are_resumed(demo_server, api, backend):
    started, gets = backend
    server = make_proxy(api, started, "streamable_http")
    client = Client()
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with client.session(read, write) as session:
            await session.initialize()
            result = await session.call_tool("flaky", {})
            assert text_of(result) == "answered on the resumed stream"
            for _ in range(100):
                if "replayed after listen-1" in client.logs:
                    break
                await asyncio.sleep(0.1)
    # (The message before the break may reach the gateway before the client's own stream is open; the replay
    # after the reconnection is what resuming is about.)
    assert "replayed after listen-1" in client.logs
    assert {"last": "call-1", "session": SESSION} in gets
    assert {"last": "listen-1", "session": SESSION} in gets
