"""Two Daphne processes on one Redis serve one session interchangeably."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from ..conftest import require_redis
from ..live import start_live
from .consumer_setup import live_setup

pytestmark = [pytest.mark.live, pytest.mark.redis]

ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def pair():
    url = require_redis()
    server = start_live(processes=2, extra_env={"REDIS_URL": url})
    yield server
    server.stop()


def test_initialize_on_a_call_on_b(pair):
    a, b = pair.url_of(0), pair.url_of(1)
    with httpx.Client(timeout=15, headers=ACCEPT) as http:
        init = http.post(a + "/mcp-servers/petstore", json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        sid = init.headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
        call = http.post(b + "/mcp-servers/petstore", headers=headers, json={
            "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": 1}}})
        assert call.status_code == 200
        assert "Rex" in call.json()["result"]["content"][0]["text"]
        assert http.delete(b + "/mcp-servers/petstore", headers=headers).status_code == 204
        assert http.post(a + "/mcp-servers/petstore", headers=headers, json={
            "jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 404


def test_sse_stream_on_a_receives_answer_to_post_on_b(pair):
    a, b = pair.url_of(0), pair.url_of(1)
    with httpx.Client(timeout=15) as http:
        with http.stream("GET", a + "/mcp-servers/petstore/sse", headers={"Accept": "text/event-stream"}) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: endpoint"
            endpoint = next(lines)[len("data: "):]
            posted = http.post(b + endpoint, json={"jsonrpc": "2.0", "id": 41, "method": "initialize",
                                                   "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                                                              "clientInfo": {"name": "t", "version": "1"}}})
            assert posted.status_code == 202
            posted = http.post(b + endpoint, json={"jsonrpc": "2.0", "id": 42, "method": "tools/call",
                                                   "params": {"name": "getPet", "arguments": {"petId": 2}}})
            assert posted.status_code == 202
            answers = {}
            for line in lines:
                if line.startswith("data: "):
                    message = json.loads(line[len("data: "):])
                    answers[message["id"]] = message
                    if 42 in answers:
                        break
            assert answers[41]["result"]["protocolVersion"] == "2024-11-05"
            assert answers[42]["result"]["isError"] is False
            assert "Tom" in answers[42]["result"]["content"][0]["text"]


def test_config_change_reaches_both_processes(pair):
    token = pair.manage("create_api_token", "admin").stdout.strip()
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {token}"}) as api:
        instance = api.get(pair.url_of(0) + "/api/v1/instances/").json()["results"][0]["id"]
        created = api.post(pair.url_of(0) + "/api/v1/mcp-servers/", json={"instance": instance, "name": "fresh"})
        assert created.status_code == 201
    with httpx.Client(timeout=15, headers=ACCEPT) as http:
        for base in (pair.url_of(0), pair.url_of(1)):
            init = http.post(base + "/mcp-servers/fresh", json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}})
            # The other process learns of the change within its poll interval.
            assert init.status_code == 200


def _call_as(http: httpx.Client, base: str, key: str, server: str = "guarded-pair") -> httpx.Response:
    return http.post(f"{base}/mcp-servers/{server}", json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "getPet", "arguments": {"petId": 1},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}}},
        headers={**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "getPet",
                 "Authorization": f"Bearer {key}"})


def _seconds_until_refused_everywhere(pair, http, key: str, status: int, change: str) -> float:
    """Make the change (in its own process) while polling both gateways every 20 ms with the key; the seconds from
    the change's commit until both answer `status`."""
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(at=live_setup(pair, change)))
    worker.start()
    refused_at: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while (worker.is_alive() or len(refused_at) < 2) and time.monotonic() < deadline:
        for base in (pair.url_of(0), pair.url_of(1)):
            if base not in refused_at and _call_as(http, base, key).status_code == status:
                refused_at[base] = time.time()
        time.sleep(0.02)
    worker.join()
    assert len(refused_at) == 2, f"not refused with {status} everywhere: {refused_at}"
    return max(refused_at.values()) - outcome["at"]


def test_revoked_key_disabled_consumer_and_removed_authorization_stop_working_on_both_processes(pair):
    setup = live_setup(pair, 'cs.guarded_petstore("guarded-pair", consumers=("agent", "helper", "spare"))')
    agent, helper, spare = (setup["consumers"][name] for name in ("agent", "helper", "spare"))
    with httpx.Client(timeout=15) as http:
        for consumer in (agent, helper, spare):
            for base in (pair.url_of(0), pair.url_of(1)):
                served = _call_as(http, base, consumer["key"])
                assert served.status_code == 200, served.text
                assert "Rex" in served.json()["result"]["content"][0]["text"]

        # each change reports the time right after it committed, from the process that made it
        now = '__import__("time").time()'
        revoke = f'[cs.key_revoke(cs.ConsumerApiKey.objects.get(pk={agent["key_id"]})), {now}][1]'
        assert _seconds_until_refused_everywhere(pair, http, agent["key"], 401, revoke) <= 1.0

        deauthorize = (f'[cs.authorization_revoke(cs.McpServer.objects.get(pk={setup["server_id"]}), '
                       f'cs.Consumer.objects.get(pk={helper["id"]})), {now}][1]')
        assert _seconds_until_refused_everywhere(pair, http, helper["key"], 403, deauthorize) <= 1.0

        disable = f'[cs.consumer_set_enabled(cs.Consumer.objects.get(pk={spare["id"]}), False), {now}][1]'
        assert _seconds_until_refused_everywhere(pair, http, spare["key"], 401, disable) <= 1.0


SLOW = "guarded-slow"


@pytest.fixture(scope="module")
def slow_poll():
    """One gateway process on Redis that looks at the config version only every 30 s."""
    server = start_live(extra_env={"REDIS_URL": require_redis(), "GATEWAY_CONFIG_POLL_SECONDS": "30"})
    yield server
    server.stop()


def test_a_key_issued_or_authorized_elsewhere_works_before_the_next_poll(slow_poll):
    """A refused credential is looked at once more against the current version, so a key the console issued on
    another process (the Debug tab's, a new client's) or an authorization granted there works at once."""
    setup = live_setup(slow_poll, f'cs.guarded_petstore("{SLOW}")')
    agent, server = setup["consumers"]["agent"], f'cs.McpServer.objects.get(pk={setup["server_id"]})'
    with httpx.Client(timeout=15) as http:
        assert _call_as(http, slow_poll.url, agent["key"], SLOW).status_code == 200  # the process holds this config
        issued = live_setup(slow_poll, f'cs.key_issue(cs.Consumer.objects.get(pk={agent["id"]}))[1]')
        assert _call_as(http, slow_poll.url, issued, SLOW).status_code == 200

        later_id, later_key = live_setup(slow_poll, f'(lambda c: [c.pk, cs.key_issue(c)[1]])(cs.consumer_create('
                                                    f'{server}.instance.team, "guarded-slow-later"))')
        assert _call_as(http, slow_poll.url, later_key, SLOW).status_code == 403  # known now, not authorized
        live_setup(slow_poll, f'cs.authorize({server}, cs.Consumer.objects.get(pk={later_id})).pk')
        assert _call_as(http, slow_poll.url, later_key, SLOW).status_code == 200
