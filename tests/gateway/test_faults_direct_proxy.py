"""Direct Proxy backends that hang: the server's timeout ends each exchange, and the backend service's circuit opens."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from .mcp_backends import streamable_backend
from .test_direct_proxy import make_proxy, text_of
from .test_faults_backends import SilentBackend

pytestmark = pytest.mark.live

ACCEPT = {"Accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
BURST = 30


@pytest.fixture(scope="module")
def healthy():
    backend = streamable_backend()
    yield backend
    backend.stop()


@pytest.fixture
async def silent():
    backend = SilentBackend()
    await backend.start()
    backend.path = "/mcp"
    yield backend
    await backend.stop()


def _circuit(api, server: dict, **setting) -> dict:
    answer = api.put(f"/services/{server['backend_service']}/circuit-breaker", json=setting)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_backend_that_never_answers_costs_one_pending_call_each(demo_server, api, healthy, silent):
    hung = make_proxy(api, silent, "streamable_http", timeout_seconds=3)
    fine = make_proxy(api, healthy, "streamable_http")
    async with httpx.AsyncClient(timeout=30, headers=ACCEPT) as http:
        burst = [asyncio.create_task(http.post(demo_server.url + hung["endpoints"]["streamable_http"], json=INIT))
                 for _ in range(BURST)]
        while silent.connections < BURST:  # every call of the burst is at the backend, waiting
            await asyncio.sleep(0.05)
        async with streamable_http_client(demo_server.url + fine["endpoints"]["streamable_http"]) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for n in range(5):
                    assert text_of(await session.call_tool("echo", {"text": f"hi {n}"})) == f"echo: hi {n}"
        still_pending = sum(not task.done() for task in burst)
        answers = await asyncio.gather(*burst)
    assert still_pending == BURST  # the healthy calls were answered while the whole burst still waited
    for answer in answers:
        assert answer.status_code == 200
        error = answer.json()["error"]
        assert error["code"] == -32603
        assert error["message"] == f"Backend MCP server {silent.url}/mcp did not answer in time"


async def test_the_circuit_of_a_hung_backend_opens_and_then_fails_fast(demo_server, api, silent):
    hung = make_proxy(api, silent, "streamable_http", timeout_seconds=1)
    _circuit(api, hung, enabled=True, failure_threshold=2, open_seconds=60)
    url = demo_server.url + hung["endpoints"]["streamable_http"]
    async with httpx.AsyncClient(timeout=30, headers=ACCEPT) as http:
        for _ in range(2):
            timed_out = (await http.post(url, json=INIT)).json()["error"]
            assert timed_out["message"].endswith("did not answer in time")
        assert silent.connections == 2
        refused = (await http.post(url, json=INIT)).json()["error"]
    assert refused["code"] == -32603
    assert refused["message"].startswith("Backend service ")
    assert "2 calls in a row failed (circuit open)" in refused["message"]
    assert silent.connections == 2  # the open circuit kept the call from the backend
    state = api.get(f"/services/{hung['backend_service']}/circuit-breaker").json()["state"]
    assert state["state"] == "open" and state["failures"] == 2


async def test_tool_calls_through_the_proxy_open_the_circuit_and_a_success_closes_it(demo_server, api):
    backend = streamable_backend("slowpoke")
    try:
        proxy = make_proxy(api, backend, "streamable_http", timeout_seconds=1)
        _circuit(api, proxy, enabled=True, failure_threshold=2, open_seconds=1)
        async with streamable_http_client(demo_server.url + proxy["endpoints"]["streamable_http"]) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for _ in range(2):
                    slept = await session.call_tool("sleepy", {"seconds": 5})
                    assert slept.is_error is True and "did not answer in time" in text_of(slept)
                refused = await session.call_tool("echo", {"text": "hi"})
                assert refused.is_error is True and "(circuit open)" in text_of(refused)
                await asyncio.sleep(1.2)  # open_seconds: the next call tries the backend again
                assert text_of(await session.call_tool("echo", {"text": "again"})) == "echo: again"
                assert text_of(await session.call_tool("echo", {"text": "more"})) == "echo: more"
        state = api.get(f"/services/{proxy['backend_service']}/circuit-breaker").json()["state"]
        assert state["state"] == "closed"
    finally:
        backend.stop()
