"""Governance on two live Daphne processes sharing Redis (and a prometheus-client multiprocess directory): one
consumer's limit holds across both, /metrics sums both, the REST API lists every call, the SDK sees the error."""
from __future__ import annotations

import tempfile
import time

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families

from gateway.governance.limits import RATE_LIMITED

from ..conftest import require_redis
from ..live import start_live
from .consumer_setup import guarded_petstore_api

pytestmark = [pytest.mark.live, pytest.mark.redis]

ACCEPT = {"Accept": "application/json, text/event-stream"}
SERVER = "/mcp-servers/limited"


@pytest.fixture(scope="module")
def pair():
    url = require_redis()
    live = start_live(processes=2, extra_env={"REDIS_URL": url,
                                              "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="mcpgw-prom-")})
    token = live.manage("create_api_token", "admin").stdout.strip().splitlines()[-1]
    setup = guarded_petstore_api(live, token, "limited", consumers=("alice", "bob", "carol"))
    with httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        created = api.post(f"/mcp-servers/{setup['server_id']}/rate-limits/",
                           json={"requests": 3, "window": "day"})
        assert created.status_code == 201, created.text
        carol = api.post(f"/mcp-servers/{setup['server_id']}/rate-limits/",
                         json={"requests": 1, "window": "day", "consumer": setup["consumers"]["carol"]["id"]})
        assert carol.status_code == 201, carol.text
    time.sleep(1.0)  # the other process polls the config version every 0.25 s
    yield live, token, setup
    live.stop()


def session_headers(http: httpx.Client, base: str, key: str) -> dict[str, str]:
    init = http.post(base + SERVER, headers={"Authorization": f"Bearer {key}"}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "live", "version": "1"}}})
    assert init.status_code == 200, init.text
    return {"Authorization": f"Bearer {key}", "Mcp-Session-Id": init.headers["mcp-session-id"],
            "MCP-Protocol-Version": "2025-11-25"}


def get_pet(http: httpx.Client, base: str, headers: dict, id: int) -> httpx.Response:
    return http.post(base + SERVER, headers=headers, json={
        "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": 1}}})


def test_a_consumers_limit_holds_across_processes_and_metrics_and_records_count_both(pair):
    live, token, setup = pair
    a, b = live.url_of(0), live.url_of(1)
    with httpx.Client(timeout=15, headers=ACCEPT) as http:
        alice = session_headers(http, a, setup["consumers"]["alice"]["key"])
        answers = [get_pet(http, base, alice, i) for i, base in enumerate((a, b, a, b, a))]
        assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
        assert answers[3].json()["error"]["code"] == RATE_LIMITED
        assert int(answers[3].headers["retry-after"]) > 3600
        bob = session_headers(http, b, setup["consumers"]["bob"]["key"])
        assert get_pet(http, b, bob, 10).status_code == 200

        metrics = http.get(a + "/metrics")
        assert metrics.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics.text) for s in family.samples}
    labels = {"instance": "default", "server": "limited", "tool": "getPet"}
    # Calls were answered by both processes: only the multiprocess sum gives these totals.
    assert samples[("mcpgw_tool_calls_total", tuple(sorted({**labels, "outcome": "ok"}.items())))] == 4
    assert samples[("mcpgw_tool_calls_total", tuple(sorted({**labels, "outcome": "limited"}.items())))] == 2

    with httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        deadline = time.monotonic() + 15
        while True:  # records reach the database within a flush interval (1 s)
            calls = api.get(f"/mcp-servers/{setup['server_id']}/calls/").json()
            if calls["count"] >= 6 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert calls["count"] == 6
        outcomes = sorted((c["consumer_name"], c["outcome"]) for c in calls["results"])
        assert outcomes == [("limited-alice", "limited"), ("limited-alice", "limited"), ("limited-alice", "ok"),
                            ("limited-alice", "ok"), ("limited-alice", "ok"), ("limited-bob", "ok")]
        alice_id = setup["consumers"]["alice"]["id"]
        mine = api.get(f"/consumers/{alice_id}/calls/", params={"outcome": "limited"}).json()
        assert mine["count"] == 2 and {c["tool"] for c in mine["results"]} == {"getPet"}


async def test_the_sdk_client_gets_the_limit_as_an_error(pair):
    live, _, setup = pair
    headers = {"Authorization": f"Bearer {setup['consumers']['carol']['key']}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(live.url_of(1) + SERVER, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                first = await session.call_tool("getPet", {"petId": 1})
                assert first.is_error is False
                with pytest.raises(MCPError) as limited:
                    await session.call_tool("getPet", {"petId": 1})
                # Listings are not limited.
                assert len((await session.list_tools()).tools) >= 5
    assert limited.value.error.code == RATE_LIMITED
    assert limited.value.error.message.startswith("Rate limit exceeded: 1 requests per day for this consumer.")
