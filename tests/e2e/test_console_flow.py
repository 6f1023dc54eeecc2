"""The console in a real browser, end to end: from signing in to an MCP endpoint an SDK client calls, and back."""
from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import expect

from .conftest import shot

pytestmark = [pytest.mark.live, pytest.mark.browser]


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def _sdk_session(url: str, calls):
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await calls(session)


def with_sdk(url: str, calls):
    """Run an MCP SDK session in its own thread and loop (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _sdk_session(url, calls)).result(timeout=60)


def sign_in(page) -> None:
    page.goto("/console/instances/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-pass-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/instances/$"))


def test_console_end_to_end(page, console_server):
    base = console_server.url
    drawer = page.locator("#drawer .drawer")

    # Sign in: the demo instance is there.
    sign_in(page)
    expect(page.get_by_role("link", name="default", exact=True)).to_be_visible()
    shot(page, "01-instances")

    # Create an instance in the side panel.
    page.get_by_role("link", name="Create instance").click()
    expect(drawer).to_be_visible()
    expect(drawer.get_by_label("Name:", exact=True)).to_be_focused()
    drawer.get_by_label("Name:", exact=True).fill("e2e-inst")
    drawer.get_by_label("Region:").fill("e2e-region")
    shot(page, "02-create-instance")
    drawer.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/console/instances/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("e2e-inst")
    expect(page.get_by_role("status")).to_contain_text("Instance e2e-inst created.")
    shot(page, "03-instance-overview")

    # A backend service: the built-in demo REST API, shown reachable.
    page.get_by_role("link", name="Services", exact=True).click()
    page.get_by_role("link", name="Create service").click()
    drawer.get_by_label("Name:", exact=True).fill("pets-api")
    drawer.get_by_label("Base URL:").fill(base + "/demo-api")
    drawer.get_by_role("button", name="Create").click()
    row = page.locator("tr", has_text="pets-api")
    expect(row).to_be_visible()
    expect(row.get_by_text("Reachable", exact=True)).to_be_visible()
    shot(page, "04-services")

    # An HTTP-to-MCP server; errors first show at their field.
    page.get_by_role("link", name="MCP Management").click()
    expect(page.get_by_text("No MCP servers yet.")).to_be_visible()
    page.get_by_role("link", name="Create MCP Service").click()
    drawer.get_by_label("Name:", exact=True).fill("Bad Name")
    drawer.get_by_label("Description:").fill("The demo pet store, through the console.")
    drawer.get_by_label("Domain names:").fill("pets.example.com\nhttp://bad.example.com/x")
    expect(drawer.get_by_label("HTTP to MCP")).to_be_checked()
    drawer.get_by_label("Backend HTTP service").select_option(label=f"pets-api (HTTP, {base}/demo-api)")
    drawer.get_by_role("button", name="Save and Publish").click()
    expect(drawer.locator("#field-name .error")).to_contain_text("lowercase letters")
    drawer.get_by_label("Name:", exact=True).fill("e2e-pets")
    drawer.get_by_role("button", name="Save and Publish").click()
    expect(drawer.locator("#field-domains .error")).to_contain_text("“http://bad.example.com/x” is not a domain name")
    expect(drawer.locator("#field-name .error")).to_have_count(0)
    shot(page, "05-create-mcp-errors")
    drawer.get_by_label("Domain names:").fill("pets.example.com")
    drawer.get_by_role("button", name="Save and Publish").click()
    expect(page).to_have_url(re.compile(r"/console/mcp/\d+/tools/add/$"))
    server_id = int(re.search(r"/console/mcp/(\d+)/", page.url).group(1))
    expect(page.get_by_role("status")).to_contain_text("MCP server e2e-pets published.")

    # Backend authentication: the demo API wants X-API-Key.
    page.get_by_label("API key", exact=True).check()
    page.get_by_label("Header or parameter name:").fill("X-API-Key")
    page.get_by_label("Credential", exact=True).fill("demo-key")
    page.get_by_role("button", name="Save authentication").click()
    expect(page.get_by_role("status")).to_contain_text("Backend authentication saved (API key).")
    expect(page.get_by_text("Stored: ••••••••.")).to_be_visible()  # a short key shows nothing of itself

    # Tools by YAML: a mistake is reported with its line and field; the example works.
    editor = page.get_by_label("Tool YAML")
    editor.fill("tools:\n  - name: bad name\n    description: Broken.\n")
    page.get_by_role("button", name="Save tools").click()
    errors = page.get_by_role("alert", name="Errors in the YAML")
    expect(errors).to_contain_text("Line 2 · tools[0].name")
    expect(page.locator(".gutter .bad")).to_have_text("2")
    shot(page, "06-add-tool-error")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="YAML Example").click()
    expect(editor).to_have_value(re.compile(r"name: listPets[\s\S]*name: getPet"))
    shot(page, "07-add-tool-example")
    page.get_by_role("button", name="Save tools").click()
    expect(page).to_have_url(re.compile(rf"/console/mcp/{server_id}/tools/$"))
    expect(page.get_by_role("status")).to_contain_text("2 created")
    expect(page.locator("tr", has_text="listPets")).to_contain_text("GET")
    expect(page.locator("tr", has_text="getPet")).to_contain_text("{{.config.baseUrl}}/pets/{petId}")
    shot(page, "08-tools")

    # One tool's arguments and generated input schema.
    page.get_by_role("link", name="Arguments and schema of getPet").click()
    expect(drawer).to_contain_text("Input schema")
    expect(drawer.locator("pre").first).to_contain_text('"petId"')
    shot(page, "09-tool-schema")
    page.keyboard.press("Escape")
    expect(drawer).to_have_count(0)

    # Debug: the page itself talks MCP to the gateway.
    page.get_by_role("link", name="Debug", exact=True).click()
    expect(page.locator("#debug-status")).to_contain_text("Connected to e2e-pets")
    expect(page.locator("#debug-tools button")).to_have_count(2)
    page.locator("#debug-tools button", has_text="listPets").click()
    page.get_by_label("status").select_option("available")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#debug-result")).to_contain_text("pet(s) match")
    expect(page.locator("#debug-result")).to_contain_text("Rex")
    expect(page.locator("#debug-latency")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.locator("#debug-request")).to_contain_text('"method": "tools/call"')
    expect(page.locator("#debug-response")).to_contain_text('"isError": false')
    shot(page, "10-debug")

    # The endpoint, copied from the server page, serves the official SDK client.
    page.get_by_role("link", name="Basic information").click()
    expect(page.locator("#clients-title")).to_be_visible()
    shot(page, "11-mcp-server")
    page.get_by_role("button", name="Copy Streamable HTTP endpoint Without DNS").click()
    endpoint = page.evaluate("navigator.clipboard.readText()")
    assert endpoint == f"{base}/instances/e2e-inst/mcp-servers/e2e-pets"
    expect(page.locator("#cfg-claude")).to_contain_text("http://pets.example.com/mcp-servers/e2e-pets")
    page.get_by_label("Endpoint", exact=True).select_option(label=f"Without DNS — {endpoint}")
    expect(page.locator("#cfg-claude")).to_contain_text(endpoint)
    page.get_by_role("tab", name="Cursor").click()
    expect(page.locator("#cfg-cursor")).to_contain_text(endpoint)

    async def list_and_call(session):
        tools = await session.list_tools()
        result = await session.call_tool("listPets", {"status": "available"})
        return sorted(tool.name for tool in tools.tools), result

    names, result = with_sdk(endpoint, list_and_call)
    assert names == ["getPet", "listPets"]
    assert result.is_error is False and "Rex" in text_of(result)

    # Disabling a tool takes effect on the endpoint at once.
    page.get_by_role("link", name=re.compile(r"^Tools \(2\)$")).click()
    page.get_by_role("button", name="Disable tool getPet").click()
    expect(page.locator("tr", has_text="getPet")).to_contain_text("Off")

    async def list_only(session):
        return sorted(tool.name for tool in (await session.list_tools()).tools)

    assert with_sdk(endpoint, list_only) == ["listPets"]

    # Delete, each time after a confirmation.
    page.get_by_role("link", name="Delete", exact=True).first.click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Delete MCP server e2e-pets?")
    shot(page, "12-confirm-delete")
    dialog.get_by_role("button", name="Delete e2e-pets").click()
    expect(page.get_by_text("No MCP servers yet.")).to_be_visible()
    gone = httpx.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        headers={"Accept": "application/json, text/event-stream"}, timeout=10)
    assert gone.status_code == 404

    page.get_by_role("link", name="Services", exact=True).click()
    page.get_by_role("link", name="Delete service pets-api").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete pets-api").click()
    expect(page.get_by_text("No services yet.")).to_be_visible()
    page.get_by_role("link", name="All instances").click()
    page.get_by_role("link", name="Delete instance e2e-inst").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete e2e-inst").click()
    expect(page.get_by_role("status")).to_contain_text("Instance e2e-inst deleted.")
    expect(page.get_by_role("link", name="e2e-inst")).to_have_count(0)
    shot(page, "13-after-delete")
    assert page.js_errors == []


def test_keyboard_and_phone(page, console_server):
    sign_in(page)
    # Keyboard: the first Tab reaches the skip link; the panel opens from the keyboard and Escape returns focus.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    create = page.get_by_role("link", name="Create instance")
    create.focus()
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Create instance")
    expect(panel).to_be_visible()
    expect(panel.get_by_label("Name:", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(create).to_be_focused()

    # A phone: navigation and cards fit the screen without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="default", exact=True).click()
    page.get_by_role("link", name="MCP Management").click()
    expect(page.get_by_role("link", name="petstore")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "14-phone-mcp-management")
    page.get_by_role("link", name="petstore").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "15-phone-mcp-server")
    assert page.js_errors == []


def test_direct_proxy_with_a_service_created_in_place(page, console_server):
    sign_in(page)
    page.get_by_role("link", name="default", exact=True).click()
    page.get_by_role("link", name="MCP Management").click()
    page.get_by_role("link", name="Create MCP Service").click()
    drawer = page.locator("#drawer .drawer")
    drawer.get_by_label("Direct Proxy").check()
    expect(drawer.get_by_text("A backend at xxx.com/test/sse has the service URL")).to_be_visible()
    drawer.get_by_text("Create a backend service here").click()
    drawer.get_by_label("Service name").fill("upstream-mcp")
    drawer.get_by_label("Base URL", exact=True).fill("http://127.0.0.1:9")
    drawer.get_by_role("button", name="Create service").click()
    expect(drawer.get_by_text("Service upstream-mcp created and selected.")).to_be_visible()
    picker = drawer.get_by_label("Backend MCP service")
    expect(picker.locator("option:checked")).to_have_text("upstream-mcp (MCP, http://127.0.0.1:9)")
    drawer.get_by_label("Name:", exact=True).fill("proxied")
    drawer.get_by_label("Backend transport").select_option("sse")
    drawer.get_by_label("Backend path:").fill("/test/sse")
    expect(drawer.locator("[data-path-preview]")).to_have_text("/mcp-servers/proxied → backend /test/sse")
    shot(page, "16-create-direct-proxy")
    drawer.get_by_role("button", name="Save and Publish").click()
    expect(page).to_have_url(re.compile(r"/console/mcp/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Direct Proxy")
    expect(page.locator("dl.props")).to_contain_text("/test/sse")
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete proxied").click()
    expect(page.get_by_role("link", name="proxied")).to_have_count(0)
    assert page.js_errors == []
