"""Circuit breaking per backend service, through the gateway's real ASGI app: it opens, fails fast, tries, closes."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from console import services
from gateway import circuit
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.state import close_states

from .asgi_client import AsgiClient
from .test_http_to_mcp import Backend

pytestmark = pytest.mark.django_db(transaction=True)

TOOL_YAML = """
server:
  name: orders
tools:
  - name: fetch
    description: One backend call.
    requestTemplate: {url: /item, method: GET}
"""


@pytest.fixture
async def backend():
    server = Backend()
    await server.start()
    circuit.reset()
    yield server
    circuit.reset()
    await close_http_sessions()
    await close_states()
    await server.stop()


def _world(url: str, *, enabled: bool = True):
    owner = get_user_model().objects.create_user("owner", password="pw-123456")
    team = services.team_create(name="Team A", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="inst")
    service = services.service_create(actor=owner, instance=instance, name="orders-api", base_url=url)
    server = services.mcp_server_create(actor=owner, instance=instance, name="orders", backend_service=service)
    services.tools_apply_yaml(actor=owner, mcp_server=server, text=TOOL_YAML)
    services.service_set_circuit_breaker(actor=owner, service=service, enabled=enabled, failure_threshold=3,
                                         open_seconds=1)
    return service


async def _call(client: AsgiClient) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "fetch", "arguments": {}, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                                    "io.modelcontextprotocol/clientCapabilities": {}}}}
    response = await client.post("/instances/inst/mcp-servers/orders", json=body, headers={
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call", "mcp-name": "fetch"})
    assert response.status == 200, response.body
    return response.json()["result"]


async def test_failing_backend_opens_the_circuit_then_one_call_tries_and_success_closes_it(backend):
    service = await sync_to_async(_world)(backend.url)
    client = AsgiClient(app)
    backend.answer("/item", status=503, body="down", content_type="text/plain")
    for _ in range(3):
        result = await _call(client)
        assert result["content"][0]["text"].startswith("Backend returned HTTP 503 Service Unavailable")
    assert len(backend.requests) == 3
    assert circuit.circuit_states([service.pk])[service.pk]["state"] == "open"

    refused = await _call(client)  # fails at once: the backend is not called
    assert refused["isError"] is True
    assert refused["content"][0]["text"] == (
        f"Backend service orders-api is not being called: 3 calls in a row failed (circuit open); the next call "
        f"goes through in 1 s (GET {backend.url}/item)")
    assert len(backend.requests) == 3

    await asyncio.sleep(1.1)  # the circuit's open time passes
    backend.answer("/item", json_body={"ok": True})
    tried = await _call(client)
    assert tried["isError"] is False and len(backend.requests) == 4
    assert circuit.circuit_states([service.pk])[service.pk]["state"] == "closed"
    assert (await _call(client))["isError"] is False and len(backend.requests) == 5


async def test_a_failed_trial_opens_the_circuit_again(backend):
    await sync_to_async(_world)(backend.url)
    client = AsgiClient(app)
    backend.answer("/item", status=500)
    for _ in range(3):
        await _call(client)
    await asyncio.sleep(1.1)
    await _call(client)  # the trial reaches the backend and fails
    assert len(backend.requests) == 4
    assert "circuit open" in (await _call(client))["content"][0]["text"]
    assert len(backend.requests) == 4


async def test_circuit_breaking_off_calls_a_failing_backend_every_time(backend):
    await sync_to_async(_world)(backend.url, enabled=False)
    client = AsgiClient(app)
    backend.answer("/item", status=503)
    for _ in range(5):
        assert "HTTP 503" in (await _call(client))["content"][0]["text"]
    assert len(backend.requests) == 5
