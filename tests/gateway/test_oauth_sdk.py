"""The official MCP Python SDK's OAuth client provider against a live gateway: discovery from the 401, registration
by dynamic client registration and by client ID metadata document, sign-in and consent completed by a person's HTTP
client on the console's pages, tools listed and called, the token refreshed, revoked, and then refused."""
from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from ..live import start_live
from .cimd_host import DocumentHost, make_certificate
from .consumer_setup import live_setup
from .oauth_setup import ConsoleUser

pytestmark = pytest.mark.live

REDIRECT = "http://127.0.0.1:9/callback"  # never connected to: the person's client reads the redirect's Location


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


@pytest.fixture(scope="module")
def cimd_hosts():
    cert, key = make_certificate(("127.0.0.1", "127.0.0.2"))
    allowed, forbidden = DocumentHost("127.0.0.1", cert, key), DocumentHost("127.0.0.2", cert, key)
    yield {"cert": cert, "allowed": allowed, "forbidden": forbidden}
    allowed.close()
    forbidden.close()


@pytest.fixture(scope="module")
def live(cimd_hosts):
    server = start_live(extra_env={"OAUTH_CIMD_CA_BUNDLE": str(cimd_hosts["cert"])})
    try:
        server.servers = {name: live_setup(server, f"__import__('tests.gateway.oauth_setup', fromlist=['x'])"
                                                   f".oauth_petstore({name!r})")
                          for name in ("sdk-dcr", "sdk-cimd")}
        yield server
    finally:
        server.stop()


def provider_for(live, url: str, *, client_name: str, client_metadata_url: str | None = None):
    """An OAuthClientProvider whose 'browser' is a person signing in as admin and approving a new consumer."""
    person = ConsoleUser(live.url)
    seen: dict = {}

    async def redirect_handler(authorization_url: str) -> None:
        seen["authorization_url"] = authorization_url
        answer = await asyncio.to_thread(person.decide, authorization_url)
        assert answer.status_code == 302, answer.text[:2000]
        seen["redirect"] = answer.headers["location"]

    async def callback_handler() -> AuthorizationCodeResult:
        query = {k: v[0] for k, v in parse_qs(urlsplit(seen["redirect"]).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(client_name=client_name, redirect_uris=[REDIRECT],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler,
        client_metadata_url=client_metadata_url)
    return provider, storage, seen, person


async def list_tool_names(url: str, provider) -> set[str]:
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                found = await session.call_tool("getPet", {"petId": 1})
                assert found.is_error is False
                return {tool.name for tool in tools.tools}


def raw_status(url: str, token: str) -> httpx.Response:
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}},
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
                               "MCP-Protocol-Version": "2025-11-25"}, timeout=30)


async def test_sdk_signs_in_with_dynamic_registration_refreshes_and_is_refused_after_revocation(live):
    url = live.url + live.servers["sdk-dcr"]["path"]
    provider, storage, seen, person = provider_for(live, url, client_name="SDK DCR Client")
    try:
        assert "getPet" in await list_tool_names(url, provider)
    finally:
        person.close()
    query = parse_qs(urlsplit(seen["authorization_url"]).query)
    assert query["resource"] == [url]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["mcp:default/sdk-dcr"]
    assert not storage.client_info.client_id.startswith("https://")  # registered by RFC 7591
    first = storage.tokens

    # The token's lifetime runs out on the client's clock: the SDK refreshes, and the server rotates both tokens.
    provider.context.token_expiry_time = time.time() - 1
    assert "getPet" in await list_tool_names(url, provider)
    second = storage.tokens
    assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
    assert raw_status(url, first.access_token).status_code == 401
    assert raw_status(url, second.access_token).status_code == 200

    revoked = httpx.post(live.url + "/oauth/revoke/", data={"token": second.refresh_token,
                                                            "token_type_hint": "refresh_token",
                                                            "client_id": storage.client_info.client_id})
    assert revoked.status_code == 200
    refused = raw_status(url, second.access_token)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_sdk_signs_in_with_a_client_id_metadata_document(live, cimd_hosts):
    host = cimd_hosts["allowed"]
    document_url = host.client_document("/clients/sdk.json", name="SDK CIMD Client", redirect_uri=REDIRECT)
    url = live.url + live.servers["sdk-cimd"]["path"]
    provider, storage, seen, person = provider_for(live, url, client_name="SDK CIMD Client",
                                                   client_metadata_url=document_url)
    try:
        assert "getPet" in await list_tool_names(url, provider)
    finally:
        person.close()
    assert storage.client_info.client_id == document_url
    assert host.hits["/clients/sdk.json"] >= 1
    consumers = live_setup(live, "[c.name for c in cs.Consumer.objects.filter(oauth_tokens__mcp_server__name="
                                 "'sdk-cimd').distinct()]")
    assert consumers == ["sdk-cimd-client"]
