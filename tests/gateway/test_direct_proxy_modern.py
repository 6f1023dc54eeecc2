"""Direct Proxy in front of handshake-free (2026-07-28) backends: no backend session, every request standing alone."""
from __future__ import annotations

import itertools
import json

import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .mcp_backends import Backend
from .test_direct_proxy import Client, make_proxy, text_of

pytestmark = pytest.mark.live

MODERN = "2026-07-28"
PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
ECHO = {"name": "echo", "description": "Echo a text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}


def modern_backend(*, handshake: bool) -> tuple[Backend, list[dict]]:
    """A backend speaking 2026-07-28 as its spec says (POST only, headers matching the body, _meta on every request);
    with `handshake` it also answers initialize, as servers offering several revisions do. Records every request."""
    received: list[dict] = []

    def error(msg_id, code: int, message: str, status: int) -> JSONResponse:
        return JSONResponse({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}},
                            status_code=status)

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405)
        message = json.loads(await request.body())
        params = message.get("params") or {}
        meta = params.get("_meta") or {}
        received.append({"method": message.get("method"), "mcp-method": request.headers.get("mcp-method"),
                         "mcp-name": request.headers.get("mcp-name"), "meta": meta,
                         "version": request.headers.get("mcp-protocol-version"),
                         "session": request.headers.get("mcp-session-id")})
        if "id" not in message:
            return Response(status_code=202)
        msg_id, method = message["id"], message.get("method")
        if method == "initialize" and handshake:
            return JSONResponse({"jsonrpc": "2.0", "id": msg_id, "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "dual", "version": "1"}}}, headers={"mcp-session-id": "s-1"})
        if meta.get(PROTOCOL_META) != MODERN or request.headers.get("mcp-protocol-version") != MODERN:
            return error(msg_id, -32022, "Unsupported protocol version", 400)
        if request.headers.get("mcp-method") != method:
            return error(msg_id, -32020, "Header mismatch: Mcp-Method", 400)
        if method == "tools/call" and request.headers.get("mcp-name") != params.get("name"):
            return error(msg_id, -32020, "Header mismatch: Mcp-Name", 400)
        if method == "server/discover":
            result = {"supportedVersions": [MODERN] + (["2025-11-25"] if handshake else []),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "modern", "version": "1"},
                      "instructions": "A handshake-free backend."}
        elif method == "tools/list":
            result = {"tools": [ECHO]}
        elif method == "tools/call":
            capabilities = sorted(meta.get(CAPABILITIES_META) or {})
            result = {"content": [{"type": "text", "text": f"echo: {params['arguments']['text']} "
                                                           f"(client capabilities: {','.join(capabilities)})"}]}
        else:
            return error(msg_id, -32601, f"Method not found: {method}", 404)
        return JSONResponse({"jsonrpc": "2.0", "id": msg_id, "result": result})

    app = Starlette(routes=[Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"])])
    return Backend(app, "/mcp").start(), received


@pytest.fixture
def modern_only():
    backend, received = modern_backend(handshake=False)
    yield backend, received
    backend.stop()


@pytest.fixture
def dual():
    backend, received = modern_backend(handshake=True)
    yield backend, received
    backend.stop()


async def test_session_clients_in_front_of_a_backend_that_only_speaks_2026(demo_server, api, modern_only):
    backend, received = modern_only
    server = make_proxy(api, backend, "streamable_http")
    connections = {"streamable_http": lambda: streamable_http_client(demo_server.url + server["endpoints"]
                                                                     ["streamable_http"]),
                   "sse": lambda: sse_client(demo_server.url + server["endpoints"]["sse"])}
    for transport, connect in connections.items():
        async with connect() as streams:
            async with Client().session(streams[0], streams[1]) as session:
                initialized = await session.initialize()
                assert initialized.server_info.name == "modern"
                assert initialized.instructions == "A handshake-free backend."
                assert [tool.name for tool in (await session.list_tools()).tools] == ["echo"]
                called = await session.call_tool("echo", {"text": transport})
                # The client's own capabilities (it declared sampling, elicitation and roots) reach the backend.
                assert text_of(called) == f"echo: {transport} (client capabilities: elicitation,roots,sampling)"
    # The first session learns that the backend refuses initialize; the next one goes straight to server/discover.
    methods = [r["method"] for r in received]
    assert methods == ["initialize", "server/discover", "tools/list", "tools/call",
                       "server/discover", "tools/list", "tools/call"]
    modern = received[1:]
    assert all(r["version"] == MODERN and r["meta"][PROTOCOL_META] == MODERN and r["session"] is None
               for r in modern)
    calls = [r for r in received if r["method"] == "tools/call"]
    assert [(r["mcp-method"], r["mcp-name"]) for r in calls] == [("tools/call", "echo")] * 2


async def test_stateless_clients_are_relayed_as_standalone_requests(demo_server, api, dual):
    """A backend that speaks both: handshake-free clients' requests go to it handshake-free, each on its own, with
    no backend session opened for them; clients with a session still get one."""
    backend, received = dual
    server = make_proxy(api, backend, "streamable_http")
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            discovered = await session.discover()
            assert MODERN in discovered.supported_versions
            called = [text_of(await session.call_tool("echo", {"text": str(i)})) for i in range(3)]
            assert called == [f"echo: {i} (client capabilities: )" for i in range(3)]
    methods = [r["method"] for r in received]
    # The SDK client lists the tools once to check results against their schemas; no initialize, no session.
    assert methods[0] == "server/discover" and methods.count("tools/call") == 3
    assert set(methods) == {"server/discover", "tools/list", "tools/call"}
    assert all(r["session"] is None and r["mcp-method"] == r["method"] for r in received)
    received.clear()
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
    assert [r["method"] for r in received][:2] == ["initialize", "notifications/initialized"]
    assert received[1]["session"] == "s-1"
