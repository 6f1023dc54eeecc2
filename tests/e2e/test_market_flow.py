"""The market in a real browser: browse → search → listing → Get endpoint; the official MCP SDK client connects with
the configuration the page shows and calls a tool; unsubscribe, and the endpoint refuses the key."""
from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from playwright.sync_api import expect

from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]


async def _call_tool(url: str, headers: dict, tool: str, arguments: dict) -> str:
    async with create_mcp_http_client(headers=headers) as http_client:
        async with streamable_http_client(url, http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(tool, arguments)
                assert result.is_error is False
                return "\n".join(block.text for block in result.content if block.type == "text")


def call_tool(url: str, headers: dict, tool: str, arguments: dict) -> str:
    """An SDK session in its own thread and loop (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _call_tool(url, headers, tool, arguments)).result(timeout=60)


def test_market_end_to_end(page, console_server):
    sign_in(page)
    page.get_by_role("link", name="default").first.click()
    # The instance's navigation leads to the market.
    page.get_by_role("complementary", name="Instance").get_by_role("link", name="Market").click()
    expect(page).to_have_url(re.compile(r"/market/$"))
    expect(page.get_by_role("heading", name="MCP Market")).to_be_visible()
    expect(page.locator(".listing-card")).to_have_count(12)  # the first page of the seeded listings
    shot(page, "market-browse")

    page.get_by_label("Search").fill("pets in a store")
    page.get_by_role("button", name="Search").click()
    first = page.locator(".listing-card").first
    expect(first).to_contain_text("Pet Store (demo)")
    expect(first).to_contain_text("Works offline")
    first.get_by_role("link", name="Pet Store (demo)").click()

    expect(page.get_by_role("heading", name="Pet Store (demo)")).to_be_visible()
    expect(page.locator(".readme")).to_contain_text("pet store REST API")
    tools = page.get_by_role("region", name="Tools")
    get_pet = tools.locator("summary").filter(has_text=re.compile(r"^getPet — "))
    expect(get_pet).to_be_visible()
    get_pet.click()
    expect(tools.locator("pre").filter(has_text='"petId"').first).to_be_visible()
    expect(page.get_by_label("Instance")).to_have_value(re.compile(r"\d+"))
    shot(page, "market-listing")
    page.get_by_label("Pet store API key *").fill("demo-key")
    page.get_by_role("button", name="Get endpoint").click()

    expect(page.get_by_role("status").first).to_contain_text("Subscribed to Pet Store (demo)")
    key = page.locator("#api-key").inner_text()
    assert key.startswith("mck_")
    endpoint = page.locator("#ep-http").inner_text()
    assert endpoint.startswith(console_server.url + "/")
    shot(page, "market-endpoint")
    page.get_by_role("tab", name="Cursor").click()
    cursor = json.loads(page.locator("#cfg-cursor").inner_text())
    entry = next(iter(cursor["mcpServers"].values()))
    assert entry == {"url": endpoint, "headers": {"Authorization": f"Bearer {key}"}}

    assert "Rex" in call_tool(entry["url"], entry["headers"], "getPet", {"petId": 1})

    # Clicking Get endpoint again shows the same subscription, not a second one.
    page.goto("/market/l/petstore/")
    page.get_by_role("link", name="Show my subscription").click()
    expect(page.locator("#ep-http")).to_have_text(endpoint)
    expect(page.locator("#api-key")).to_have_count(0)

    page.get_by_role("link", name="Unsubscribe").click()
    page.get_by_role("button", name=re.compile(r"^Unsubscribe Pet Store")).click()
    expect(page).to_have_url(re.compile(r"/market/subscriptions/$"))
    expect(page.get_by_role("status").first).to_contain_text("Unsubscribed from Pet Store (demo)")
    refused = httpx.post(entry["url"], headers={**entry["headers"], "Accept": "application/json, text/event-stream"},
                         json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    assert refused.status_code == 404
    assert page.js_errors == []
