"""Two gateway processes on one Redis relay one Direct Proxy session: opened on one, served by the other."""
from __future__ import annotations

import json

import httpx
import pytest

from ..conftest import require_redis
from ..live import start_live
from .mcp_backends import sse_backend, streamable_backend

pytestmark = [pytest.mark.live, pytest.mark.redis]

ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def pair():
    url = require_redis()
    server = start_live(processes=2, extra_env={"REDIS_URL": url})
    yield server
    server.stop()


def _create_proxy(pair, backend, name: str, transport: str) -> str:
    """A Direct Proxy `name` in front of `backend`, created through process A's REST API; its endpoint path."""
    token = pair.manage("create_api_token", "admin").stdout.strip()
    with httpx.Client(base_url=pair.url_of(0) + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        instance = api.get("/instances/").json()["results"][0]["id"]
        service = api.post("/services/", json={"instance": instance, "name": f"{name}-mcp", "protocol": "mcp",
                                               "base_url": backend.url}).json()
        created = api.post("/mcp-servers/", json={"instance": instance, "name": name, "server_type": "direct_proxy",
                                                  "backend_service": service["id"], "backend_transport": transport,
                                                  "backend_path": backend.path})
        assert created.status_code == 201, created.text
    return f"/mcp-servers/{name}"


@pytest.fixture(scope="module")
def proxy(pair):
    backend = streamable_backend()
    yield _create_proxy(pair, backend, "weather", "streamable_http")
    backend.stop()


@pytest.fixture(scope="module")
def sse_proxy(pair):
    """A Direct Proxy in front of an SSE backend: its stream lives in the one process that opened it."""
    backend = sse_backend()
    yield _create_proxy(pair, backend, "weather-sse", "sse")
    backend.stop()


def _open_on_a_relay_on_b(http: httpx.Client, a: str, b: str) -> dict:
    """Initialize on A, then a tool call and a sampling round trip on B answered through A; the session's headers."""
    init = http.post(a, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
        "clientInfo": {"name": "t", "version": "1"}}})
    assert init.json()["result"]["serverInfo"]["name"] == "weather"
    headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    assert http.post(b, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
                     ).status_code == 202
    call = http.post(b, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                               "params": {"name": "echo", "arguments": {"text": "via b"}}})
    assert call.status_code == 200
    assert call.json()["result"]["content"][0]["text"] == "echo: via b"

    # The backend asks the client for a completion during a call on B; the client answers through A.
    with http.stream("POST", b, headers=headers, json={"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                                       "params": {"name": "sample", "arguments": {"prompt": "x"}}}
                     ) as stream:
        received = events(stream)
        asked = next(received)
        assert asked["method"] == "sampling/createMessage"
        assert asked["id"].startswith("mcpgw-")
        answered = http.post(a, headers=headers, json={"jsonrpc": "2.0", "id": asked["id"], "result": {
            "role": "assistant", "model": "m", "content": {"type": "text", "text": "from a"}}})
        assert answered.status_code == 202
        result = next(received)
        assert result["id"] == 3
        assert result["result"]["content"][0]["text"] == "model said: from a"
    return headers


def events(response: httpx.Response):
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: "):])


def test_streamable_session_opened_on_a_relayed_by_b(pair, proxy):
    a, b = pair.url_of(0) + proxy, pair.url_of(1) + proxy
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        headers = _open_on_a_relay_on_b(http, a, b)
        assert http.delete(a, headers=headers).status_code == 204
        assert http.post(b, headers=headers, json={"jsonrpc": "2.0", "id": 4, "method": "ping"}).status_code == 404


def test_sse_stream_on_a_gets_what_b_relayed(pair, proxy):
    a, b = pair.url_of(0), pair.url_of(1)
    with httpx.Client(timeout=30) as http:
        with http.stream("GET", a + proxy + "/sse", headers={"Accept": "text/event-stream"}) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: endpoint"
            endpoint = next(lines)[len("data: "):]
            def answer(wanted):
                for line in lines:
                    if line.startswith("data: "):
                        message = json.loads(line[len("data: "):])
                        if message.get("id") == wanted:
                            return message

            assert http.post(b + endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}).status_code == 202
            assert answer(1)["result"]["protocolVersion"] == "2024-11-05"
            assert http.post(b + endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
                             ).status_code == 202
            assert http.post(b + endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "add", "arguments": {"a": 20, "b": 22}}}).status_code == 202
            assert answer(2)["result"]["content"][0]["text"] == "42"


def test_sse_backend_session_opened_on_a_is_relayed_by_b_on_the_same_backend_stream(pair, sse_proxy):
    """B hands the session's messages to A, which holds the backend's stream: the backend's request during B's call
    is answered through A on that one backend session (a second backend session would never get the answer)."""
    a, b = pair.url_of(0) + sse_proxy, pair.url_of(1) + sse_proxy
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        headers = _open_on_a_relay_on_b(http, a, b)
        assert http.delete(a, headers=headers).status_code == 204
