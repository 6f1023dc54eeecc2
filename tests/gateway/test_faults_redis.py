"""Redis stopped, paused and restarted under a live gateway: 503 with Retry-After, streams end, it recovers alone."""
from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from ..live import start_live
from ..outages import OwnRedis

pytestmark = [pytest.mark.live, pytest.mark.redis]

ACCEPT = {"Accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": 1}}}
REDIS_TIMEOUT = 1.0


@pytest.fixture
def redis_and_gateway():
    redis = OwnRedis()
    redis.start()
    server = start_live(extra_env={"REDIS_URL": redis.url, "REDIS_TIMEOUT_SECONDS": str(REDIS_TIMEOUT),
                                   "MCP_SSE_KEEPALIVE_SECONDS": "1", "GATEWAY_RETRY_AFTER_SECONDS": "3"})
    yield redis, server
    server.stop()
    redis.stop()


def _initialize(http: httpx.Client, base: str) -> str:
    init = http.post(base + "/mcp-servers/petstore", json=INIT)
    assert init.status_code == 200, init.text
    return init.headers["mcp-session-id"]


def _call(http: httpx.Client, base: str, sid: str) -> httpx.Response:
    return http.post(base + "/mcp-servers/petstore", json=CALL,
                     headers={"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})


def _stateless_call(http: httpx.Client, base: str) -> httpx.Response:
    body = {**CALL, "params": {**CALL["params"], "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}
    return http.post(base + "/mcp-servers/petstore", json=body, headers={
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "getPet"})


class _StreamWatch:
    """Reads an event stream in a thread and notes whether, and how, it ended."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.lines: list[str] = []
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        assert self.opened.wait(15), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(30, read=30)) as http:
                with http.stream("GET", url, headers=headers) as stream:
                    self.status = stream.status_code
                    self.opened.set()
                    for line in stream.iter_lines():
                        self.lines.append(line)
        except Exception as exc:  # an unclean end (reset, truncated chunk) is what the test looks for
            self.error = exc
        finally:
            self.opened.set()
            self.ended.set()


def test_redis_stopped_answers_503_closes_streams_and_recovers_without_restart(redis_and_gateway):
    redis, server = redis_and_gateway
    base = server.url
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        sid = _initialize(http, base)
        assert _call(http, base, sid).status_code == 200
        assert _stateless_call(http, base).status_code == 200  # warms the configuration cache
        get_stream = _StreamWatch(base + "/mcp-servers/petstore", {
            "Accept": "text/event-stream", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
        sse_stream = _StreamWatch(base + "/mcp-servers/petstore/sse", {"Accept": "text/event-stream"})
        assert get_stream.status == 200 and sse_stream.status == 200

        redis.stop()

        # Open streams end cleanly (a complete chunked response, no reset), so their clients reconnect.
        assert get_stream.ended.wait(15) and sse_stream.ended.wait(15)
        assert get_stream.error is None and sse_stream.error is None
        assert any("Shared session store unavailable" in line for line in get_stream.lines)

        for attempt in range(3):
            started = time.monotonic()
            answer = _call(http, base, sid)
            took = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "3"
            error = answer.json()["error"]
            assert error["message"] == "Shared session store unavailable; retry in 3 s."
            assert error["data"] == {"unavailable": "shared session store", "retryAfter": 3}
            # Bounded: a refused connection is retried once, each wait at most REDIS_TIMEOUT.
            assert took < 4 * REDIS_TIMEOUT + 2
        assert http.post(base + "/mcp-servers/petstore", json=INIT).status_code == 503
        reopened = http.get(base + "/mcp-servers/petstore/sse", headers={"Accept": "text/event-stream"})
        assert reopened.status_code == 503 and reopened.headers["retry-after"] == "3"
        ready = http.get(base + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["redis", "channel_layer"]
        assert ready.json()["checks"]["database"] == "ok"
        assert http.get(base + "/healthz").status_code == 200
        # Signing in counts failures in Redis: the console says what is wrong instead of a 500.
        login = http.get(base + "/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        signed_in = http.post(base + "/login/", data={"username": "admin", "password": "admin-pass-1",
                                                      "csrfmiddlewaretoken": token},
                              headers={"Referer": base + "/login/", "Accept": "text/html"})
        assert signed_in.status_code == 503 and "cannot reach its shared session store (Redis)" in signed_in.text
        # A stateless request needs no shared state: it is served from the configuration cache meanwhile.
        served = _stateless_call(http, base)
        assert served.status_code == 200 and "Rex" in served.json()["result"]["content"][0]["text"]

        redis.start()  # empty: it kept nothing

        deadline = time.monotonic() + 20
        while True:
            init = http.post(base + "/mcp-servers/petstore", json=INIT)
            if init.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert init.status_code == 200, init.text
        new_sid = init.headers["mcp-session-id"]
        assert _call(http, base, new_sid).status_code == 200
        assert http.get(base + "/readyz").json()["status"] == "ready"
        lost = _call(http, base, sid)  # Redis lost it: the client is told to initialize again
        assert lost.status_code == 404
        assert "initialize a new one" in lost.json()["error"]["message"]

    log = server.log_text()
    assert log.count("Redis (shared session store) unreachable") == 1, log
    assert log.count("Redis (shared session store) reachable again") == 1, log
    assert "Traceback" not in log, log


def test_redis_paused_times_out_into_503_and_kept_sessions_work_after(redis_and_gateway):
    redis, server = redis_and_gateway
    base = server.url
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        sid = _initialize(http, base)
        assert _call(http, base, sid).status_code == 200
        redis.pause()
        try:
            started = time.monotonic()
            answer = _call(http, base, sid)
            took = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["message"].startswith("Shared session store unavailable")
            assert took < 4 * REDIS_TIMEOUT + 2  # a Redis that never answers costs the command timeout, not a hang
        finally:
            redis.resume()
        # Redis kept the session: it works again with no restart and no new initialize.
        deadline = time.monotonic() + 20
        while (answer := _call(http, base, sid)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert "Rex" in answer.json()["result"]["content"][0]["text"]
    assert "Traceback" not in server.log_text()
