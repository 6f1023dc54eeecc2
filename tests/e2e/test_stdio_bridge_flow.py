"""The local stdio bridge from the browser: the server page's *Local stdio bridge* tab, copied, launched exactly as
written (the `mcp-gateway` command of this installation) by the official SDK's stdio client, which lists and calls
the server's tools."""
from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from playwright.sync_api import expect

from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]


async def _use(entry: dict) -> tuple[list[str], str]:
    command = Path(sys.executable).parent / entry["command"]  # the console script pip installed next to python
    params = StdioServerParameters(command=str(command), args=entry["args"], env=entry.get("env") or {})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = sorted(tool.name for tool in (await session.list_tools()).tools)
            found = await session.call_tool("getPet", {"petId": 1})
            return tools, found.content[0].text


def use(entry: dict) -> tuple[list[str], str]:
    """An SDK session in its own thread and loop (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _use(entry)).result(timeout=60)


def test_copied_bridge_block_launches_and_serves_the_tools(page, console_server):
    token = console_server.manage("create_api_token", "admin").stdout.strip()
    servers = httpx.get(console_server.url + "/api/v1/mcp-servers/", headers={"Authorization": f"Bearer {token}"})
    server_id = next(s["id"] for s in servers.json()["results"] if s["name"] == "petstore")
    sign_in(page)
    page.goto(f"/console/mcp/{server_id}/")
    page.get_by_role("tab", name="Local stdio bridge").click()
    panel = page.locator("#panel-stdio")
    expect(panel).to_contain_text("pip install mcp-gateway-console")
    page.get_by_role("button", name="Copy Local stdio bridge configuration").click()
    config = json.loads(page.evaluate("navigator.clipboard.readText()"))
    shot(page, "stdio-bridge-01-config")
    entry = config["mcpServers"]["petstore"]
    assert entry["command"] == "mcp-gateway" and entry["args"][0] == "connect"
    tools, pet = use(entry)
    assert {"getPet", "listPets"} <= set(tools)
    assert "Rex" in pet
    assert page.js_errors == []
