"""Governance of a Direct Proxy through a live gateway: a call record for every relayed request, and limits on all."""
from __future__ import annotations

import time

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from .mcp_backends import sse_backend, streamable_backend
from .test_direct_proxy import make_proxy, text_of

pytestmark = pytest.mark.live

ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
def backend():
    started = streamable_backend("records")
    yield started
    started.stop()


def calls_of(api, server_id: int, count: int) -> list[dict]:
    """The server's call records, oldest first, once `count` of them are written (about once a second)."""
    deadline = time.monotonic() + 20
    while True:
        rows = api.get(f"/mcp-servers/{server_id}/calls/", params={"limit": 100}).json()["results"]
        if len(rows) >= count or time.monotonic() > deadline:
            return list(reversed(rows))
        time.sleep(0.3)


async def test_every_relayed_request_leaves_a_record_with_its_method_and_outcome(demo_server, api, backend):
    server = make_proxy(api, backend, "streamable_http")
    url = demo_server.url + server["endpoints"]["streamable_http"]
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            assert text_of(await session.call_tool("echo", {"text": "hi"})) == "echo: hi"
            assert (await session.call_tool("add", {"a": "not a number", "b": 1})).is_error
            assert (await session.read_resource("weather://today")).contents[0].text == "sunny"
            await session.list_prompts()
            backend.stop()  # the backend goes away: what the gateway relays now fails
            assert (await session.call_tool("echo", {"text": "anyone?"})).is_error
            with pytest.raises(Exception):
                await session.list_resources()
    rows = calls_of(api, server["id"], 7)
    assert [(r["method"], r["tool"], r["outcome"]) for r in rows] == [
        ("tools/list", "", "ok"), ("tools/call", "echo", "ok"), ("tools/call", "add", "tool_error"),
        ("resources/read", "", "ok"), ("prompts/list", "", "ok"), ("tools/call", "echo", "backend_error"),
        ("resources/list", "", "backend_error")]
    assert [r["backend_status"] for r in rows] == [200] * 5 + [None, None]
    assert all(r["latency_ms"] > 0 and r["transport"] == "streamable" for r in rows)
    assert rows[0]["response_bytes"] > len('{"tools":[]}') and rows[3]["request_bytes"] == len(
        '{"uri":"weather://today"}')
    assert len({r["session_id"] for r in rows}) == 1 and rows[0]["session_id"]
    assert "records" not in rows[5]["error"] and rows[5]["error"]


def test_a_limit_on_every_request_refuses_proxied_listings_with_429(demo_server, api, backend):
    server = make_proxy(api, backend, "streamable_http")
    created = api.post(f"/mcp-servers/{server['id']}/rate-limits/", json={"requests": 2, "window": "day",
                                                                         "applies_to": "all"})
    assert created.status_code == 201, created.text
    url = demo_server.url + server["endpoints"]["streamable_http"]
    with httpx.Client(timeout=15, headers=ACCEPT) as http:
        init = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "limited", "version": "1"}}})
        assert init.status_code == 200, init.text
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        answers = [http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 10 + i, "method": "prompts/list"})
                   for i in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    refused = answers[2]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "Rate limit exceeded: 2 requests per day" in refused.json()["error"]["message"]
    rows = calls_of(api, server["id"], 3)
    assert [(r["method"], r["outcome"]) for r in rows] == [
        ("prompts/list", "ok"), ("prompts/list", "ok"), ("prompts/list", "limited")]
    assert rows[2]["backend_status"] is None


async def test_a_handshake_free_client_in_front_of_an_sse_backend_leaves_records_too(demo_server, api):
    backend = sse_backend("records")
    try:
        server = make_proxy(api, backend, "sse")
        async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
            async with ClientSession(read, write) as session:
                await session.discover()
                await session.list_tools()
                assert text_of(await session.call_tool("add", {"a": 1, "b": 2})) == "3"
    finally:
        backend.stop()
    rows = calls_of(api, server["id"], 3)
    assert [(r["method"], r["tool"], r["outcome"], r["backend_status"]) for r in rows] == [
        ("server/discover", "", "ok", 200), ("tools/list", "", "ok", 200), ("tools/call", "add", "ok", 200)]
    assert {r["transport"] for r in rows} == {"stateless"} and {r["revision"] for r in rows} == {"2026-07-28"}
