"""Two Daphne processes on one Redis serve one session interchangeably."""
from __future__ import annotations

import json

import httpx
import pytest

from ..conftest import require_redis
from ..live import start_live

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
