"""OAuth sign-in at the gateway's edge, in-process: tokens issued by the real authorization server views (Django's
test client plays the MCP client and the signed-in person), presented to the real ASGI app against a fake backend
that records. Covers what a token may do (its server, its scope, its consumer's tool set), that API keys keep
working, that a token never reaches the backend, and that checking a token costs no database query."""
from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from console import services
from gateway.oauth_tokens import token_grant

from . import consumer_setup as cs
from .oauth_setup import hidden_fields, pkce_pair
from .test_consumer_auth import ACCEPT, BASE, World, _build_world, backend, bearer, call_echo, rpc  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "testserver"
REDIRECT = "http://127.0.0.1:9/callback"


def resource_of(base: str) -> str:
    return f"http://{HOST}{base}"


def sign_in(world: World, base: str = BASE, *, consumer: str = "new", client_name: str = "Laptop Agent",
            scope: str = "mcp:inst/guarded") -> dict:
    """Register (RFC 7591), sign in as the team's owner, approve, exchange the code: the token response."""
    http = Client()
    registered = http.post("/oauth/register/", data={
        "client_name": client_name, "redirect_uris": [REDIRECT], "grant_types": ["authorization_code",
                                                                                 "refresh_token"],
        "token_endpoint_auth_method": "none"}, content_type="application/json")
    assert registered.status_code == 201, registered.content
    client_id = registered.json()["client_id"]
    verifier, challenge = pkce_pair()
    http.force_login(world.owner)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "s",
             "code_challenge": challenge, "code_challenge_method": "S256", "resource": resource_of(base),
             "scope": scope}
    page = http.get("/oauth/authorize/", query)
    assert page.status_code == 200, page.content[:2000]
    from urllib.parse import urlencode

    answer = http.post("/oauth/authorize/?" + urlencode(query),
                       {**hidden_fields(page.content.decode()), "consumer": consumer, "allow": "Authorize"})
    assert answer.status_code == 302, answer.content[:2000]
    from urllib.parse import parse_qs, urlsplit

    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    token = http.post("/oauth/token/", {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                        "redirect_uri": REDIRECT, "code_verifier": verifier,
                                        "resource": resource_of(base)})
    assert token.status_code == 200, token.content
    return token.json()


@pytest.fixture
async def world(backend) -> World:
    return await sync_to_async(_build_world)(backend, "oauth")


async def initialize(world: World, token: str | None, base: str = BASE, **headers):
    return await world.client.post(base, json=rpc("initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        headers={"accept": ACCEPT, **bearer(token), **headers})


async def session(world: World, token: str, base: str = BASE) -> dict[str, str]:
    init = await initialize(world, token, base)
    assert init.status == 200, init.text
    return {"accept": ACCEPT, "mcp-session-id": init.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25", **bearer(token)}


async def test_api_keys_keep_working_next_to_oauth_sign_in(world):
    assert (await initialize(world, world.keys["alice"])).status == 200
    refused = await initialize(world, world.keys["alice-revoked"])
    assert refused.status == 401
    assert 'resource_metadata="http://testserver/.well-known/oauth-protected-resource/instances/inst/mcp-servers/' \
           'guarded"' in refused.headers["www-authenticate"]


async def test_a_signed_in_client_acts_as_the_consumer_chosen_with_its_tool_set(world):
    bob = world.consumers["bob"]  # authorized for echo only
    tokens = await sync_to_async(sign_in)(world, consumer=str(bob.pk))
    headers = await session(world, tokens["access_token"])
    listed = await world.client.post(BASE, json=rpc("tools/list", id=2), headers=headers)
    assert [tool["name"] for tool in listed.json()["result"]["tools"]] == ["echo"]
    world.backend.answer("/echo", json_body={"ok": True})
    called = await world.client.post(BASE, json=call_echo(3), headers=headers)
    assert called.json()["result"]["isError"] is False
    assert world.backend.last.headers["X-Consumer"] == "bob"


async def test_first_consent_creates_a_consumer_named_after_the_client_authorized_on_the_server(world):
    tokens = await sync_to_async(sign_in)(world, client_name="Claude Code")
    headers = await session(world, tokens["access_token"])
    world.backend.answer("/echo", json_body={"ok": True})
    await world.client.post(BASE, json=call_echo(2), headers=headers)
    assert world.backend.last.headers["X-Consumer"] == "claude-code"
    again = await sync_to_async(sign_in)(world, client_name="Claude Code")
    assert again["access_token"] != tokens["access_token"]
    names = await sync_to_async(lambda: sorted(world.team.consumers.filter(name__startswith="claude")
                                               .values_list("name", flat=True)))()
    assert names == ["claude-code", "claude-code-2"]  # a second registration of the same app is another client


async def test_a_token_for_another_server_is_refused(world):
    other = await sync_to_async(services.mcp_server_create)(actor=None, instance=world.server.instance, name="other")
    await sync_to_async(cs.set_consumer_auth)(other, enabled=True, method="oauth")
    tokens = await sync_to_async(sign_in)(world, "/instances/inst/mcp-servers/other", scope="mcp:inst/other")
    assert (await initialize(world, tokens["access_token"], "/instances/inst/mcp-servers/other")).status == 200
    refused = await initialize(world, tokens["access_token"])
    assert refused.status == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert "issued for another resource: http://testserver/instances/inst/mcp-servers/other" in \
        refused.json()["error"]["message"]


async def test_a_token_without_the_servers_scope_gets_403_insufficient_scope(world):
    tokens = await sync_to_async(sign_in)(world)
    # The server is renamed: the token still names it, but not the scope it now needs.
    await sync_to_async(services.mcp_server_update)(actor=None, mcp_server=world.server, name="renamed")
    answer = await initialize(world, tokens["access_token"], "/instances/inst/mcp-servers/renamed")
    assert answer.status == 403
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope", scope="mcp:inst/renamed"')
    assert 'resource_metadata="http://testserver/.well-known/oauth-protected-resource/instances/inst/mcp-servers/' \
           'renamed"' in challenge


async def test_a_token_in_the_query_string_is_not_accepted(world):
    tokens = await sync_to_async(sign_in)(world)
    answer = await world.client.post(BASE + "?access_token=" + tokens["access_token"], json=rpc("initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        headers={"accept": ACCEPT})
    assert answer.status == 401


async def test_the_token_never_reaches_the_backend(world):
    tokens = await sync_to_async(sign_in)(world)
    headers = await session(world, tokens["access_token"])
    world.backend.answer("/relay", json_body={"ok": True})
    await world.client.post(BASE, json=rpc("tools/call", {"name": "relay", "arguments": {}}, 2), headers=headers)
    sent = world.backend.last.headers
    assert tokens["access_token"] not in " ".join(sent.values())


async def test_checking_a_token_reads_the_cache_not_the_database(world):
    tokens = await sync_to_async(sign_in)(world)
    headers = await session(world, tokens["access_token"])

    def rows_gone_behind_the_caches_back() -> None:
        from console.models import ConsumerOAuthToken
        from oauth2_provider.models import AccessToken, RefreshToken

        # Raw deletes: no receiver runs, so only a database lookup could notice the token is gone.
        for model in (ConsumerOAuthToken, RefreshToken, AccessToken):
            model.objects.all()._raw_delete(using="default")

    await sync_to_async(rows_gone_behind_the_caches_back)()
    answer = await world.client.post(BASE, json=rpc("ping", id=5), headers=headers)
    assert answer.status == 200
    assert (await token_grant(tokens["access_token"])) is not None


async def test_revoking_on_the_consumers_page_refuses_the_token_at_once(world):
    tokens = await sync_to_async(sign_in)(world)
    assert (await initialize(world, tokens["access_token"])).status == 200
    from console.models import ConsumerOAuthToken

    row = await ConsumerOAuthToken.objects.select_related("consumer__team", "mcp_server").aget(
        consumer__name="laptop-agent")
    await sync_to_async(services.consumer_oauth_token_revoke)(actor=world.owner, token=row)
    refused = await initialize(world, tokens["access_token"])
    assert refused.status == 401
    assert "unknown, expired or was revoked" in refused.json()["error"]["message"]


@pytest.fixture
def fresh_token_endpoint():
    """Forget the token endpoint's server, built with this test's settings, so later tests build their own."""
    from oauth2_provider import views

    from console.oauth.views import ConsentView

    yield
    for view in (views.TokenView, views.RevokeTokenView, ConsentView):
        if "_oauthlib_core" in view.__dict__:
            delattr(view, "_oauthlib_core")


async def test_an_expired_token_is_refused(world, settings, fresh_token_endpoint):
    from oauth2_provider.settings import oauth2_settings

    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ACCESS_TOKEN_EXPIRE_SECONDS": 1,
                                # the token endpoint builds its server once; this one must see the new lifetime
                                "ALWAYS_RELOAD_OAUTHLIB_CORE": True}
    assert oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS == 1
    tokens = await sync_to_async(sign_in)(world)
    assert tokens["expires_in"] == 1
    time.sleep(1.2)
    refused = await initialize(world, tokens["access_token"])
    assert refused.status == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_a_disabled_consumers_tokens_are_refused_like_its_keys(world):
    tokens = await sync_to_async(sign_in)(world, consumer=str(world.consumers["alice"].pk))
    assert (await initialize(world, tokens["access_token"])).status == 200
    await sync_to_async(cs.consumer_set_enabled)(world.consumers["alice"], False)
    refused = await initialize(world, tokens["access_token"])
    assert refused.status == 401
    assert "The credential's consumer is disabled or unknown." in refused.json()["error"]["message"]


def _member(world: World):
    from django.contrib.auth import get_user_model

    member = get_user_model().objects.create_user("member-1", password="pw-123456")
    services.team_member_add(team=world.team, user=member, role="member")
    return member


async def test_a_member_may_approve_as_an_authorized_consumer_but_not_create_one(world):
    member = await sync_to_async(_member)(world)
    member_world = World(**{**world.__dict__, "owner": member})
    page_refused = await sync_to_async(_consent_status)(member_world, "new")
    assert page_refused == 403
    tokens = await sync_to_async(sign_in)(member_world, consumer=str(world.consumers["bob"].pk))
    assert (await initialize(world, tokens["access_token"])).status == 200
    carol = await sync_to_async(_consent_status)(member_world, str(world.consumers["carol"].pk))
    assert carol == 400  # of the team, but not authorized on the server


def _consent_status(world: World, consumer: str) -> int:
    from urllib.parse import urlencode

    http = Client()
    client_id = http.post("/oauth/register/", data={"client_name": "M", "redirect_uris": [REDIRECT],
                                                    "token_endpoint_auth_method": "none"},
                          content_type="application/json").json()["client_id"]
    http.force_login(world.owner)
    _, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "s",
             "code_challenge": challenge, "code_challenge_method": "S256", "resource": resource_of(BASE),
             "scope": "mcp:inst/guarded"}
    page = http.get("/oauth/authorize/", query)
    return http.post("/oauth/authorize/?" + urlencode(query), {**hidden_fields(page.content.decode()),
                                                               "consumer": consumer, "allow": "Authorize"}).status_code


async def test_expired_tokens_are_cleared_hourly_and_leave_the_cache(world):
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken, RefreshToken

    from console.tasks import oauth_tokens_clear

    tokens = await sync_to_async(sign_in)(world)
    # Unused for longer than the refresh token's lifetime (30 days after its access token expired).
    await AccessToken.objects.all().aupdate(expires=timezone.now() - timedelta(days=31))
    await sync_to_async(oauth_tokens_clear)()
    assert await AccessToken.objects.acount() == 0
    assert await RefreshToken.objects.acount() == 0
    assert (await initialize(world, tokens["access_token"])).status == 401


def _register_team_client(world: World) -> tuple[str, str]:
    client, secret = services.oauth_client_register(actor=world.owner, team=world.team, name="Team Portal",
                                                    redirect_uris=[REDIRECT], confidential=True)
    return client.application.client_id, secret


async def test_a_pre_registered_confidential_client_signs_in_with_its_secret(world):
    from urllib.parse import parse_qs, urlencode, urlsplit

    client_id, secret = await sync_to_async(_register_team_client)(world)

    def flow(client_secret: str | None):
        http = Client()
        http.force_login(world.owner)
        verifier, challenge = pkce_pair()
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "s",
                 "code_challenge": challenge, "code_challenge_method": "S256", "resource": resource_of(BASE),
                 "scope": "mcp:inst/guarded"}
        page = http.get("/oauth/authorize/", query)
        assert b"Team Portal" in page.content
        answer = http.post("/oauth/authorize/?" + urlencode(query), {**hidden_fields(page.content.decode()),
                                                                     "consumer": "new", "allow": "Authorize"})
        code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
        data = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": REDIRECT,
                "code_verifier": verifier, "resource": resource_of(BASE)}
        if client_secret is not None:
            data["client_secret"] = client_secret
        return http.post("/oauth/token/", data)

    assert (await sync_to_async(flow)(None)).status_code == 401  # a confidential client must authenticate
    answer = await sync_to_async(flow)(secret)
    assert answer.status_code == 200, answer.content
    assert (await initialize(world, answer.json()["access_token"])).status == 200
