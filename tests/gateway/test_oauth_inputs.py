"""Bad input to OAuth sign-in's endpoints gets a clear 4xx (or a refusal page), never a 500 or a hang: malformed
registrations, token requests, authorization requests, metadata paths and tokens presented to the gateway."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from .oauth_setup import pkce_pair
from .test_consumer_auth import ACCEPT, BASE, _build_world, backend, rpc  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

REGISTRATIONS = [
    b"not json", b"[]", b'"text"', b"{}", json.dumps({"redirect_uris": "http://127.0.0.1/cb"}).encode(),
    json.dumps({"redirect_uris": ["javascript:alert(1)"]}).encode(),
    json.dumps({"redirect_uris": [{"a": 1}]}).encode(),
    json.dumps({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "x" * 100_000}).encode(),
    json.dumps({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "private_key_jwt"}).encode(),
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    json.dumps({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "nul\u0000"}).encode(),
]


@pytest.mark.parametrize("body", REGISTRATIONS, ids=range(len(REGISTRATIONS)))
def test_bad_registrations_get_400(body):
    answer = Client().post("/oauth/register/", data=body, content_type="application/json")
    assert answer.status_code == 400, answer.content[:500]
    assert "error" in answer.json()


TOKEN_REQUESTS = [
    {}, {"grant_type": "password", "username": "admin", "password": "x"}, {"grant_type": "client_credentials"},
    {"grant_type": "authorization_code", "code": "x" * 10_000, "client_id": "nobody"},
    {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": "nobody"},
    {"grant_type": "implicit"}, {"grant_type": "authorization_code", "code": "c", "client_id": "\x00"},
]


@pytest.mark.parametrize("data", TOKEN_REQUESTS, ids=range(len(TOKEN_REQUESTS)))
def test_bad_token_requests_get_a_json_4xx(data):
    answer = Client().post("/oauth/token/", data)
    assert 400 <= answer.status_code < 500, answer.content[:500]
    assert answer["Content-Type"] == "application/json"
    assert "error" in answer.json()


@pytest.mark.parametrize("data", [{"token": "a\x00", "client_id": "x"}, {"token\x00": "a"}])
def test_nul_in_a_revocation_gets_400(data):
    answer = Client().post("/oauth/revoke/", data)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_bad_revocations_are_answered():
    # RFC 7009 §2.2: an unknown token is answered 200 (nothing to revoke); a request without a client is refused.
    assert Client().post("/oauth/revoke/", {"token": "nope", "client_id": "nobody"}).status_code == 401
    assert Client().post("/oauth/revoke/", {}).status_code < 500


@pytest.fixture
def world(backend):
    return _build_world(backend, "oauth")


@pytest.mark.parametrize("resource", ["not a url", "http://" + "a" * 3000 + ".test/x", "ftp://testserver" + BASE,
                                      "http://testserver" + BASE + "?x=1", "http://testserver/mcp-servers/%00",
                                      "http://[::1/x", "http://testserver" + BASE + "\x00"])
def test_odd_resources_get_the_refusal_page(world, resource):
    http = Client()
    http.force_login(world.owner)
    registered = http.post("/oauth/register/", data={"client_name": "C", "redirect_uris": ["http://127.0.0.1:9/cb"],
                                                     "token_endpoint_auth_method": "none"},
                           content_type="application/json").json()
    _, challenge = pkce_pair()
    page = http.get("/oauth/authorize/", {"response_type": "code", "client_id": registered["client_id"],
                                          "redirect_uri": "http://127.0.0.1:9/cb", "code_challenge": challenge,
                                          "code_challenge_method": "S256", "resource": resource})
    assert page.status_code == 400
    assert b"Sign-in refused" in page.content


@pytest.mark.parametrize("path", ["mcp-servers/%00", "x" * 5000, "instances/a/mcp-servers/" + "b" * 100,
                                  "mcp-servers/guarded/../../etc", "%ff%fe"])
def test_odd_metadata_paths_get_404(world, path):
    answer = Client().get("/.well-known/oauth-protected-resource/" + path)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize("token", ["x" * 20_000, "é" * 50, "a b", "\t"])
async def test_odd_tokens_get_401(backend, token):
    world = await sync_to_async(_build_world)(backend, "oauth")
    answer = await world.client.post(BASE, json=rpc("ping"), headers={
        "accept": ACCEPT, "authorization": "Bearer " + token})
    assert answer.status == 401


def test_registrations_per_address_are_bounded(settings):
    from django.core.cache import cache

    cache.clear()
    settings.OAUTH_DCR_PER_ADDRESS_PER_HOUR = 3
    body = json.dumps({"client_name": "C", "redirect_uris": ["http://127.0.0.1:9/cb"],
                       "token_endpoint_auth_method": "none"})
    answers = [Client().post("/oauth/register/", data=body, content_type="application/json").status_code
               for _ in range(4)]
    assert answers == [201, 201, 201, 429]
    cache.clear()


@pytest.mark.parametrize("path, status", [("/oauth/register/a%00b/", 400), ("/oauth/register/" + "x" * 300 + "/", 404),
                                          ("/oauth/register/nobody/", 401)])
def test_registration_management_of_odd_clients(path, status):
    answer = Client().get(path, HTTP_AUTHORIZATION="Bearer nope")
    assert answer.status_code == status, answer.content[:300]
