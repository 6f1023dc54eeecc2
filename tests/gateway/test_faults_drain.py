"""SIGTERM under load: in-flight tool calls finish, open streams close cleanly, new calls get a 503, then exit."""
from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..live import PYTHON, ROOT, free_port, start_live
from ..loopback_json import LoopbackJson

pytestmark = [pytest.mark.live]

ACCEPT = {"Accept": "application/json, text/event-stream"}
SLOW_YAML = """
server:
  name: slow
tools:
  - name: wait
    description: Answers after a while.
    args: [{{name: seconds, type: number, position: query}}]
    requestTemplate: {{url: "{url}/wait", method: GET}}
"""


class SlowBackend(LoopbackJson):
    """A REST backend on 127.0.0.1 that answers /wait?seconds=N after N seconds."""

    def __init__(self):
        self.started = threading.Semaphore(0)
        super().__init__(self._wait)

    def _wait(self, path: str) -> dict:
        self.started.release()
        seconds = float(path.partition("seconds=")[2] or 0)
        time.sleep(seconds)
        return {"waited": seconds}


def _serve(server, drain_seconds: float) -> tuple[subprocess.Popen, str, Path]:
    """`manage.py serve` (the process `make run` starts) on a free port, in the live server's environment."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="serve-", suffix=".log")[1])
    env = {**server.env, "GATEWAY_DRAIN_SECONDS": str(drain_seconds)}
    proc = subprocess.Popen([PYTHON, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    server.procs.append(proc)  # stopped with the live server should the test fail before it exits
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base, log
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(log.read_text())


@pytest.fixture
def slow_world():
    backend = SlowBackend()
    server = start_live()
    token = server.manage("create_api_token", "admin").stdout.strip()
    with httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        instance = api.get("/instances/").json()["results"][0]["id"]
        created = api.post("/mcp-servers/", json={"instance": instance, "name": "slow"})
        assert created.status_code == 201, created.text
        applied = api.put(f"/mcp-servers/{created.json()['id']}/tools/yaml",
                          headers={"Content-Type": "application/yaml"}, content=SLOW_YAML.format(url=backend.url))
        assert applied.status_code < 300, applied.text
    for proc in server.procs:  # the Daphne start_live started: the tests run `serve` on the same database
        proc.terminate()
        proc.wait(20)
    yield backend, server
    server.stop()
    backend.stop()


def _call(base: str, seconds: float, out: dict, key: str) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "wait", "arguments": {"seconds": seconds},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "wait"}
    try:
        out[key] = httpx.post(base + "/mcp-servers/slow", json=body, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        out[key] = exc


def test_sigterm_lets_in_flight_calls_finish_closes_streams_and_exits(slow_world):
    backend, server = slow_world
    proc, base, log = _serve(server, drain_seconds=15)
    out: dict = {}
    events: list[dict] = []
    stream_end: dict = {}

    def sse_client() -> None:
        try:
            with httpx.Client(timeout=60) as http:
                with http.stream("GET", base + "/mcp-servers/slow/sse", headers={"Accept": "text/event-stream"}) as s:
                    lines = s.iter_lines()
                    assert next(lines) == "event: endpoint"
                    endpoint = next(lines)[len("data: "):]
                    http.post(base + endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": "2024-11-05", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}})
                    http.post(base + endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                     "params": {"name": "wait", "arguments": {"seconds": 2}}})
                    for line in lines:
                        if line.startswith("data: "):
                            events.append(json.loads(line[len("data: "):]))
            stream_end["clean"] = True
        except Exception as exc:
            stream_end["error"] = exc

    sse = threading.Thread(target=sse_client)
    sse.start()
    call = threading.Thread(target=_call, args=(base, 2, out, "in_flight"))
    call.start()
    for _ in range(2):  # both calls have reached the backend
        assert backend.started.acquire(timeout=20)

    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    _call(base, 0, out, "after_sigterm")
    ready = httpx.get(base + "/readyz", timeout=10)

    call.join(30)
    sse.join(30)
    code = proc.wait(30)
    exited_after = time.monotonic() - signalled

    assert ready.status_code == 503 and "draining" in ready.json()["failed"]
    refused = out["after_sigterm"]
    assert isinstance(refused, httpx.Response) and refused.status_code == 503
    assert refused.headers["retry-after"]
    assert refused.json()["error"]["message"].startswith("Gateway process shutting down")
    finished = out["in_flight"]
    assert isinstance(finished, httpx.Response) and finished.status_code == 200, finished
    assert finished.json()["result"]["isError"] is False
    assert json.loads(finished.json()["result"]["content"][0]["text"]) == {"waited": 2}
    # The SSE client's in-flight call was answered on its stream, and then the stream ended cleanly.
    assert stream_end == {"clean": True}
    assert [event["id"] for event in events] == [1, 2]
    assert json.loads(events[1]["result"]["content"][0]["text"]) == {"waited": 2}
    assert code == 0
    assert exited_after < 15  # the calls took 2 s; the drain timeout was not needed
    text = log.read_text()
    assert "SIGTERM: draining" in text and "Drained; closing open streams and stopping" in text, text
    assert "Traceback" not in text, text


def test_a_call_longer_than_the_drain_timeout_does_not_hold_the_exit(slow_world):
    backend, server = slow_world
    proc, base, log = _serve(server, drain_seconds=1)
    out: dict = {}
    call = threading.Thread(target=_call, args=(base, 30, out, "too_long"))
    call.start()
    assert backend.started.acquire(timeout=20)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    exited_after = time.monotonic() - signalled
    call.join(30)
    assert exited_after < 10  # 1 s of drain, then the process stops; not the call's 30 s
    assert isinstance(out["too_long"], httpx.HTTPError)  # cut off: the client sees the connection end
    assert "Drain timeout: stopping with 1 gateway requests unfinished" in log.read_text()
