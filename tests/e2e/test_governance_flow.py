"""Governance in a real browser: after tool calls the server's Overview charts render from the call records; a
rate limit added on the Rate limits tab refuses the next call, which the Calls page lists and exports as CSV."""
from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]

ACCEPT = {"Accept": "application/json, text/event-stream"}


def call_petstore(base: str, pet_ids: list[int]) -> list[int]:
    with httpx.Client(timeout=15, headers=ACCEPT) as http:
        init = http.post(base + "/mcp-servers/petstore", json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "chart-client", "version": "1"}}})
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        return [http.post(base + "/mcp-servers/petstore", headers=headers, json={
            "jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
            "params": {"name": "getPet", "arguments": {"petId": pet}}}).status_code for i, pet in enumerate(pet_ids)]


@pytest.fixture
def petstore_limits_removed(console_server):
    """The demo server is shared with other browser tests: the limits this test adds go again afterwards."""
    yield
    token = console_server.manage("create_api_token", "admin").stdout.strip()
    with httpx.Client(base_url=console_server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        server = next(s for s in api.get("/mcp-servers/").json()["results"] if s["name"] == "petstore")
        policies = api.get(f"/mcp-servers/{server['id']}/rate-limits/").json()
        for policy in policies.get("results", policies) if isinstance(policies, dict) else policies:
            assert api.delete(f"/rate-limits/{policy['id']}/").status_code in (200, 204)


def test_overview_charts_render_with_data_and_a_limit_shows_on_the_calls_page(page, console_server,
                                                                              petstore_limits_removed):
    base = console_server.url
    assert call_petstore(base, [1, 2, 1, 99999]) == [200] * 4  # the last one: the backend's 404
    sign_in(page)
    page.get_by_role("link", name="default", exact=True).click()
    page.get_by_role("link", name="MCP Management").click()
    page.get_by_role("link", name="petstore").click()
    traffic = page.locator("section.traffic")
    deadline = time.monotonic() + 15
    while traffic.get_attribute("data-loaded") != "4" and time.monotonic() < deadline:
        time.sleep(0.5)  # records are written about once a second
        page.reload()
        traffic = page.locator("section.traffic")
    expect(traffic).to_have_attribute("data-loaded", "4")
    expect(traffic.get_by_role("status")).to_have_text("4 calls, 1 not ok, in the last 24 hours.")
    # uPlot drew both charts (a canvas each, with the series in the legend) and the top lists are filled.
    expect(traffic.locator('[data-chart="calls"] canvas')).to_have_count(1)
    expect(traffic.locator('[data-chart="latency"] canvas')).to_have_count(1)
    expect(traffic.locator('[data-chart="calls"] .u-legend')).to_contain_text("errors")
    expect(traffic.locator('[data-top="tools"] li')).to_have_text(["getPet 4"])
    expect(traffic.locator('[data-top="consumers"] li')).to_have_text(["(anonymous) 4"])
    painted = page.evaluate("""() => {
        const canvas = document.querySelector('[data-chart="calls"] canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let coloured = 0;
        for (let i = 0; i < data.length; i += 4) { if (data[i + 3] > 0) coloured++; }
        return coloured;
    }""")
    assert painted > 100
    shot(page, "governance-01-overview-charts")

    # A limit of one call a day for every consumer, added in the drawer.
    page.get_by_role("link", name="Rate limits").click()
    page.get_by_role("link", name="Add rate limit").click()
    drawer = page.locator("#drawer .drawer")
    drawer.get_by_label("Requests").fill("1")
    drawer.get_by_label("Window").select_option("day")
    drawer.get_by_role("button", name="Save rate limit").click()
    expect(page.locator("#rate-limits")).to_contain_text("1 per day")
    shot(page, "governance-02-rate-limits")
    assert call_petstore(base, [1, 1]) == [200, 429]

    page.get_by_role("link", name="Calls").click()
    deadline = time.monotonic() + 15
    while page.locator('#calls tr[data-outcome="limited"]').count() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    page.get_by_label("Outcome").select_option("limited")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#calls tbody tr")).to_have_count(1)
    expect(page.locator("#calls tbody tr")).to_contain_text("Limited")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()
    lines = text.strip().splitlines()
    assert lines[0].startswith("at,instance,mcp_server,tool,consumer,outcome")
    assert len(lines) == 2 and ",petstore,getPet,,limited," in lines[1]
    page.locator("#calls tbody tr a").first.click()
    expect(page.locator("#call-record")).to_contain_text("Rate limit exceeded: 1 requests per day.")
    shot(page, "governance-03-call-detail")

    # The instance dashboard reads the same records.
    page.get_by_role("link", name="Traffic").click()
    expect(page.locator("section.traffic")).to_have_attribute("data-loaded", re.compile(r"^[6-9]$"))
    expect(page.locator('section.traffic [data-chart="latency"] canvas')).to_have_count(1)
    shot(page, "governance-04-instance-traffic")
    assert page.js_errors == []


def test_an_authorization_gets_its_own_rate_limit_on_the_consumer_authentication_tab(page, console_server):
    drawer = page.locator("#drawer .drawer")
    sign_in(page)
    page.get_by_role("link", name="default", exact=True).click()
    page.get_by_role("link", name="MCP Management").click()
    page.get_by_role("link", name="petstore").click()
    page.get_by_role("link", name="Consumer Authentication", exact=True).click()
    page.get_by_role("link", name="Authorize", exact=True).click()
    drawer.get_by_label("Consumer:", exact=True).select_option(label="Create Consumer")
    drawer.get_by_label("New consumer name:").fill("e2e-limited")
    drawer.get_by_role("button", name="Authorize", exact=True).click()
    row = page.locator("#authorizations tr", has_text="e2e-limited")
    try:
        expect(row.locator("td.rate-limits")).to_contain_text("The server's policy")
        row.get_by_role("link", name="Add limit").click()
        expect(drawer).to_contain_text("Add rate limit")
        expect(drawer.get_by_label("Consumer")).to_have_value(re.compile(r"^\d+$"))
        # The console focuses the panel's first field once the swap has settled: typing before that could land there.
        expect(drawer.get_by_label("Consumer")).to_be_focused()
        drawer.get_by_label("Requests").fill("20")
        drawer.get_by_label("Window").select_option("hour")
        drawer.get_by_role("button", name="Save rate limit").click()
        # Saved, and back on the Consumer Authentication tab with the limit in the consumer's row.
        expect(page.get_by_role("heading", name="Consumer Authentication")).to_be_visible()
        expect(row.locator("td.rate-limits")).to_contain_text("20 per hour")
        shot(page, "governance-05-authorization-rate-limit")
        row.get_by_role("link", name=re.compile(r"^Edit rate limit 20 per hour")).click()
        expect(drawer).to_contain_text("Edit rate limit (e2e-limited)")
        expect(drawer.get_by_label("Requests")).to_have_value("20")
        expect(drawer.get_by_label("Tool")).to_be_focused()
        drawer.get_by_label("Requests").fill("25")
        drawer.get_by_role("button", name="Save rate limit").click()
        expect(row.locator("td.rate-limits")).to_contain_text("25 per hour")
        expect(row.locator("td.rate-limits")).not_to_contain_text("20 per hour")
    finally:
        # The tab is shared with other browser tests: the authorization goes again (its limit stays, unused).
        page.goto(page.url)
        page.locator("#authorizations tr", has_text="e2e-limited").get_by_role("link", name="Revoke").click()
        drawer.get_by_role("button", name="Revoke").click()
        expect(page.locator("#authorizations tr", has_text="e2e-limited")).to_have_count(0)
    assert page.js_errors == []
