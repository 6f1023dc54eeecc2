"""`mcp-gateway router` through the official SDK's stdio client: the market router's three tools for a router key,
configured as the router page shows (address and key in env, as for `npx nacos-mcp-router`)."""
from __future__ import annotations

import json

import pytest

from ..gateway.test_sdk_clients import text_of
from .bridge import initialize_line, run, stdio_session

pytestmark = pytest.mark.live


@pytest.fixture
def router_key(api) -> dict:
    """A router key; the subscriptions its test adds go again afterwards (the demo server is shared)."""
    before = {sub["id"] for sub in api.get("/market/subscriptions/").json()["results"]}
    issued = api.post("/market/router/key", json={})
    assert issued.status_code == 201, issued.text
    yield issued.json()
    for sub in api.get("/market/subscriptions/").json()["results"]:
        if sub["id"] not in before:
            assert api.delete(f"/market/subscriptions/{sub['id']}/").status_code == 204


def launch_block(router_key: dict) -> dict:
    """The stdio entry the REST API (and the router page) hands out with the key."""
    config = next(c for c in router_key["client_configs"] if c["id"] == "stdio")
    return json.loads(config["text"])["mcpServers"]["market"]


async def test_router_searches_adds_and_uses_a_market_server(demo_server, router_key):
    entry = launch_block(router_key)
    assert entry["command"] == "mcp-gateway" and entry["args"] == ["router"]
    assert entry["env"] == {"MCP_GATEWAY_URL": demo_server.url, "MCP_GATEWAY_ROUTER_KEY": router_key["api_key"]}
    async with stdio_session(*entry["args"], env=entry["env"]) as (session, err):
        init = await session.initialize()
        assert init.server_info.name == "market-router"
        assert {t.name for t in (await session.list_tools()).tools} == {"search_mcp_server", "add_mcp_server",
                                                                        "use_tool"}
        found = await session.call_tool("search_mcp_server", {"task_description": "weather forecast for a city"})
        assert "demo-weather" in [s["name"] for s in json.loads(text_of(found))["servers"]]

        added = await session.call_tool("add_mcp_server", {"mcp_server_name": "demo-weather"})
        assert added.is_error is False
        assert "currentWeather" in [t["name"] for t in json.loads(text_of(added))["tools"]]

        used = await session.call_tool("use_tool", {"mcp_server_name": "demo-weather",
                                                    "mcp_tool_name": "currentWeather", "params": {"city": "Oslo"}})
        assert used.is_error is False and text_of(used).startswith("Oslo: ")
    assert err.text() == ""


def test_router_with_a_revoked_key_is_exit_status_3(demo_server, api, router_key):
    old = router_key["api_key"]
    assert api.post("/market/router/key", json={}).status_code == 201  # a new key revokes the old one
    status, out, err = run("router", "--url", demo_server.url, lines=[initialize_line(0)], env={
        "MCP_GATEWAY_ROUTER_KEY": old})
    assert status == 3
    assert f"refused the consumer credential (API key mck_…{old[-4:]}) sent as Authorization: Bearer" in err
    assert f"{demo_server.url}/market/router/mcp" in err and old not in err
    assert [m["id"] for m in out] == [0]
