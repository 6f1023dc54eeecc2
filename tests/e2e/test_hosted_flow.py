"""Hosted stdio in a real browser: staff add server-everything to the catalogue and watch it install, a server of it
is created in Create MCP Service, the Debug tab calls it, and its page shows the running child."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..live import start_live
from ..node_tools import EVERYTHING_VERSION, require_conformance_tools
from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    """A live server of this module's own, whose catalogue installs into a scratch cache with the pinned Node."""
    tools = require_conformance_tools()
    server = start_live(extra_env={"HOSTED_CACHE_DIR": str(tmp_path_factory.mktemp("hosted-e2e")),
                                   "HOSTED_NODE_DIR": str(tools.bin_dir),
                                   "CELERY_TASK_ALWAYS_EAGER": "1"})  # the install in-process: no worker here
    yield server
    server.stop()


def test_staff_install_an_entry_and_a_team_runs_it(page):
    sign_in(page)
    page.get_by_role("link", name="Hosted catalogue").click()
    expect(page.get_by_role("heading", name="Hosted stdio servers")).to_be_visible()
    page.get_by_role("link", name="Add entry").click()
    page.get_by_label("Slug:").fill("everything")
    page.get_by_label("Title:").fill("Everything")
    page.get_by_label("Package:").fill("@modelcontextprotocol/server-everything")
    page.get_by_label("Pinned version:").fill("^2026")
    page.get_by_label("Command:").fill("mcp-server-everything")
    page.get_by_label("Arguments:").fill("stdio")
    page.get_by_role("button", name="Add and install").click()
    expect(page.locator("#field-version")).to_contain_text("Pin one exact version")
    page.get_by_label("Pinned version:").fill(EVERYTHING_VERSION)
    page.get_by_role("button", name="Add and install").click()
    expect(page).to_have_url(re.compile(r"/console/hosted/\d+/$"))
    # The install runs in the background; the page follows it until it is done.
    expect(page.locator("#install-state")).to_contain_text("Installed", timeout=300_000)
    expect(page.locator("#install-state")).to_contain_text("npm install")
    shot(page, "60-hosted-entry-installed")

    page.goto("/console/instances/")
    page.get_by_role("link", name=re.compile("default|demo")).first.click()
    page.get_by_role("link", name="MCP Management").click()
    page.get_by_role("link", name="Create MCP Service").click()
    drawer = page.locator("#drawer .drawer")
    drawer.get_by_label("Name:", exact=True).fill("everything")
    drawer.get_by_label("Hosted stdio").check()
    expect(drawer.get_by_label("Backend service")).to_be_hidden()
    drawer.get_by_label("Catalogue entry:").select_option(
        label=f"Everything (@modelcontextprotocol/server-everything@{EVERYTHING_VERSION})")
    drawer.get_by_role("button", name="Save and Publish").click()
    expect(page.locator(".page-head")).to_contain_text("Hosted stdio")
    status = page.locator("#hosted-status")
    expect(status).to_contain_text("Installed")
    expect(status).to_contain_text("No process running")

    page.get_by_role("link", name="Debug", exact=True).click()
    expect(page.locator("#debug-status")).to_contain_text("Connected to")
    page.locator("#debug-tools button", has_text=re.compile("^echo")).click()
    page.get_by_label("message").fill("from the browser")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#debug-result")).to_contain_text("Echo: from the browser")

    page.get_by_role("link", name="Basic information").click()
    expect(status.locator("tbody tr")).to_have_count(1)
    expect(status.locator("tbody tr")).to_contain_text(re.compile(r"\d+ MB"))
    shot(page, "61-hosted-server-processes")
    assert page.js_errors == []
