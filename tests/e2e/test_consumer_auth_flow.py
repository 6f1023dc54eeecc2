"""Consumer Authentication in a real browser: turn it on for a server, create a consumer in place from the Authorize
drop-down, issue a key, copy the generated client configuration; the official MCP SDK client connects with the
header from that configuration and is refused (401) without it."""
from __future__ import annotations

import asyncio
import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from playwright.sync_api import expect

from ..node_tools import require_node_tools
from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}


async def _list_tools(url: str, headers: dict[str, str]) -> list[str]:
    async with create_mcp_http_client(headers=headers) as http_client:
        async with streamable_http_client(url, http_client=http_client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return sorted(tool.name for tool in (await session.list_tools()).tools)


def list_tools(url: str, headers: dict[str, str]) -> list[str]:
    """An SDK session in its own thread and loop (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _list_tools(url, headers)).result(timeout=60)


def set_consumer_auth(page, server_id: int, *, enabled: bool) -> None:
    page.goto(f"/console/mcp/{server_id}/consumer-auth/")
    switch = page.get_by_label("Enable Status")
    switch.check() if enabled else switch.uncheck()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Consumer Authentication is " + ("on" if enabled else "off"))


def run_inspector_line(line: str, key: str, home) -> dict:
    """One line of the copied Inspector configuration, run as written (the placeholder replaced by the key)."""
    argv = shlex.split(line.replace("<YOUR_API_KEY>", key))
    assert argv[:3] == ["npx", "@modelcontextprotocol/inspector", "--cli"], line
    tools = require_node_tools()
    done = tools.run(tools.inspector, *argv[2:], "--format", "json", home=home, timeout=60)
    assert done.returncode == 0, (line, done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)["result"]


def test_consumer_auth_flow(page, console_server, tmp_path):
    drawer = page.locator("#drawer .drawer")
    sign_in(page)
    page.get_by_role("link", name="default", exact=True).click()
    page.get_by_role("link", name="MCP Management").click()
    page.get_by_role("link", name="petstore").click()
    server_id = int(re.search(r"/console/mcp/(\d+)/", page.url).group(1))
    page.get_by_role("link", name="Consumer Authentication", exact=True).click()
    expect(page.get_by_role("heading", name="Consumer Authentication")).to_be_visible()
    try:
        # Off by default; API Key and Authorization: Bearer are the defaults.
        expect(page.get_by_label("Enable Status")).not_to_be_checked()
        expect(page.get_by_label("API Key")).to_be_checked()
        expect(page.get_by_label("Authorization: Bearer (recommended)")).to_be_checked()
        expect(page.get_by_label("Header or query parameter name:")).to_be_hidden()
        page.get_by_label("Enable Status").check()
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("status").first).to_contain_text("Consumer Authentication is on")
        expect(page.locator("#no-consumer-warning")).to_contain_text("no consumer is authorized")
        shot(page, "consumer-auth-01-enabled")

        # Authorize: the drop-down's last entry creates a consumer in place.
        page.get_by_role("link", name="Authorize", exact=True).click()
        expect(drawer).to_be_visible()
        picker = drawer.get_by_label("Consumer:", exact=True)
        expect(picker.locator("option").last).to_have_text("Create Consumer")
        picker.select_option(label="Create Consumer")
        drawer.get_by_label("New consumer name:").fill("e2e-laptop")
        expect(drawer.get_by_label("All tools")).to_be_checked()
        shot(page, "consumer-auth-02-create-in-place")
        drawer.get_by_role("button", name="Authorize", exact=True).click()
        expect(page.get_by_role("status").first).to_contain_text("Consumer e2e-laptop authorized on petstore.")
        row = page.locator("#authorizations tr", has_text="e2e-laptop")
        expect(row).to_contain_text("All tools")
        expect(page.locator("#no-consumer-warning")).to_have_count(0)

        # Issue a key on the consumer's page: shown once, with a copy button.
        row.get_by_role("link", name="e2e-laptop").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("e2e-laptop")
        page.get_by_role("link", name="Issue API key").click()
        drawer.get_by_label("Name:", exact=True).fill("e2e")
        drawer.get_by_role("button", name="Issue API key").click()
        expect(drawer).to_contain_text("it is not shown again")
        drawer.get_by_role("button", name="Copy the API key").click()
        key = page.evaluate("navigator.clipboard.readText()")
        assert re.fullmatch(r"mck_[A-Za-z0-9_-]{43}", key), key
        shot(page, "consumer-auth-03-key-issued")
        drawer.get_by_role("link", name="Done").click()
        expect(page.locator("#api-keys tr", has_text="mck_••••" + key[-4:])).to_contain_text("active")

        # The server page's client configuration carries the header with a placeholder for the key.
        page.goto(f"/console/mcp/{server_id}/")
        page.get_by_role("tab", name="Cursor").click()
        page.get_by_role("button", name="Copy Cursor configuration").click()
        config = json.loads(page.evaluate("navigator.clipboard.readText()"))
        entry = config["mcpServers"]["petstore"]
        assert entry["headers"] == {"Authorization": "Bearer <YOUR_API_KEY>"}
        expect(page.locator("#cfg-claude")).to_contain_text('"--header"')
        expect(page.locator("#cfg-inspector")).to_contain_text('--header "Authorization: Bearer <YOUR_API_KEY>"')
        page.get_by_role("tab", name="MCP Inspector").click()
        page.get_by_role("button", name="Copy MCP Inspector configuration").click()
        inspector_lines = page.evaluate("navigator.clipboard.readText()").splitlines()
        shot(page, "consumer-auth-04-client-config")
        url = entry["url"]
        headers = {name: value.replace("<YOUR_API_KEY>", key) for name, value in entry["headers"].items()}

        # The SDK client connects with the header from the configuration...
        assert "listPets" in list_tools(url, headers)
        # So does the Inspector CLI, over both transports, with the commands as the page gave them.
        for line in inspector_lines[:2]:
            listed = run_inspector_line(line, key, tmp_path)
            assert "listPets" in {tool["name"] for tool in listed["tools"]}, line
        # ...and without it (or with a wrong key) the endpoint answers 401 and says how to send the credential.
        accept = {"Accept": "application/json, text/event-stream"}
        for sent in ({}, {"Authorization": "Bearer mck_" + "x" * 43}):
            refused = httpx.post(url, json=INITIALIZE, headers={**accept, **sent}, timeout=10)
            assert refused.status_code == 401, (sent, refused.status_code, refused.text[:300])
            assert refused.headers["WWW-Authenticate"].startswith("Bearer realm=")
            assert "Authorization: Bearer" in refused.json()["error"]["message"]
        # The SDK client without the header fails with the gateway's explanation of how to send the key.
        with pytest.raises(Exception) as failed:
            list_tools(url, {})
        assert "requires an API key: send it as Authorization: Bearer" in repr(failed.value), repr(failed.value)

        # Debug: an admin picks the consumer; the console issues a one-hour key and the panel calls as it.
        page.goto(f"/console/mcp/{server_id}/debug/")
        expect(page.locator("#debug-credential")).to_contain_text("Consumer Authentication is on")
        page.get_by_role("button", name="Connect and list tools").click()
        expect(page.locator("#debug-status")).to_contain_text("HTTP 401")
        page.get_by_label("Consumer", exact=True).select_option(label="e2e-laptop")
        page.get_by_role("button", name="Use this consumer").click()
        expect(page.locator("#debug-credential-state")).to_contain_text("Calling as e2e-laptop (for 60 minutes)")
        expect(page.locator("#debug-status")).to_contain_text("Connected to petstore")
        expect(page.locator("#debug-tools button", has_text="listPets")).to_be_visible()
        shot(page, "consumer-auth-05-debug")
        # A pasted key works too; a wrong one gets the 401 explained.
        page.get_by_label("Or paste a key").fill("mck_" + "y" * 43)
        page.get_by_role("button", name="Use it").click()
        expect(page.locator("#debug-status")).to_contain_text("HTTP 401")
        page.get_by_label("Or paste a key").fill(key)
        page.get_by_role("button", name="Use it").click()
        expect(page.locator("#debug-status")).to_contain_text("Connected to petstore")

        # JWT: an HS256 credential on the consumer; Debug signs a one-hour token with it.
        page.goto(f"/console/mcp/{server_id}/consumer-auth/")
        page.get_by_label("JWT", exact=True).check()
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("status").first).to_contain_text("Consumer Authentication is on")
        page.locator("#authorizations").get_by_role("link", name="e2e-laptop").click()
        page.get_by_role("link", name="Add JWT credential").click()
        drawer.get_by_label("Algorithm:").select_option("HS256")
        drawer.get_by_label("HMAC secret:").fill("an-hmac-secret-for-the-e2e-laptop-0001")
        drawer.get_by_role("button", name="Add JWT credential").click()
        expect(page.locator("#jwt-credentials")).to_contain_text("••••••••0001")
        page.goto(f"/console/mcp/{server_id}/debug/")
        expect(page.locator("#debug-credential")).to_contain_text("signs a token valid for 1 hour")
        page.get_by_label("Consumer", exact=True).select_option(label="e2e-laptop")
        page.get_by_role("button", name="Use this consumer").click()
        expect(page.locator("#debug-status")).to_contain_text("Connected to petstore")
        shot(page, "consumer-auth-06-debug-jwt")
        assert page.js_errors == []
    finally:
        # Other browser tests share this live server and its petstore: open it again.
        set_consumer_auth(page, server_id, enabled=False)
