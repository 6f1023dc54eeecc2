"""Two gateway processes on one Redis: a hosted session's child lives in the process that handled initialize, and
the session's requests reaching the other process are forwarded to it."""
from __future__ import annotations

import httpx
import pytest

from ..conftest import require_redis
from ..live import start_live
from ..node_tools import require_conformance_tools
from .test_hosted_stdio import create_entry, wait_installed

pytestmark = [pytest.mark.live, pytest.mark.redis]

ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    url = require_redis()
    tools = require_conformance_tools()
    server = start_live(processes=2, extra_env={
        "REDIS_URL": url, "CELERY_TASK_ALWAYS_EAGER": "1",  # the install job in-process: no worker in this test
        "HOSTED_CACHE_DIR": str(tmp_path_factory.mktemp("hosted-cache")), "HOSTED_NODE_DIR": str(tools.bin_dir)})
    yield server
    server.stop()


def test_a_session_opened_on_one_process_is_served_through_the_other(pair):
    token = pair.manage("create_api_token", "admin").stdout.strip()
    with httpx.Client(base_url=pair.url_of(0) + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        entry = create_entry(api, "everything")
        assert wait_installed(api, entry["id"])["state"] == "installed"
        instance = api.get("/instances/").json()["results"][0]["id"]
        created = api.post("/mcp-servers/", json={"instance": instance, "name": "everything",
                                                  "server_type": "hosted_stdio", "hosted_entry": entry["id"],
                                                  "hosted_variables": {"API_TOKEN": "t"}})
        assert created.status_code == 201, created.text
    a, b = pair.url_of(0) + "/mcp-servers/everything", pair.url_of(1) + "/mcp-servers/everything"
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        init = http.post(a, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert init.status_code == 200, init.text
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        assert http.post(a, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
                         ).status_code == 202
        listed = http.post(b, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).json()
        assert "echo" in {tool["name"] for tool in listed["result"]["tools"]}
        called = http.post(b, headers=headers, json={"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                                     "params": {"name": "echo", "arguments": {"message": "b"}}}).json()
        assert called["result"]["content"][0]["text"] == "Echo: b"
        echoed = http.post(a, headers=headers, json={"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                                                     "params": {"name": "echo", "arguments": {"message": "a"}}})
        assert echoed.json()["result"]["content"][0]["text"] == "Echo: a"
        # Ended from the other process: the owner's child stops once it sees the session gone.
        assert http.delete(b, headers=headers).status_code in (200, 204)
        gone = http.post(a, headers=headers, json={"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        assert gone.status_code == 404
