"""JWT Consumer Authentication end to end: credentials made with the console's services, tokens sent to the
gateway's real ASGI app, a fake backend on 127.0.0.1 that also serves the IdP's JWKS and records every request."""
from __future__ import annotations

import json
import time

import jwt
import pytest
from asgiref.sync import sync_to_async
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model

from console import services
from gateway import protocol as p
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.state import close_states

from .asgi_client import AsgiClient
from .test_http_to_mcp import Backend

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/instances/inst/mcp-servers/guarded"
REALM = 'Bearer realm="inst/guarded"'
SECRET = "billing-hs256-secret-" + "0123456789abcdef" * 3
ISSUER, AUDIENCE = "https://idp.example.test", "mcp-gateway"
HOW = "This MCP server requires a JWT: send it as Authorization: Bearer <token>."
TOOLS_YAML = """
tools:
  - name: whoami
    description: Says who called.
    requestTemplate:
      url: {url}/whoami
      method: GET
      headers:
        - {{key: X-Consumer, value: "{{{{.consumer.name}}}}"}}
"""


@pytest.fixture
async def backend():
    server = Backend()
    await server.start()
    yield server
    await close_http_sessions()
    await close_states()
    await server.stop()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _setup(backend: Backend, rsa_key) -> dict:
    owner = get_user_model().objects.create_user("owner", password="pw-123456")
    team = services.team_create(name="Team A", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="inst")
    server = services.mcp_server_create(actor=owner, instance=instance, name="guarded")
    services.tools_apply_yaml(actor=owner, mcp_server=server, text=TOOLS_YAML.format(url=backend.url))
    billing = services.consumer_create(actor=owner, team=team, name="billing")
    signer = services.consumer_create(actor=owner, team=team, name="signer")
    outsider = services.consumer_create(actor=owner, team=team, name="outsider")
    hs = services.jwt_credential_create(actor=owner, consumer=billing, algorithm="HS256", secret=SECRET,
                                        issuer=ISSUER, audience=AUDIENCE)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    backend.answer("/jwks.json", json_body={"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
    services.jwt_credential_create(actor=owner, consumer=signer, algorithm="RS256",
                                   jwks_url=f"{backend.url}/jwks.json", issuer=ISSUER, audience=AUDIENCE)
    services.jwt_credential_create(actor=owner, consumer=outsider, algorithm="HS256", secret=SECRET[::-1])
    for consumer in (billing, signer):
        services.consumer_authorize(actor=owner, mcp_server=server, consumer=consumer)
    services.mcp_server_set_consumer_auth(actor=owner, mcp_server=server, enabled=True, method="jwt")
    return {"owner": owner, "hs": hs}


@pytest.fixture
async def world(backend, rsa_key):
    return await sync_to_async(_setup)(backend, rsa_key)


def hs_token(**claims) -> str:
    now = int(time.time())
    payload = {"sub": "billing", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET, algorithm="HS256")


async def call(token: str | None):
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": p.V2026_07_28,
               "mcp-method": "tools/call", "mcp-name": "whoami"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "whoami", "arguments": {},
        "_meta": {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}}}
    return await AsgiClient(app).post(BASE, json=body, headers=headers)


def assert_refused(response, problem: str) -> None:
    assert response.status == 401, response.text
    assert response.headers["www-authenticate"] == \
        f'{REALM}, error="invalid_token", error_description="The token was refused: {problem}"'
    assert response.json() == {"jsonrpc": "2.0", "id": None, "error": {
        "code": p.UNAUTHORIZED, "message": f"The token was refused: {problem} {HOW}"}}


def whoami_calls(backend: Backend) -> list:
    return [r for r in backend.requests if r.path == "/whoami"]


async def test_an_hs256_token_calls_the_tool_as_its_consumer_and_never_reaches_the_backend(world, backend):
    token = hs_token()
    response = await call(token)
    assert response.status == 200, response.text
    assert response.json()["result"]["isError"] is False
    [received] = whoami_calls(backend)
    assert received.headers["X-Consumer"] == "billing"
    assert token not in json.dumps(received.headers)


async def test_an_rs256_token_verifies_with_the_jwks_fetched_once(world, backend, rsa_key):
    now = int(time.time())
    for n in range(3):
        token = jwt.encode({"sub": "signer", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "jti": str(n)},
                           rsa_key, algorithm="RS256", headers={"kid": "k1"})
        response = await call(token)
        assert response.status == 200, response.text
    assert [r.headers["X-Consumer"] for r in whoami_calls(backend)] == ["signer"] * 3
    assert len([r for r in backend.requests if r.path == "/jwks.json"]) == 1


async def test_refused_tokens_say_why_in_the_401(world, backend):
    now = int(time.time())
    assert_refused(await call(hs_token(exp=now - 150, iat=now - 900)), "the token expired 2 minutes ago")
    assert_refused(await call(hs_token(aud="billing-api")),
                   "the audience must include 'mcp-gateway' (the token has 'billing-api')")
    forged = jwt.encode({"sub": "billing", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600},
                        "not-the-secret-" + "0123456789abcdef" * 3, algorithm="HS256")
    assert_refused(await call(forged), "the signature does not verify with consumer billing's key")
    assert_refused(await call("not-a-jwt"), "the token is not a JWT: expected three dot-separated parts "
                                            "(header.payload.signature), found 1")
    assert whoami_calls(backend) == []


async def test_a_token_of_a_consumer_not_authorized_is_forbidden(world, backend):
    now = int(time.time())
    token = jwt.encode({"sub": "outsider", "exp": now + 600}, SECRET[::-1], algorithm="HS256")
    response = await call(token)
    assert response.status == 403, response.text
    assert "consumer outsider is not authorized" in response.json()["error"]["message"]
    assert whoami_calls(backend) == []


async def test_deleting_the_credential_stops_a_cached_token_at_once(world, backend):
    token = hs_token()
    assert (await call(token)).status == 200
    assert (await call(token)).status == 200  # a verified-token cache hit
    await sync_to_async(services.jwt_credential_delete)(actor=world["owner"], credential=world["hs"])
    assert_refused(await call(token), "the token's consumer claim (sub is 'billing') names no consumer with an "
                                      "HS256 credential for this MCP server")
    assert len(whoami_calls(backend)) == 2
