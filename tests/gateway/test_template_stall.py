"""A hostile tool template on one session does not stall the gateway for the others, and ends within its time limit."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from aiohttp import web

from gateway.executors.request_builder import TEMPLATE_TIMEOUT_SECONDS

from ..live import free_port, start_live

pytestmark = pytest.mark.live

ACCEPT = {"Accept": "application/json, text/event-stream"}
VERSION = "2025-11-25"
HOSTILE_TEXT = "a" * 99_999 + "!"  # 100 KB: the classic input that makes ^(a+)+$ backtrack
PING_SESSIONS = 3


class FakeBackend:
    """A real HTTP server on 127.0.0.1 in its own thread: echoes the body it was sent as JSON."""

    def __init__(self):
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        async def echo(request: web.Request) -> web.Response:
            return web.json_response({"received": (await request.text())[:200]})

        app = web.Application()
        app.router.add_post("/echo", echo)
        runner = web.AppRunner(app)
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self):
        self.thread.start()
        assert self.ready.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def tools_yaml(backend_port: int) -> str:
    url = f"http://127.0.0.1:{backend_port}/echo"
    return f"""
server:
  name: stall
tools:
  - name: hostileRegex
    description: A pattern that backtracks exponentially in a backtracking engine.
    args:
      - {{name: text, description: Text, type: string, required: true}}
    requestTemplate:
      url: "{url}"
      method: POST
      body: '{{{{ regexMatch "^(a+)+$" .args.text }}}}'
  - name: hostileLoop
    description: Many steps, each cheap but not free, far past the time limit.
    args:
      - {{name: text, description: Text, type: string, required: true}}
    requestTemplate:
      url: "{url}"
      method: POST
      body: '{{{{ range 1000000 }}}}{{{{ if regexMatch "a$" $.args.text }}}}x{{{{ end }}}}{{{{ end }}}}'
"""


@pytest.fixture(scope="module")
def stall_server():
    backend = FakeBackend()
    backend.start()
    server = start_live()
    try:
        token = server.manage("create_api_token", "admin").stdout.strip()
        with httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as api:
            instance = api.get("/instances/").json()["results"][0]["id"]
            created = api.post("/mcp-servers/", json={"instance": instance, "name": "stall"})
            assert created.status_code == 201, created.text
            applied = api.put(f"/mcp-servers/{created.json()['id']}/tools/yaml", content=tools_yaml(backend.port),
                              headers={"Content-Type": "application/yaml"})
            assert applied.status_code == 200, applied.text
        yield server
    finally:
        server.stop()
        backend.stop()


async def _session(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    init = await http.post(url, headers=ACCEPT, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "stall", "version": "1"}}})
    assert init.status_code == 200, init.text
    headers = {**ACCEPT, "Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": VERSION}
    note = await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert note.status_code == 202
    return headers


def _answer(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
        return json.loads(data[-1])
    return response.json()


async def _ping_loop(http, url, headers, stop: asyncio.Event, window: list[bool], samples: list[float]):
    n = 0
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        answer = _answer(await http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": n, "method": "ping"}))
        elapsed = time.perf_counter() - started
        assert answer == {"jsonrpc": "2.0", "id": n, "result": {}}
        if window[0]:
            samples.append(elapsed)
        await asyncio.sleep(0.005)


async def _call(http, url, headers, tool: str) -> tuple[dict, float]:
    started = time.perf_counter()
    response = await http.post(url, headers=headers, json={
        "jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": tool, "arguments": {"text": HOSTILE_TEXT}}})
    return _answer(response)["result"], time.perf_counter() - started


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _run(url: str) -> dict:
    limits = httpx.Limits(max_connections=PING_SESSIONS + 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        hostile = await _session(http, url)
        pingers = [await _session(http, url) for _ in range(PING_SESSIONS)]
        # Warm up: both tools once (compiled templates and patterns, worker threads), a few pings each.
        for tool in ("hostileRegex", "hostileLoop"):
            await _call(http, url, hostile, tool)
        for headers in pingers:
            for i in range(5):
                _answer(await http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": i, "method": "ping"}))

        window = [False]
        samples: list[float] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_ping_loop(http, url, h, stop, window, samples)) for h in pingers]
        await asyncio.sleep(0.2)
        window[0] = True
        results = {"hostileRegex": [], "hostileLoop": []}
        for _ in range(3):
            for tool in results:
                results[tool].append(await _call(http, url, hostile, tool))
        window[0] = False
        stop.set()
        await asyncio.gather(*tasks)
        return {"samples": samples, "results": results}


def test_pings_keep_answering_while_a_hostile_template_runs(stall_server):
    outcome = asyncio.run(_run(stall_server.url + "/mcp-servers/stall"))
    samples = outcome["samples"]
    results = outcome["results"]

    # RE2 answers the backtracking pattern at once, correctly: the text does not match.
    for result, elapsed in results["hostileRegex"]:
        assert result["isError"] is False, result
        assert json.loads(result["content"][0]["text"]) == {"received": "false"}
        assert elapsed < TEMPLATE_TIMEOUT_SECONDS
    # The loop ends as an error at the template time limit (plus a small margin for the call itself).
    for result, elapsed in results["hostileLoop"]:
        assert result["isError"] is True
        assert result["content"][0]["text"] == (
            f"Could not render the body template: line 1: rendering took longer than {TEMPLATE_TIMEOUT_SECONDS:g} "
            f"seconds")
        assert TEMPLATE_TIMEOUT_SECONDS * 0.9 < elapsed < TEMPLATE_TIMEOUT_SECONDS + 0.5
    # Meanwhile the other sessions were served: many pings, none of them held for the template's time limit (a
    # template on the event loop would hold every ping that long). How fast beyond that is the benchmarks' business.
    assert len(samples) >= 100, len(samples)
    assert max(samples) < TEMPLATE_TIMEOUT_SECONDS / 2, (
        f"ping p99 {_p99(samples) * 1000:.1f} ms over {len(samples)} pings; max {max(samples) * 1000:.1f} ms")
