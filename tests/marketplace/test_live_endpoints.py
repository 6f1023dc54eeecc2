"""Market endpoints against a live server with the official MCP SDK: Get endpoint through the REST API, connect with
the shown configuration, call tools of the offline listings, rotate, unsubscribe and be refused; and the market
router's three tools."""
from __future__ import annotations

import json

import httpx
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.live


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def cursor_entry(answer: dict) -> dict:
    """The Cursor configuration the market shows: its one server's URL and headers."""
    config = next(c for c in answer["client_configs"] if c["id"] == "cursor")
    return next(iter(json.loads(config["text"])["mcpServers"].values()))


async def call(url: str, headers: dict, tool: str, arguments: dict):
    async with create_mcp_http_client(headers=headers) as http_client:
        async with streamable_http_client(url, http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                return names, await session.call_tool(tool, arguments)


@pytest.fixture
def instance_id(api) -> int:
    return next(i["id"] for i in api.get("/instances/").json()["results"] if i["name"] == "default")


def subscribe(api, slug: str, instance: int, config: dict) -> dict:
    response = api.post(f"/market/listings/{slug}/subscribe", json={"instance": instance, "config": config})
    assert response.status_code == 201, response.text
    return response.json()


async def test_get_endpoint_then_call_rotate_and_unsubscribe(api, instance_id):
    answer = subscribe(api, "petstore", instance_id, {"api_key": "demo-key"})
    entry = cursor_entry(answer)
    assert entry["url"] == answer["endpoints"]["streamable_http"]
    assert entry["headers"] == {"Authorization": f"Bearer {answer['api_key']}"}
    names, found = await call(entry["url"], entry["headers"], "getPet", {"petId": 1})
    assert {"listPets", "getPet", "createPet"} <= names
    assert found.is_error is False and "Rex" in text_of(found)

    # SSE works with the same key.
    async with create_mcp_http_client(headers=entry["headers"]) as _:
        async with sse_client(answer["endpoints"]["sse"], headers=entry["headers"]) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert (await session.call_tool("getPet", {"petId": 2})).is_error is False

    sub_id = answer["subscription"]["id"]
    rotated = api.post(f"/market/subscriptions/{sub_id}/rotate-key").json()
    old_headers, new_headers = entry["headers"], cursor_entry(rotated)["headers"]
    assert httpx.post(entry["url"], headers=old_headers, json={}).status_code == 401
    _, again = await call(entry["url"], new_headers, "getPet", {"petId": 1})
    assert again.is_error is False

    assert api.delete(f"/market/subscriptions/{sub_id}/").status_code == 204
    refused = httpx.post(entry["url"], headers={**new_headers, "Accept": "application/json, text/event-stream"},
                         json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                             "protocolVersion": "2025-11-25", "capabilities": {},
                             "clientInfo": {"name": "t", "version": "1"}}})
    # Exactly what was provisioned is gone: the endpoint itself, so the key reaches nothing.
    assert refused.status_code == 404
    assert refused.json()["error"]["message"].startswith("No MCP server named")


async def test_offline_demo_listings_answer_tools(api, instance_id):
    weather = cursor_entry(subscribe(api, "demo-weather", instance_id, {}))
    _, current = await call(weather["url"], weather["headers"], "currentWeather", {"city": "Paris"})
    assert current.is_error is False and text_of(current).startswith("Paris: ") and "°C" in text_of(current)
    cats = cursor_entry(subscribe(api, "demo-cat-pictures", instance_id, {}))
    _, image = await call(cats["url"], cats["headers"], "generateCatImage", {"color": "black", "text": "hi"})
    assert image.is_error is False
    assert image.content[0].type == "image" and image.content[0].mime_type == "image/svg+xml"
    _, fact = await call(cats["url"], cats["headers"], "catFact", {"n": 1})
    assert "clowder" in text_of(fact)


async def test_router_searches_adds_and_uses_tools(demo_server, api):
    issued = api.post("/market/router/key", json={})
    assert issued.status_code == 201, issued.text
    router = issued.json()
    assert router["endpoint"] == demo_server.url + "/market/router/mcp"
    headers = {"Authorization": f"Bearer {router['api_key']}"}
    async with create_mcp_http_client(headers=headers) as http_client:
        async with streamable_http_client(router["endpoint"], http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                assert tools == {"search_mcp_server", "add_mcp_server", "use_tool"}

                found = await session.call_tool("search_mcp_server", {"task_description": "generate a cat image",
                                                                      "key_words": "picture"})
                servers = json.loads(text_of(found))["servers"]
                assert servers[0]["name"] == "demo-cat-pictures"
                assert "generateCatImage" in [t["name"] for t in servers[0]["tools"]]

                early = await session.call_tool("use_tool", {"mcp_server_name": "wikipedia",
                                                             "mcp_tool_name": "pageSummary",
                                                             "params": {"title": "Oslo"}})
                assert early.is_error is True and "add_mcp_server" in text_of(early)

                added = await session.call_tool("add_mcp_server", {"mcp_server_name": "demo-weather"})
                assert added.is_error is False
                assert [t["name"] for t in json.loads(text_of(added))["tools"]] == ["currentWeather", "forecast"]

                used = await session.call_tool("use_tool", {"mcp_server_name": "demo-weather",
                                                            "mcp_tool_name": "currentWeather",
                                                            "params": {"city": "Oslo"}})
                assert used.is_error is False and text_of(used).startswith("Oslo: ")
                wrong = await session.call_tool("use_tool", {"mcp_server_name": "demo-weather",
                                                             "mcp_tool_name": "nope", "params": {}})
                assert wrong.is_error is True
    # The router's subscription is an ordinary one: listed, with its own key.
    subs = api.get("/market/subscriptions/").json()["results"]
    assert "demo-weather" in [s["listing"] for s in subs]
    assert httpx.post(router["endpoint"], json={}, headers={"Authorization": "Bearer mck_wrong"}).status_code == 401


@pytest.fixture(scope="module")
def remote_backends():
    from tests.gateway.mcp_backends import sse_backend, streamable_backend

    started = {"streamable-http": streamable_backend("remote-weather"), "sse": sse_backend("remote-weather")}
    yield started
    for backend in started.values():
        backend.stop()


@pytest.mark.parametrize("remote_type", ["streamable-http", "sse"])
async def test_remote_listing_relays_a_real_mcp_server(api, instance_id, remote_backends, remote_type):
    remote_backend = remote_backends[remote_type]
    team = api.get("/teams/").json()["results"][0]["id"]
    document = {"$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
                "name": f"io.example.loopback/remote-weather-{remote_type}", "title": "Remote Weather",
                "description": "A remote MCP server relayed by the Direct Proxy.", "version": "1.0.0",
                "remotes": [{"type": remote_type, "url": remote_backend.url + remote_backend.path}]}
    submitted = api.post("/market/submissions/", json={"team": team, "source": "server_json",
                                                       "server_json": document})
    assert submitted.status_code == 201, submitted.text
    assert api.post(f"/market/submissions/{submitted.json()['id']}/approve").status_code == 200
    listing = submitted.json()["listing"]
    assert api.get(f"/market/listings/{listing}/").json()["kind"] == "remote"

    answer = subscribe(api, listing, instance_id, {})
    entry = cursor_entry(answer)
    names, echoed = await call(entry["url"], entry["headers"], "echo", {"text": "through the market"})
    assert {"echo", "add"} <= names
    assert echoed.is_error is False and text_of(echoed) == "echo: through the market"
    # The gateway's key is the subscriber's; the remote server never sees it.
    _, who = await call(entry["url"], entry["headers"], "whoami", {})
    assert answer["api_key"] not in text_of(who)
    # The subscriber may use the gateway's SSE endpoint whichever transport the remote server speaks.
    async with sse_client(answer["endpoints"]["sse"], headers=entry["headers"]) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            added = await session.call_tool("add", {"a": 2, "b": 3})
            assert added.is_error is False and text_of(added) == "5"

    assert api.delete(f"/market/subscriptions/{answer['subscription']['id']}/").status_code == 204
    refused = httpx.post(entry["url"], headers={**entry["headers"], "Accept": "application/json, text/event-stream"},
                         json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 404
