"""Browser fixtures: a live server of its own, and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..live import ROOT, in_ci, start_live

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def console_server():
    """`make run` in miniature, apart from the gateway tests' server so the browser's edits stay its own."""
    server = start_live()
    yield server
    server.stop()


# Module scope: while Playwright's sync API is running, this thread cannot run another asyncio loop, which the
# async tests of other modules need.
@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if in_ci():
            pytest.fail(message + "; browser tests must run under CI=true.")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, console_server, request):
    """A fresh browser context on the live server; a screenshot of the last state is kept when the test fails."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failure_shot = ARTIFACTS / f"FAILED-{request.node.name}.png"
    failure_shot.unlink(missing_ok=True)
    context = chromium.new_context(viewport={"width": 1366, "height": 860}, base_url=console_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_server.url)
    context.set_default_timeout(15_000)
    browser_page = context.new_page()
    errors: list[str] = []
    browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_page.js_errors = errors
    yield browser_page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        browser_page.screenshot(path=str(failure_shot), full_page=True)
    context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def shot(page, name: str) -> None:
    """A full-page screenshot under tests/artifacts/, so what the browser saw can be looked at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
