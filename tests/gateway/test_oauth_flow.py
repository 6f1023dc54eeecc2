"""OAuth sign-in on a live server with a real HTTP client playing both the MCP client and the person approving:
registration (RFC 7591), authorization with PKCE S256 and a resource (RFC 8707), token use, refresh rotation,
revocation (RFC 7009), and each refusal the MCP authorization spec asks for."""
from __future__ import annotations

import httpx
import pytest

from ..live import start_live
from .consumer_setup import live_setup
from .oauth_setup import (
    ConsoleUser, authorize_url, exchange, pkce_pair, redirect_params, register_client,
)

pytestmark = pytest.mark.live

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.fixture(scope="module")
def live():
    server = start_live()
    try:
        server.servers = {name: live_setup(server, f"__import__('tests.gateway.oauth_setup', fromlist=['x'])"
                                                   f".oauth_petstore({name!r})")
                          for name in ("oauth-a", "oauth-b")}
        yield server
    finally:
        server.stop()


def mcp_post(live, path: str, token: str | None, body=INIT) -> httpx.Response:
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(live.url + path, json=body, headers=headers, timeout=30)


def sign_in_tokens(live, name: str = "oauth-a", *, client_name: str = "Test Client") -> dict:
    """The whole flow for server `name`: register, approve as admin, exchange; the token response."""
    client = register_client(live.url, name=client_name)
    verifier, challenge = pkce_pair()
    resource = live.url + live.servers[name]["path"]
    user = ConsoleUser(live.url)
    try:
        params = redirect_params(user.decide(authorize_url(live.url, client_id=client["client_id"], resource=resource,
                                                           scope=live.servers[name]["scope"], challenge=challenge)))
    finally:
        user.close()
    assert params["state"] == "st-1"
    answer = exchange(live.url, client_id=client["client_id"], code=params["code"], verifier=verifier,
                      resource=resource)
    assert answer.status_code == 200, answer.text
    return {**answer.json(), "client_id": client["client_id"], "code": params["code"], "verifier": verifier,
            "resource": resource}


def test_no_token_gets_401_naming_the_resource_metadata_and_scope(live):
    answer = mcp_post(live, "/mcp-servers/oauth-a", None)
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert f'resource_metadata="{live.url}/.well-known/oauth-protected-resource/mcp-servers/oauth-a"' in challenge
    assert 'scope="mcp:default/oauth-a"' in challenge
    metadata = httpx.get(f"{live.url}/.well-known/oauth-protected-resource/mcp-servers/oauth-a").json()
    assert metadata["resource"] == live.url + "/mcp-servers/oauth-a"
    assert metadata["authorization_servers"] == [live.url]
    assert metadata["scopes_supported"] == ["mcp:default/oauth-a"]
    server = httpx.get(f"{live.url}/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == live.url
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["registration_endpoint"] == live.url + "/oauth/register/"
    assert server["client_id_metadata_document_supported"] is True


def test_sign_in_token_use_refresh_and_revocation(live):
    tokens = sign_in_tokens(live)
    assert tokens["scope"] == "mcp:default/oauth-a"
    answer = mcp_post(live, "/mcp-servers/oauth-a", tokens["access_token"])
    assert answer.status_code == 200, answer.text
    # refresh rotates: a new refresh token, the old one no longer works
    refreshed = httpx.post(live.url + "/oauth/token/", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tokens["client_id"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert mcp_post(live, "/mcp-servers/oauth-a", new["access_token"]).status_code == 200
    again = httpx.post(live.url + "/oauth/token/", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tokens["client_id"]})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # the rotated-away access token stops too
    old = mcp_post(live, "/mcp-servers/oauth-a", tokens["access_token"])
    assert old.status_code == 401
    # revocation (RFC 7009)
    revoked = httpx.post(live.url + "/oauth/revoke/", data={"token": new["access_token"],
                                                            "client_id": tokens["client_id"]})
    assert revoked.status_code == 200
    refused = mcp_post(live, "/mcp-servers/oauth-a", new["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
