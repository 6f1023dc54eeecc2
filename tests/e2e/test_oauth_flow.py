"""OAuth sign-in in a real browser, the way the Inspector and desktop clients do it: the admin turns OAuth sign-in
on for a server; an MCP client (the official SDK's OAuth client provider) gets a 401, discovers the authorization
server, registers, and opens the authorization page in the browser; the person signs in, sees what the client asks
for, approves; the client lists and calls tools. The consumer's page shows the token; revoking it there refuses
the client."""
from __future__ import annotations

import asyncio
import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from playwright.sync_api import expect

from ..gateway.consumer_setup import live_setup
from ..gateway.test_oauth_sdk import MemoryStorage
from .conftest import shot

pytestmark = [pytest.mark.live, pytest.mark.browser]


class Callback:
    """The client's loopback redirect listener (what the Inspector runs on localhost): keeps the code and state."""

    def __init__(self):
        self.result: "queue.Queue[dict]" = queue.Queue()
        box = self.result

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                box.put({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
                body = b"<!doctype html><title>Signed in</title><p>Signed in. You may close this window.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_client(url: str, callback: Callback, opened: "queue.Queue[str]"):
    """The MCP client in its own thread and loop (Playwright's sync API owns this thread's loop)."""
    storage = MemoryStorage()

    async def redirect_handler(authorization_url: str) -> None:
        opened.put(authorization_url)  # "opens the browser"

    async def callback_handler() -> AuthorizationCodeResult:
        query = await asyncio.to_thread(callback.result.get, True, 120)
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(client_name="Inspector Style Client", redirect_uris=[callback.url],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler)

    async def run():
        async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = sorted(tool.name for tool in (await session.list_tools()).tools)
                    found = await session.call_tool("getPet", {"petId": 1})
                    return tools, found.is_error, storage.tokens.access_token

    pool = ThreadPoolExecutor(max_workers=1)
    return pool, pool.submit(asyncio.run, run())


def test_inspector_style_sign_in_consent_tools_and_revocation(page, console_server):
    base = console_server.url
    made = live_setup(console_server, "__import__('tests.gateway.oauth_setup', fromlist=['x'])"
                                      ".oauth_petstore('e2e-oauth', method='api_key')")
    url = base + made["path"]

    # The admin turns OAuth sign-in on, in the console.
    page.goto(f"/console/mcp/{made['server_id']}/consumer-auth/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-pass-1")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("OAuth sign-in").check()
    page.get_by_label("Enable Status").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Consumer Authentication is on")
    page.context.clear_cookies()  # the person at the MCP client signs in afresh

    assert httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 401

    callback, opened = Callback(), queue.Queue()
    pool, outcome = start_client(url, callback, opened)
    try:
        authorization_url = opened.get(timeout=60)
        page.goto(authorization_url)
        expect(page).to_have_url(re.compile(r"/login/"))
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("admin-pass-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Allow Inspector Style Client?")).to_be_visible()
        expect(page.get_by_test_id("consent-resource")).to_have_text(url)
        expect(page.get_by_test_id("consent-scope")).to_have_text("mcp:default/e2e-oauth")
        expect(page.get_by_label(re.compile("A new consumer named after the client"))).to_be_checked()
        shot(page, "oauth-consent")
        page.get_by_test_id("consent-allow").click()
        expect(page.get_by_text("Signed in. You may close this window.")).to_be_visible()
        tools, is_error, access_token = outcome.result(timeout=60)
    finally:
        callback.close()
        pool.shutdown(wait=False)
    assert {"getPet", "listPets"} <= set(tools)
    assert is_error is False

    # The consumer named after the client shows the token; revoking it refuses the client.
    consumer = live_setup(console_server, "[(c.pk, c.team.instances.get(name='default').pk) for c in "
                                          "cs.Consumer.objects.filter(name='inspector-style-client')]")
    consumer_id, instance_id = consumer[0]
    page.goto(f"/console/instances/{instance_id}/consumers/{consumer_id}/")
    row = page.locator("#oauth-tokens tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("Inspector Style Client")
    expect(row.first).to_contain_text("e2e-oauth")
    shot(page, "oauth-consumer-token")
    row.first.get_by_role("link", name="Revoke").click()
    page.locator("#drawer").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").first).to_contain_text("OAuth token of Inspector Style Client revoked.")
    expect(page.locator("#oauth-tokens tbody tr").first).to_contain_text("No OAuth tokens.")

    refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}},
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
