"""Idle sessions expire after MCP_SESSION_TTL; an open stream's keepalives keep its session alive."""
from __future__ import annotations

import time

import httpx
import pytest

from ..live import start_live

pytestmark = pytest.mark.live

ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def short_lived():
    server = start_live(extra_env={"MCP_SESSION_TTL": "2", "MCP_SSE_KEEPALIVE_SECONDS": "1"})
    yield server
    server.stop()


def test_idle_session_expires(short_lived):
    with httpx.Client(base_url=short_lived.url, timeout=10, headers=ACCEPT) as http:
        init = http.post("/mcp-servers/petstore", json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                                        "params": {"protocolVersion": "2025-11-25"}})
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert http.post("/mcp-servers/petstore", json=ping, headers=headers).status_code == 200
        time.sleep(3.2)
        assert http.post("/mcp-servers/petstore", json=ping, headers=headers).status_code == 404


def test_open_sse_stream_keeps_its_session(short_lived):
    with httpx.Client(base_url=short_lived.url, timeout=10) as http:
        with http.stream("GET", "/mcp-servers/petstore/sse", headers={"Accept": "text/event-stream"}) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: endpoint"
            endpoint = next(lines)[len("data: "):]
            deadline = time.monotonic() + 4.5  # well past the 2 s TTL, reading keepalives meanwhile
            keepalives = 0
            while time.monotonic() < deadline:
                if next(lines).startswith(": keepalive"):
                    keepalives += 1
            assert keepalives >= 3
            posted = http.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert posted.status_code == 202
