"""A Direct Proxy in a real browser: its Tools tab lists the backend's catalogue, its Debug tab calls through it."""
from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from ..gateway.mcp_backends import streamable_backend
from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]


@pytest.fixture(scope="module")
def proxied(console_server):
    backend = streamable_backend()
    token = console_server.manage("create_api_token", "admin").stdout.strip()
    with httpx.Client(base_url=console_server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        instance = api.get("/instances/").json()["results"][0]["id"]
        service = api.post("/services/", json={"instance": instance, "name": "weather-upstream", "protocol": "mcp",
                                               "base_url": backend.url}).json()
        server = api.post("/mcp-servers/", json={
            "instance": instance, "name": "weather-proxy", "server_type": "direct_proxy",
            "backend_service": service["id"], "backend_transport": "streamable_http", "backend_path": backend.path,
            "allow_tools": ["echo", "add", "slow"]})
        assert server.status_code == 201, server.text
    yield server.json()
    backend.stop()


def test_tools_tab_and_debug_through_the_proxy(page, proxied):
    sign_in(page)
    page.goto(f"/console/mcp/{proxied['id']}/")
    expect(page.locator(".copy-row", has_text="Backend path").last).to_contain_text("/mcp-servers/weather-proxy/test/mcp")
    page.get_by_role("link", name="Tools, resources, prompts").click()
    tools = page.locator("section", has=page.get_by_role("heading", name=re.compile("^Tools")))
    expect(tools).to_contain_text("3 of ")
    expect(tools.locator("tr", has_text="echo")).to_contain_text("Yes")
    expect(tools.locator("tr", has_text="sample")).to_contain_text("Hidden")
    expect(page.locator("section", has=page.get_by_role("heading", name="Resources"))).to_contain_text(
        "weather://city/{city}")
    expect(page.locator("section", has=page.get_by_role("heading", name="Prompts"))).to_contain_text("forecast")
    shot(page, "30-proxy-tools")
    page.get_by_role("link", name="Refresh from backend").click()
    expect(tools).to_contain_text("3 of ")

    page.get_by_role("link", name="Debug", exact=True).click()
    expect(page.locator("#debug-status")).to_contain_text("Connected to weather")
    expect(page.locator("#debug-tools button")).to_have_count(3)
    page.locator("#debug-tools button", has_text="echo").click()
    page.get_by_label("text").fill("through the proxy")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#debug-result")).to_contain_text("echo: through the proxy")
    expect(page.locator("#debug-response")).to_contain_text('"isError": false')
    shot(page, "31-proxy-debug")
    assert page.js_errors == []
