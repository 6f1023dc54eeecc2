"""Slow, dead and resetting backends: every timeout holds, and a burst to dead backends leaves healthy ones fast."""
from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from console import services
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.state import close_states

from .asgi_client import AsgiClient
from .test_http_to_mcp import Backend, call, make_server, make_tool


class SilentBackend:
    """Accepts connections and reads requests but never answers (a hung backend); or, with `reset`, answers every
    connection with a TCP reset."""

    def __init__(self, *, reset: bool = False):
        self.reset = reset
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.reset:
            await reader.read(1)  # the request has started arriving
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        self._writers.append(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass

    async def stop(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._server.close()


@pytest.fixture
async def silent():
    server = SilentBackend()
    await server.start()
    yield server
    await close_http_sessions()
    await server.stop()


@pytest.fixture
async def resetting():
    server = SilentBackend(reset=True)
    await server.start()
    yield server
    await close_http_sessions()
    await server.stop()


def _text(result: dict) -> str:
    assert result["isError"] is True, result
    return result["content"][0]["text"]


async def test_backend_that_never_answers_is_cut_off_at_the_server_timeout(silent):
    server = make_server(config={"baseUrl": silent.url}, timeout=0.5)
    started = time.monotonic()
    result = await call(None, make_tool(url="{{.config.baseUrl}}/hang"), server=server)
    assert time.monotonic() - started < 3
    assert _text(result) == f"Backend did not answer within 0.5 s (GET {silent.url}/hang)"


async def test_first_byte_timeout_ends_a_silent_backend_before_the_total(silent, settings):
    settings.GATEWAY_BACKEND_FIRST_BYTE_TIMEOUT = 0.3
    server = make_server(config={"baseUrl": silent.url}, timeout=30)
    started = time.monotonic()
    result = await call(None, make_tool(url="{{.config.baseUrl}}/hang"), server=server)
    assert time.monotonic() - started < 5  # far below the server's 30 s
    assert _text(result) == f"Backend sent nothing for 0.3 s (GET {silent.url}/hang)"


async def test_connect_timeout_ends_a_backend_that_does_not_accept(settings):
    """A listener whose accept queue is full drops new connection attempts: connecting hangs, as to a dead host."""
    settings.GATEWAY_BACKEND_CONNECT_TIMEOUT = 0.3
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):  # fill the accept queue (and the SYN queue behind it)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.1)
        server = make_server(config={"baseUrl": f"http://127.0.0.1:{port}"}, timeout=30)
        started = time.monotonic()
        result = await call(None, make_tool(url="{{.config.baseUrl}}/x"), server=server)
        assert time.monotonic() - started < 5
        assert _text(result) == f"Backend did not accept a connection within 0.3 s (GET http://127.0.0.1:{port}/x)"
    finally:
        await close_http_sessions()
        for sock in fillers + [listener]:
            sock.close()


async def test_backend_that_resets_connections_is_reported(resetting):
    result = await call(None, make_tool(url="{{.config.baseUrl}}/reset"),
                        server=make_server(config={"baseUrl": resetting.url}))
    assert _text(result) == f"Backend {resetting.url}/reset reset the connection (GET)"


# ---------------------------------------------------------------- a burst to dead backends, through the gateway

TOOL_YAML = """
server:
  name: {name}
tools:
  - name: fetch
    description: One backend call.
    requestTemplate: {{url: {url}/item, method: GET}}
"""


def _servers(healthy_url: str, dead_urls: list[str]) -> None:
    owner = get_user_model().objects.create_user("owner", password="pw-123456")
    team = services.team_create(name="Team A", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="inst")
    for name, url, timeout in [("healthy", healthy_url, 10)] + [(f"dead-{i}", url, 6)
                                                                 for i, url in enumerate(dead_urls)]:
        server = services.mcp_server_create(actor=owner, instance=instance, name=name, timeout_seconds=timeout)
        services.tools_apply_yaml(actor=owner, mcp_server=server, text=TOOL_YAML.format(name=name, url=url))


def _stateless_call() -> tuple[dict, dict[str, str]]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "fetch", "arguments": {}, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                                    "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
               "mcp-method": "tools/call", "mcp-name": "fetch"}
    return body, headers


async def _call_server(client: AsgiClient, name: str) -> dict:
    body, headers = _stateless_call()
    response = await client.post(f"/instances/inst/mcp-servers/{name}", json=body, headers=headers)
    assert response.status == 200, response.body
    return response.json()["result"]


async def _healthy_latencies(client: AsgiClient, count: int, concurrency: int) -> list[float]:
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            result = await _call_server(client, "healthy")
            latencies.append(time.perf_counter() - started)
            assert result["isError"] is False, result

    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    return latencies


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.mark.django_db(transaction=True)
async def test_a_burst_to_dead_backends_does_not_slow_calls_to_a_healthy_one():
    healthy = Backend()
    await healthy.start()
    # A backend that closes each connection: every healthy call needs a new socket, as after an idle spell.
    healthy.answer("/item", json_body={"ok": True}, headers={"Connection": "close"})
    dead = [SilentBackend(), SilentBackend()]
    for backend in dead:
        await backend.start()
    try:
        await sync_to_async(_servers)(healthy.url, [backend.url for backend in dead])
        client = AsgiClient(app)
        await _healthy_latencies(client, 200, 10)  # warm-up: configuration cached, connections pooled
        baseline = await _healthy_latencies(client, 200, 10)

        # More calls to the dead backends than the gateway keeps sockets for any one host, all at once.
        burst = [asyncio.ensure_future(_call_server(client, f"dead-{i % 2}")) for i in range(600)]
        while sum(backend.connections for backend in dead) < 2 * 256:  # every socket a host may have
            await asyncio.sleep(0.02)
        during = await _healthy_latencies(client, 200, 10)
        still_pending = sum(not task.done() for task in burst)
        results = await asyncio.gather(*burst)
    finally:
        await close_http_sessions()
        await close_states()
        await healthy.stop()
        for backend in dead:
            await backend.stop()

    assert still_pending == 600  # the healthy calls were all answered while every dead call was still waiting
    # Each dead call ends with its own timeout, none is lost.
    assert {_text(result).split(" (")[0] for result in results} == {"Backend did not answer within 6 s"}
    print(f"healthy p99: baseline {_p99(baseline) * 1000:.1f} ms, during the burst {_p99(during) * 1000:.1f} ms")
    # A healthy call stalled behind the dead ones would wait for their 6 s timeout; none waited even half of it
    # (how much faster than that depends on the machine's other load, which the benchmarks measure, not this).
    assert max(during) < 3.0, f"a healthy call took {max(during):.1f} s during the burst"
