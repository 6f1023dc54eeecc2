"""Consumer Authentication enforced by the gateway, through its real ASGI app, against a fake backend that records.

The matrix covers every transport and revision with every kind of credential; the rest covers where the
credential is read, that it never reaches the backend, per-consumer tools, sessions bound to consumers, turning
authentication on and off under live sessions, and API keys' last use.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass

import jwt
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console import services
from console.models import ConsumerApiKey, McpServer
from gateway import protocol as p
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.config import _load_server
from gateway.state import close_states

from ..conftest import require_redis
from . import consumer_setup as cs
from .asgi_client import AsgiClient
from .test_http_to_mcp import Backend

pytestmark = pytest.mark.django_db(transaction=True)

ACCEPT = "application/json, text/event-stream"
BASE = "/instances/inst/mcp-servers/guarded"
REALM = 'Bearer realm="inst/guarded"'
HANDSHAKE = list(p.HANDSHAKE_VERSIONS)
STATELESS = p.V2026_07_28

TOOLS_YAML = """
server:
  name: guarded
  securitySchemes:
    - {{id: Backend, type: http, scheme: bearer, defaultCredential: backend-default}}
    - {{id: ClientKey, type: apiKey, in: header, name: X-Consumer-Key}}
tools:
  - name: echo
    description: Says who called.
    args: [{{name: text, type: string, position: query}}]
    requestTemplate:
      url: {url}/echo
      method: GET
      headers:
        - {{key: X-Consumer, value: "{{{{.consumer.name}}}}"}}
        - {{key: X-Consumer-Id, value: "id-{{{{.consumer.id}}}}"}}
  - name: secret_tool
    description: Only for some consumers.
    requestTemplate: {{url: {url}/secret, method: GET}}
  - name: relay
    description: Passes the client's Authorization through to the backend.
    requestTemplate:
      url: {url}/relay
      method: GET
      security: {{id: Backend, passthrough: true}}
  - name: relay_key
    description: Passes the client's X-Consumer-Key header through to the backend.
    security: {{id: ClientKey}}
    requestTemplate:
      url: {url}/relay-key
      method: GET
      security: {{id: Backend, passthrough: true}}
"""

NO_KEY = "This MCP server requires an API key: send it as Authorization: Bearer <key>."
NO_JWT = "This MCP server requires a JWT: send it as Authorization: Bearer <token>."
BAD_KEY = "The API key is not valid: it is unknown or was revoked, or its consumer is disabled."


@dataclass
class World:
    owner: object
    team: object
    server: McpServer
    consumers: dict
    keys: dict  # label -> secret
    key_rows: dict  # label -> ConsumerApiKey
    backend: Backend
    client: AsgiClient
    method: str = "api_key"


@pytest.fixture
async def backend():
    server = Backend()
    await server.start()
    yield server
    await close_http_sessions()
    await close_states()
    await server.stop()


def _hs256(name: str, secret: str, *, expires_in: float = 600) -> str:
    return jwt.encode({"sub": name, "exp": int(time.time() + expires_in)}, secret, algorithm="HS256")


def _jwt_credentials(consumers: dict) -> dict[str, str]:
    """HS256 credentials for every consumer; tokens by the same labels as the API keys, and a badly signed one."""
    tokens = {}
    for name, consumer in consumers.items():
        secret = f"{name}-hs256-secret-" + "0123456789abcdef" * 2
        services.jwt_credential_create(actor=None, consumer=consumer, algorithm="HS256", secret=secret)
        tokens[name] = _hs256(name, secret)
        if name == "alice":
            tokens["alice-expired"] = _hs256(name, secret, expires_in=-7300)
            gone = services.jwt_credential_create(actor=None, consumer=consumer, algorithm="HS256",
                                                  secret="alice-deleted-secret-" + "f" * 32)
            tokens["alice-revoked"] = _hs256(name, "alice-deleted-secret-" + "f" * 32)
            services.jwt_credential_delete(actor=None, credential=gone)
    tokens["bad"] = _hs256("alice", "not-alices-secret-" + "0" * 32)
    return tokens


def _build_world(backend: Backend, method: str = "api_key") -> World:
    User = get_user_model()
    owner = User.objects.create_user("owner", password="pw-123456")
    team = services.team_create(name="Team A", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="inst")
    server = services.mcp_server_create(actor=owner, instance=instance, name="guarded")
    services.tools_apply_yaml(actor=owner, mcp_server=server, text=TOOLS_YAML.format(url=backend.url))
    other_team = services.team_create(name="Team B", owner=owner)

    consumers = {
        "alice": cs.consumer_create(team, "alice"),  # every tool
        "bob": cs.consumer_create(team, "bob"),  # echo only
        "carol": cs.consumer_create(team, "carol"),  # of the team, not authorized
        "dave": cs.consumer_create(team, "dave", enabled=False),  # authorized but disabled
        "mallory": cs.consumer_create(other_team, "mallory"),  # another team's consumer
    }
    cs.authorize(server, consumers["alice"])
    cs.authorize(server, consumers["bob"], ["echo"])
    cs.authorize(server, consumers["dave"])
    rows, keys = {}, {}
    soon = dt.datetime.now(tz=dt.timezone.utc) + dt.timedelta(days=1)
    for label, owner_name, expires in [("alice", "alice", None), ("alice-expired", "alice", soon),
                                       ("alice-revoked", "alice", None), ("bob", "bob", None),
                                       ("carol", "carol", None), ("dave", "dave", None),
                                       ("mallory", "mallory", None)]:
        rows[label], keys[label] = cs.key_issue(consumers[owner_name], expires_at=expires)
    cs.key_expire(rows["alice-expired"])
    cs.key_revoke(rows["alice-revoked"])
    keys["bad"] = "mck_" + "x" * 43
    if method == "jwt":
        keys = _jwt_credentials(consumers)
    cs.set_consumer_auth(server, enabled=True, method=method)
    return World(owner=owner, team=team, server=server, consumers=consumers, keys=keys, key_rows=rows,
                 backend=backend, client=AsgiClient(app), method=method)


@pytest.fixture
async def world(backend) -> World:
    return await sync_to_async(_build_world)(backend)


@pytest.fixture(params=["api_key", "jwt"])
async def matrix_world(request, backend) -> World:
    """The same consumers, with API keys or with HS256 JWT credentials."""
    return await sync_to_async(_build_world)(backend, request.param)


def bearer(secret: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"} if secret is not None else {}


def rpc(method: str, params: dict | None = None, id: int | None = 1, *, stateless: bool = False) -> dict:
    message: dict = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    params = dict(params or {})
    if stateless:
        params["_meta"] = {p.META_PROTOCOL_VERSION: STATELESS, p.META_CLIENT_CAPABILITIES: {}}
    if params:
        message["params"] = params
    return message


def call_echo(id: int = 2, *, stateless: bool = False) -> dict:
    return rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, id, stateless=stateless)


def stateless_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {"accept": ACCEPT, "mcp-protocol-version": STATELESS, "mcp-method": method}
    if name:
        headers["mcp-name"] = name
    return headers


async def open_session(world: World, version: str, secret: str | None) -> dict[str, str]:
    init = await world.client.post(BASE, json=rpc("initialize", {"protocolVersion": version, "capabilities": {},
                                                              "clientInfo": {"name": "t", "version": "1"}}),
                                   headers={"accept": ACCEPT, **bearer(secret)})
    assert init.status == 200, init.text
    return {"accept": ACCEPT, "mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": version}


# ---------------------------------------------------------------- what each refusal looks like

CASES = ["none", "bad", "expired", "revoked", "unauthorized", "valid"]


def credential_for(world: World, case: str) -> str | None:
    return {"none": None, "bad": world.keys["bad"], "expired": world.keys["alice-expired"],
            "revoked": world.keys["alice-revoked"], "unauthorized": world.keys["carol"],
            "valid": world.keys["alice"]}[case]


def expected_refusal(world: World, case: str) -> tuple[int, str | None, dict]:
    """(status, WWW-Authenticate, JSON-RPC body) for a refused case."""
    how = NO_JWT if world.method == "jwt" else NO_KEY
    if case == "none":
        return 401, REALM, {"jsonrpc": "2.0", "id": None, "error": {"code": p.UNAUTHORIZED, "message": how}}
    if world.method == "jwt" and case in ("bad", "revoked"):
        # a deleted credential's tokens are checked against the consumer's remaining credential, and fail
        problem = "The token was refused: the signature does not verify with consumer alice's key"
    elif world.method == "jwt" and case == "expired":
        problem = "The token was refused: the token expired 2 hours ago"
    elif case in ("bad", "revoked"):
        problem = BAD_KEY
    elif case == "expired":
        expires = world.key_rows["alice-expired"].expires_at.astimezone(dt.timezone.utc)
        problem = f"The API key expired at {expires:%Y-%m-%d %H:%M} UTC."
    else:
        assert case == "unauthorized"
        return 403, None, {"jsonrpc": "2.0", "id": None, "error": {
            "code": p.FORBIDDEN,
            "message": "Forbidden: consumer carol is not authorized to use MCP server inst/guarded; ask an admin "
                       "of the team to authorize it on the server's Consumer Authentication tab."}}
    return 401, f'{REALM}, error="invalid_token", error_description="{problem}"', {
        "jsonrpc": "2.0", "id": None, "error": {"code": p.UNAUTHORIZED, "message": f"{problem} {how}"}}


def assert_refused(response, world: World, case: str) -> None:
    status, challenge, body = expected_refusal(world, case)
    assert response.status == status, (response.status, response.text)
    assert response.headers.get("www-authenticate") == challenge
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == body


def assert_echo_result(message: dict, consumer: str = "alice") -> None:
    assert message["result"]["isError"] is False, message
    assert message["result"]["content"][0]["text"] == '{"ok": true}'


# ---------------------------------------------------------------- the matrix

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", HANDSHAKE)
async def test_streamable_session_matrix(matrix_world, version, case):
    world = matrix_world
    secret = credential_for(world, case)
    client = world.client
    # initialize
    init = await client.post(BASE, json=rpc("initialize", {"protocolVersion": version, "capabilities": {}}),
                             headers={"accept": ACCEPT, **bearer(secret)})
    if case != "valid":
        assert_refused(init, world, case)
        assert "mcp-session-id" not in init.headers
    else:
        assert init.status == 200 and init.json()["result"]["protocolVersion"] == version

    # every later request of a session alice opened carries the credential again and is checked again
    session = await open_session(world, version, world.keys["alice"])
    calls_before = len(world.backend.requests)
    call = await client.post(BASE, json=call_echo(), headers={**session, **bearer(secret)})
    stream_headers = {**session, "accept": "text/event-stream", **bearer(secret)}
    if case != "valid":
        assert_refused(call, world, case)
        assert len(world.backend.requests) == calls_before
        assert_refused(await client.get(BASE, headers=stream_headers), world, case)
        assert_refused(await client.delete(BASE, headers={**session, **bearer(secret)}), world, case)
        # the session itself is untouched: its owner goes on using it
        still = await client.post(BASE, json=call_echo(3), headers={**session, **bearer(world.keys["alice"])})
        assert still.status == 200
        return
    assert call.status == 200
    assert_echo_result(call.json())
    assert world.backend.last.headers["X-Consumer"] == "alice"
    async with client.stream("GET", BASE, headers=stream_headers) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
    assert (await client.delete(BASE, headers={**session, **bearer(secret)})).status == 204


@pytest.mark.parametrize("case", CASES)
async def test_stateless_matrix(matrix_world, case):
    world = matrix_world
    secret = credential_for(world, case)
    response = await world.client.post(BASE, json=call_echo(stateless=True),
                                       headers={**stateless_headers("tools/call", "echo"), **bearer(secret)})
    discover = await world.client.post(BASE, json=rpc("server/discover", stateless=True),
                                       headers={**stateless_headers("server/discover"), **bearer(secret)})
    if case != "valid":
        assert_refused(response, world, case)
        assert_refused(discover, world, case)
        assert world.backend.requests == []
        return
    assert response.status == 200
    assert_echo_result(response.json())
    assert response.json()["result"]["resultType"] == "complete"
    assert discover.status == 200 and STATELESS in discover.json()["result"]["supportedVersions"]


async def _sse_session(world: World, secret: str | None, query: str = ""):
    """An open SSE stream (context manager) and, via the first event, its message endpoint."""
    return world.client.stream("GET", BASE + "/sse" + query, headers={"accept": "text/event-stream",
                                                                       **bearer(secret)})


@pytest.mark.parametrize("case", CASES)
async def test_sse_stream_matrix(matrix_world, case):
    world = matrix_world
    secret = credential_for(world, case)
    async with await _sse_session(world, secret) as stream:
        if case != "valid":
            body = await stream.body()
            assert_refused(type("R", (), {"status": stream.status, "headers": stream.headers, "body": body,
                                          "text": body.decode()})(), world, case)
            return
        assert stream.status == 200
        event = await stream.event()
        assert event["event"] == "endpoint" and event["data"].startswith(BASE + "/message?sessionId=")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", HANDSHAKE + [STATELESS])
async def test_sse_message_matrix(matrix_world, version, case):
    """Every POST to the message endpoint is checked, whichever revision the client speaks on the stream."""
    world = matrix_world
    secret = credential_for(world, case)
    async with await _sse_session(world, world.keys["alice"]) as stream:
        endpoint = (await stream.event())["data"]
        alice = bearer(world.keys["alice"])
        if version != STATELESS:
            init = await world.client.post(endpoint, json=rpc("initialize", {"protocolVersion": version}, 1),
                                           headers=alice)
            assert init.status == 202
            assert json.loads((await stream.event())["data"])["result"]["protocolVersion"] == version
        posted = await world.client.post(endpoint, json=call_echo(2, stateless=version == STATELESS),
                                         headers=bearer(secret))
        if case != "valid":
            assert_refused(posted, world, case)
            # nothing was answered on the stream; the owner's next message is
            again = await world.client.post(endpoint, json=rpc("ping", id=3), headers=alice)
            assert again.status == 202
            assert json.loads((await stream.event())["data"]) == {"jsonrpc": "2.0", "id": 3, "result": {}}
            assert world.backend.requests == []
            return
        assert posted.status == 202
        answer = json.loads((await stream.event())["data"])
        assert answer["id"] == 2
        assert_echo_result(answer)


async def test_disabled_and_other_teams_consumers_are_unknown(world):
    for label in ("dave", "mallory"):
        response = await world.client.post(BASE, json=call_echo(stateless=True),
                                           headers={**stateless_headers("tools/call", "echo"),
                                                    **bearer(world.keys[label])})
        assert_refused(response, world, "bad")


async def test_a_credential_that_is_not_bearer_counts_as_none(world):
    response = await world.client.post(BASE, json=call_echo(stateless=True),
                                       headers={**stateless_headers("tools/call", "echo"),
                                                "authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert_refused(response, world, "none")


async def test_cors_preflight_needs_no_credential(world):
    response = await world.client.request("OPTIONS", BASE, headers={"origin": "http://localhost:6274",
                                                                     "access-control-request-method": "POST"})
    assert response.status == 204
    assert "authorization" in response.headers["access-control-allow-headers"]
    # a server reading the key from a header of its own naming: the preflight allows the header it asks for
    custom = await world.client.request("OPTIONS", BASE, headers={
        "origin": "http://localhost:6274", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, X-Consumer-Key, bad header"})
    assert custom.status == 204
    allowed = [name.strip() for name in custom.headers["access-control-allow-headers"].split(",")]
    assert allowed[-1] == "x-consumer-key" and allowed.count("content-type") == 1 and "bad header" not in allowed
    refused = await world.client.post(BASE, json=rpc("initialize", {"protocolVersion": "2025-11-25"}),
                                      headers={"origin": "http://localhost:6274", "accept": ACCEPT})
    assert refused.status == 401
    assert refused.headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "www-authenticate" in refused.headers["access-control-expose-headers"]


# ---------------------------------------------------------------- changes take effect on the next request

async def test_revoking_disabling_and_deauthorizing_take_effect_at_once(world):
    session = await open_session(world, "2025-11-25", world.keys["alice"])
    alice = bearer(world.keys["alice"])
    assert (await world.client.post(BASE, json=call_echo(), headers={**session, **alice})).status == 200

    await sync_to_async(cs.authorization_revoke)(world.server, world.consumers["alice"])
    refused = await world.client.post(BASE, json=call_echo(), headers={**session, **alice})
    assert refused.status == 403 and refused.json()["error"]["code"] == p.FORBIDDEN

    await sync_to_async(cs.authorize)(world.server, world.consumers["alice"])
    assert (await world.client.post(BASE, json=call_echo(), headers={**session, **alice})).status == 200

    await sync_to_async(cs.consumer_set_enabled)(world.consumers["alice"], False)
    assert_refused(await world.client.post(BASE, json=call_echo(), headers={**session, **alice}), world, "bad")
    await sync_to_async(cs.consumer_set_enabled)(world.consumers["alice"], True)
    assert (await world.client.post(BASE, json=call_echo(), headers={**session, **alice})).status == 200

    await sync_to_async(cs.key_revoke)(world.key_rows["alice"])
    assert_refused(await world.client.post(BASE, json=call_echo(), headers={**session, **alice}), world, "bad")


async def _ends_within_keepalives(stream, limit: int) -> None:
    """The stream ends before sending `limit` more keepalive comments (an open stream sends one per interval)."""
    seen = stream.buffered.count(b": keepalive")
    with pytest.raises(EOFError):
        await stream.until_seen(b": keepalive", seen + limit)
    assert stream.ended


@pytest.mark.parametrize("change", ["key_revoked", "authorization_revoked", "consumer_disabled"])
async def test_open_streams_end_at_the_next_keepalive_once_their_credential_is_refused(world, settings, change):
    settings.MCP_SSE_KEEPALIVE_SECONDS = 0.05
    alice = world.keys["alice"]
    session = await open_session(world, "2025-11-25", alice)
    async with await _sse_session(world, alice) as sse, \
            world.client.stream("GET", BASE, headers={**session, **bearer(alice)}) as get_stream:
        assert sse.status == 200 and get_stream.status == 200
        assert (await sse.event())["event"] == "endpoint"
        # Both streams live through keepalives while the credential is good...
        for stream in (sse, get_stream):
            await stream.until_seen(b": keepalive", 2)
        undo = {"key_revoked": lambda: cs.key_revoke(world.key_rows["alice"]),
                "authorization_revoked": lambda: cs.authorization_revoke(world.server, world.consumers["alice"]),
                "consumer_disabled": lambda: cs.consumer_set_enabled(world.consumers["alice"], False)}[change]
        await sync_to_async(undo)()
        # ...and end, cleanly, at the first keepalive after it is refused.
        for stream in (sse, get_stream):
            await _ends_within_keepalives(stream, 3)
    refused = await world.client.post(BASE, json=call_echo(), headers={**session, **bearer(alice)})
    assert refused.status == (403 if change == "authorization_revoked" else 401)


async def test_open_streams_of_other_consumers_stay_open_when_one_key_is_revoked(world, settings):
    settings.MCP_SSE_KEEPALIVE_SECONDS = 0.05
    async with await _sse_session(world, world.keys["bob"]) as bob_stream:
        assert (await bob_stream.event())["event"] == "endpoint"
        await sync_to_async(cs.key_revoke)(world.key_rows["alice"])
        await bob_stream.until_seen(b": keepalive", 5)
        assert not bob_stream.ended


async def test_enabling_authentication_under_live_sessions_and_disabling_it(world):
    await sync_to_async(cs.set_consumer_auth)(world.server, enabled=False)
    streamable = await open_session(world, "2025-06-18", None)  # opened while the server is open
    async with await _sse_session(world, None) as stream:
        endpoint = (await stream.event())["data"]
        assert (await world.client.post(endpoint, json=rpc("initialize", {"protocolVersion": "2024-11-05"}),
                                        headers={})).status == 202
        await stream.event()

        await sync_to_async(cs.set_consumer_auth)(world.server, enabled=True)
        # the next request of each session must authenticate
        assert_refused(await world.client.post(BASE, json=call_echo(), headers=streamable), world, "none")
        assert_refused(await world.client.post(endpoint, json=call_echo(), headers={}), world, "none")
        # the first consumer to authenticate on a session opened anonymously keeps it
        alice, bob = bearer(world.keys["alice"]), bearer(world.keys["bob"])
        assert (await world.client.post(BASE, json=call_echo(), headers={**streamable, **alice})).status == 200
        assert (await world.client.post(BASE, json=call_echo(), headers={**streamable, **bob})).status == 404
        assert (await world.client.post(endpoint, json=call_echo(5), headers=bob)).status == 202
        assert json.loads((await stream.event())["data"])["id"] == 5
        assert (await world.client.post(endpoint, json=call_echo(6), headers=alice)).status == 404

        await sync_to_async(cs.set_consumer_auth)(world.server, enabled=False)
        # open again: no credential needed, and the consumer template fields are empty
        opened = await world.client.post(BASE, json=call_echo(), headers=streamable)
        assert opened.status == 200
        assert world.backend.last.headers["X-Consumer"] == ""
        assert world.backend.last.headers["X-Consumer-Id"] == "id-"
        assert (await world.client.post(endpoint, json=call_echo(7), headers={})).status == 202
        assert json.loads((await stream.event())["data"])["id"] == 7


# ---------------------------------------------------------------- sessions belong to their consumer

async def test_another_consumers_credential_on_a_session_is_an_unknown_session(world):
    for version in ("2025-03-26", "2025-11-25"):
        session = await open_session(world, version, world.keys["alice"])
        bob = bearer(world.keys["bob"])
        unknown = await world.client.post(BASE, json=call_echo(), headers={**session, "mcp-session-id": "nope",
                                                                          **bob})
        assert unknown.status == 404
        for response in (await world.client.post(BASE, json=call_echo(), headers={**session, **bob}),
                         await world.client.get(BASE, headers={**session, "accept": "text/event-stream", **bob}),
                         await world.client.delete(BASE, headers={**session, **bob})):
            assert response.status == 404
            assert response.json() == unknown.json()
        # the owner's session survived the attempts
        assert (await world.client.post(BASE, json=rpc("ping", id=9),
                                        headers={**session, **bearer(world.keys["alice"])})).status == 200

    async with await _sse_session(world, world.keys["alice"]) as stream:
        endpoint = (await stream.event())["data"]
        unknown = await world.client.post(endpoint.split("?")[0] + "?sessionId=nope", json=rpc("ping"),
                                          headers=bearer(world.keys["bob"]))
        stolen = await world.client.post(endpoint, json=rpc("ping"), headers=bearer(world.keys["bob"]))
        assert unknown.status == stolen.status == 404
        assert stolen.json() == unknown.json()


# ---------------------------------------------------------------- per-consumer tools

async def test_tools_outside_a_consumers_set_are_absent_and_unknown(world):
    async def listing(secret):
        response = await world.client.post(BASE, json=rpc("tools/list", stateless=True),
                                           headers={**stateless_headers("tools/list"), **bearer(secret)})
        assert response.status == 200, response.text
        return [tool["name"] for tool in response.json()["result"]["tools"]]

    async def call(secret, name):
        response = await world.client.post(BASE, json=rpc("tools/call", {"name": name, "arguments": {}},
                                                          stateless=True),
                                           headers={**stateless_headers("tools/call", name), **bearer(secret)})
        return response.status, response.json()

    assert await listing(world.keys["alice"]) == ["echo", "relay", "relay_key", "secret_tool"]
    assert await listing(world.keys["bob"]) == ["echo"]

    status, body = await call(world.keys["bob"], "secret_tool")
    unknown_status, unknown = await call(world.keys["bob"], "no_such_tool")
    assert status == unknown_status == 200  # a JSON-RPC error in a 200, as for any unknown tool
    assert body == {"jsonrpc": "2.0", "id": 1, "error": {"code": p.INVALID_PARAMS, "message": "Unknown tool: secret_tool"}}
    assert unknown == {"jsonrpc": "2.0", "id": 1, "error": {"code": p.INVALID_PARAMS,
                                                            "message": "Unknown tool: no_such_tool"}}
    assert [r.path for r in world.backend.requests] == []
    status, body = await call(world.keys["alice"], "secret_tool")
    assert status == 200 and body["result"]["isError"] is False
    assert [r.path for r in world.backend.requests] == ["/secret"]

    # in a session too, and a narrowed set shows on the next list
    session = await open_session(world, "2025-11-25", world.keys["alice"])
    await sync_to_async(cs.authorize)(world.server, world.consumers["alice"], ["secret_tool"])
    listed = await world.client.post(BASE, json=rpc("tools/list"), headers={**session, **bearer(world.keys["alice"])})
    assert [t["name"] for t in listed.json()["result"]["tools"]] == ["secret_tool"]
    refused = await world.client.post(BASE, json=call_echo(), headers={**session, **bearer(world.keys["alice"])})
    assert refused.json()["error"] == {"code": p.INVALID_PARAMS, "message": "Unknown tool: echo"}


# ---------------------------------------------------------------- the credential stays at the edge

def assert_backend_never_saw(backend: Backend, secret: str) -> None:
    assert backend.requests, "the backend was not called"
    for got in backend.requests:
        seen = json.dumps([got.raw_path, got.query_string, got.headers, got.body.decode("latin-1")])
        assert secret not in seen, seen


SOURCES = [
    pytest.param("bearer", "", lambda key: ({"authorization": f"Bearer {key}"}, ""), id="bearer"),
    pytest.param("header", "X-Consumer-Key", lambda key: ({"x-consumer-key": key}, ""), id="header"),
    pytest.param("query", "api_key", lambda key: ({}, f"?api_key={key}"), id="query"),
]


@pytest.mark.parametrize(("source", "name", "place"), SOURCES)
async def test_credential_sources_and_the_backend_never_sees_the_credential(world, source, name, place):
    await sync_to_async(cs.set_consumer_auth)(world.server, enabled=True, source=source, name=name)
    key = world.keys["alice"]
    headers, query = place(key)
    for tool in ("echo", "relay", "relay_key"):
        response = await world.client.post(BASE + query, json=rpc("tools/call", {"name": tool, "arguments": {}},
                                                                  stateless=True),
                                           headers={**stateless_headers("tools/call", tool), **headers})
        assert response.status == 200, response.text
        assert response.json()["result"]["isError"] is False, response.text
    assert_backend_never_saw(world.backend, key)
    # passthrough configured: with the client's credential consumed, the configured one goes to the backend
    relay, relay_key = world.backend.requests[1], world.backend.requests[2]
    assert relay.headers["Authorization"] == "Bearer backend-default"
    assert relay_key.headers["Authorization"] == "Bearer backend-default"
    assert world.backend.requests[0].headers["X-Consumer"] == "alice"
    assert world.backend.requests[0].headers["X-Consumer-Id"] == f"id-{world.consumers['alice'].pk}"

    # the key anywhere else is no key at all
    for other_headers, other_query in (place_of(s, key) for s in ("bearer", "header", "query") if s != source):
        refused = await world.client.post(BASE + other_query, json=call_echo(stateless=True),
                                          headers={**stateless_headers("tools/call", "echo"), **other_headers})
        assert refused.status == 401
        assert "error=" not in refused.headers["www-authenticate"]
        how = {"bearer": "send it as Authorization: Bearer <key>.", "header": "send it in the X-Consumer-Key header.",
               "query": "send it as the api_key query parameter."}[source]
        assert refused.json()["error"]["message"] == f"This MCP server requires an API key: {how}"


def place_of(source: str, key: str) -> tuple[dict[str, str], str]:
    return {"bearer": ({"authorization": f"Bearer {key}"}, ""), "header": ({"x-consumer-key": key}, ""),
            "query": ({}, f"?api_key={key}")}[source]


async def test_a_separate_consumer_header_leaves_the_clients_own_authorization_to_passthrough(world):
    await sync_to_async(cs.set_consumer_auth)(world.server, enabled=True, source="header", name="X-Consumer-Key")
    key = world.keys["alice"]
    response = await world.client.post(BASE, json=rpc("tools/call", {"name": "relay", "arguments": {}},
                                                      stateless=True),
                                       headers={**stateless_headers("tools/call", "relay"), "x-consumer-key": key,
                                                "authorization": "Bearer users-backend-token"})
    assert response.status == 200 and response.json()["result"]["isError"] is False
    assert world.backend.last.headers["Authorization"] == "Bearer users-backend-token"
    assert "X-Consumer-Key" not in world.backend.last.headers
    assert_backend_never_saw(world.backend, key)


async def test_sse_with_the_key_in_the_query(world):
    await sync_to_async(cs.set_consumer_auth)(world.server, enabled=True, source="query", name="api_key")
    key = world.keys["alice"]
    async with await _sse_session(world, None, f"?api_key={key}") as stream:
        assert stream.status == 200
        endpoint = (await stream.event())["data"]
        # the announced endpoint carries the credential, so a client that posts to it as given is let in
        assert endpoint.endswith(f"&api_key={key}")
        assert (await world.client.post(endpoint, json=call_echo(4), headers={})).status == 202
        answer = json.loads((await stream.event())["data"])
        assert_echo_result(answer)
        bare = endpoint.split("&")[0]
        assert (await world.client.post(bare, json=call_echo(5), headers={})).status == 401
    assert_backend_never_saw(world.backend, key)


# ---------------------------------------------------------------- the read model and last use

def test_loading_a_servers_consumers_takes_a_fixed_number_of_queries(transactional_db):
    User = get_user_model()
    owner = User.objects.create_user("owner", password="pw-123456")
    team = services.team_create(name="Team A", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="inst")
    server = services.mcp_server_create(actor=owner, instance=instance, name="guarded")
    services.tools_apply_yaml(actor=owner, mcp_server=server, text=TOOLS_YAML.format(url="http://127.0.0.1:9"))
    cs.set_consumer_auth(server, enabled=True)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            config = _load_server(server.pk, 1)
        return len(captured), config

    def grow(count: int) -> None:
        start = len(team.consumers.all())
        for i in range(start, start + count):
            consumer = cs.consumer_create(team, f"c{i}")
            cs.key_issue(consumer)
            cs.authorize(server, consumer, ["echo"] if i % 2 else None)

    grow(2)
    few, config = queries()
    grow(20)
    many, config = queries()
    assert few == many
    auth = config.consumer_auth
    assert auth.enabled and len(auth.consumers) == 22 and len(auth.api_keys) == 22 and len(auth.identities) == 22


async def test_last_use_of_a_key_is_recorded_off_the_request_path(world, settings):
    settings.GATEWAY_KEY_USAGE_FLUSH_SECONDS = 0.1
    before = await ConsumerApiKey.objects.aget(pk=world.key_rows["bob"].pk)
    assert before.last_used_at is None
    started = dt.datetime.now(tz=dt.timezone.utc)
    for i in range(3):
        response = await world.client.post(BASE, json=call_echo(stateless=True),
                                           headers={**stateless_headers("tools/call", "echo"),
                                                    **bearer(world.keys["bob"])})
        assert response.status == 200
    deadline = time.monotonic() + 10
    used = None
    while time.monotonic() < deadline:
        used = (await ConsumerApiKey.objects.aget(pk=world.key_rows["bob"].pk)).last_used_at
        if used is not None:
            break
        await asyncio.sleep(0.05)
    assert used is not None and used >= started - dt.timedelta(seconds=1)
    untouched = await ConsumerApiKey.objects.aget(pk=world.key_rows["carol"].pk)
    assert untouched.last_used_at is None


@pytest.fixture
def redis_profile(settings):
    """The production profile in-process: shared state on Redis, and a poll interval far longer than the test."""
    settings.REDIS_URL = require_redis()
    settings.GATEWAY_CONFIG_POLL_SECONDS = 60


async def test_a_change_made_by_this_processs_console_is_seen_before_the_next_poll(redis_profile, world):
    async def call(secret):
        return await world.client.post(BASE, json=call_echo(stateless=True),
                                       headers={**stateless_headers("tools/call", "echo"), **bearer(secret)})

    assert (await call(world.keys["bob"])).status == 200  # this process now holds the current config
    _, fresh = await sync_to_async(cs.key_issue)(world.consumers["bob"])
    assert (await call(fresh)).status == 200
    assert (await call(world.keys["carol"])).status == 403
    await sync_to_async(cs.authorize)(world.server, world.consumers["carol"])
    assert (await call(world.keys["carol"])).status == 200
    await sync_to_async(cs.key_revoke)(world.key_rows["bob"])
    assert_refused(await call(world.keys["bob"]), world, "revoked")
    assert (await call(fresh)).status == 200
