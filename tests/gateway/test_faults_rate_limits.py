"""Rate-limited calls while Redis is stopped or paused: a 503 naming the counters, then exact counting again."""
from __future__ import annotations

import time

import httpx
import pytest

from ..live import start_live
from ..outages import OwnRedis

pytestmark = [pytest.mark.live, pytest.mark.redis]

ACCEPT = {"Accept": "application/json, text/event-stream"}
REDIS_TIMEOUT = 1.0
LIMIT = 3
UNAVAILABLE = "Shared rate-limit counters unavailable; retry in 3 s."
answered: list[int] = []  # the status of every tools/call the test made


@pytest.fixture
def limited_gateway():
    redis = OwnRedis()
    redis.start()
    server = start_live(extra_env={"REDIS_URL": redis.url, "REDIS_TIMEOUT_SECONDS": str(REDIS_TIMEOUT),
                                   "GATEWAY_RETRY_AFTER_SECONDS": "3"})
    token = server.manage("create_api_token", "admin").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        petstore = next(s for s in api.get("/mcp-servers/", params={"limit": 1000}).json()["results"]
                        if s["name"] == "petstore" and s["instance_name"] == "default")
        created = api.post(f"/mcp-servers/{petstore['id']}/rate-limits/", json={"requests": LIMIT, "window": "day"})
        assert created.status_code == 201, created.text
    yield redis, server
    server.stop()
    redis.stop()


def _call(http: httpx.Client, base: str, id: int = 2) -> httpx.Response:
    """A 2026-07-28 tools/call: it needs no session, so only the rate limit asks Redis."""
    answer = _post_call(http, base, id)
    answered.append(answer.status_code)
    return answer


def _post_call(http: httpx.Client, base: str, id: int) -> httpx.Response:
    return http.post(base + "/mcp-servers/petstore", json={
        "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "getPet", "arguments": {"petId": 1}, "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}}}},
        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "getPet"})


def _listing(http: httpx.Client, base: str) -> httpx.Response:
    return http.post(base + "/mcp-servers/petstore", json={
        "jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}},
        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})


def _assert_unavailable(http: httpx.Client, base: str) -> None:
    started = time.monotonic()
    answer = _call(http, base)
    took = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "3"
    error = answer.json()["error"]
    assert error["message"] == UNAVAILABLE
    assert error["data"] == {"unavailable": "shared rate-limit counters", "retryAfter": 3}
    # Bounded: a refused connection is retried once and a stalled one given up, each wait at most REDIS_TIMEOUT.
    assert took < 4 * REDIS_TIMEOUT + 2


def _assert_limited(http: httpx.Client, base: str) -> None:
    answer = _call(http, base)
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json()["error"]["message"].startswith(f"Rate limit exceeded: {LIMIT} requests per day.")


def test_rate_limited_calls_answer_503_while_redis_is_away_and_count_exactly_after(limited_gateway):
    redis, server = limited_gateway
    base = server.url
    answered.clear()
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        for _ in range(LIMIT):
            assert _call(http, base).status_code == 200
        _assert_limited(http, base)

        redis.stop()
        for _ in range(3):
            _assert_unavailable(http, base)
        # Only the counters are missing: a call no limit counts is still served from the configuration cache.
        listed = _listing(http, base)
        assert listed.status_code == 200 and listed.json()["result"]["tools"]

        redis.start()  # empty: the day's bucket starts full again, and counts exactly from there
        deadline = time.monotonic() + 20
        while True:
            first = _call(http, base)
            if first.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert first.status_code == 200, first.text
        for _ in range(LIMIT - 1):
            assert _call(http, base).status_code == 200
        _assert_limited(http, base)

        redis.pause()  # accepts, never answers: the command times out into the same 503
        try:
            _assert_unavailable(http, base)
            _assert_unavailable(http, base)
        finally:
            redis.resume()
        deadline = time.monotonic() + 20
        while True:
            after = _call(http, base)
            if after.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Redis kept the bucket through the pause: still exhausted, not reset by the outage.
        assert after.status_code == 429, after.text

    # Every call is in the call records: those turned away during the outages as refused, with the reason.
    expected = [str(answered.count(503)), str(answered.count(429)), str(answered.count(200))]
    assert expected[1] == "3" and int(expected[0]) >= 5
    deadline = time.monotonic() + 20
    while True:
        counts = server.manage("shell", "-c", (
            "from console.models import CallRecord as R; "
            "print(R.objects.filter(outcome='refused', error='Shared rate-limit counters unavailable').count(), "
            "R.objects.filter(outcome='limited').count(), R.objects.filter(outcome='ok').count())"
        )).stdout.strip().splitlines()[-1].split()
        if counts == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counts == expected

    log = server.log_text()
    assert log.count("Redis (shared session store) unreachable") == 2, log
    assert log.count("Redis (shared session store) reachable again") == 2, log
    assert "Traceback" not in log, log
