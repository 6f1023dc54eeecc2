"""Two Daphne processes on one Redis: a token signed in through one works on both, and once revoked (at the
revocation endpoint, or on the consumer's page) the next request on the process that revoked it is refused, and on
the other one within GATEWAY_CONFIG_POLL_SECONDS (what a process read from Redis it keeps that long)."""
from __future__ import annotations

import time

import httpx
import pytest

from ..conftest import require_redis
from ..live import start_live
from .consumer_setup import live_setup
from .oauth_setup import ConsoleUser, authorize_url, exchange, hidden_fields, pkce_pair, redirect_params, \
    register_client

pytestmark = [pytest.mark.live, pytest.mark.redis]

POLL_SECONDS = 0.25  # GATEWAY_CONFIG_POLL_SECONDS, the live servers' default
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


@pytest.fixture(scope="module")
def pair():
    url = require_redis()
    server = start_live(processes=2, extra_env={"REDIS_URL": url})
    try:
        server.oauth = live_setup(server, "__import__('tests.gateway.oauth_setup', fromlist=['x'])"
                                          ".oauth_petstore('two-proc')")
        yield server
    finally:
        server.stop()


def status_on(base: str, path: str, token: str) -> int:
    return httpx.post(base + path, json=INIT, timeout=30, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}).status_code


def signed_in(pair, person: ConsoleUser, client_name: str) -> tuple[dict, str]:
    """Registered and approved on process A; the token (from process B's token endpoint) and the resource."""
    a, b = pair.url_of(0), pair.url_of(1)
    resource = a + pair.oauth["path"]
    client = register_client(a, name=client_name)
    verifier, challenge = pkce_pair()
    code = redirect_params(person.decide(authorize_url(a, client_id=client["client_id"], resource=resource,
                                                       scope=pair.oauth["scope"], challenge=challenge)))["code"]
    answer = exchange(b, client_id=client["client_id"], code=code, verifier=verifier, resource=resource)
    assert answer.status_code == 200, answer.text
    return {**answer.json(), "client_id": client["client_id"]}, resource


def test_revocation_reaches_every_process_at_once(pair):
    a, b = pair.url_of(0), pair.url_of(1)
    path = pair.oauth["path"]
    person = ConsoleUser(a)
    try:
        tokens, _ = signed_in(pair, person, "Two Process Client")
    finally:
        person.close()
    assert status_on(a, path, tokens["access_token"]) == 200
    assert status_on(b, path, tokens["access_token"]) == 200
    revoked = httpx.post(b + "/oauth/revoke/", data={"token": tokens["access_token"],
                                                     "client_id": tokens["client_id"]}, timeout=30)
    assert revoked.status_code == 200
    # The process that revoked it refuses it at once; the other within the poll interval.
    assert status_on(b, path, tokens["access_token"]) == 401
    time.sleep(POLL_SECONDS + 0.05)
    assert status_on(a, path, tokens["access_token"]) == 401


def test_revoking_on_the_consumers_page_reaches_the_other_process(pair):
    a, b = pair.url_of(0), pair.url_of(1)
    path = pair.oauth["path"]
    person = ConsoleUser(a)
    try:
        tokens, _ = signed_in(pair, person, "Page Revoked Client")
        assert status_on(b, path, tokens["access_token"]) == 200
        row = live_setup(pair, "[(t.pk, t.consumer_id, t.consumer.team.instances.get(name='default').pk) for t in "
                               "cs.Consumer.objects.get(name='page-revoked-client').oauth_tokens.all()]")
        token_id, consumer_id, instance_id = row[0]
        page_url = f"/console/instances/{instance_id}/consumers/{consumer_id}/"
        page = person.http.get(page_url)
        assert "Page Revoked Client" in page.text
        confirm_url = f"{page_url}oauth-tokens/{token_id}/delete/"
        confirm = person.http.get(confirm_url)
        done = person.http.post(confirm_url, data=hidden_fields(confirm.text), headers={"Referer": a + confirm_url})
        assert done.status_code == 302
    finally:
        person.close()
    assert status_on(a, path, tokens["access_token"]) == 401  # the page was served by process A
    time.sleep(POLL_SECONDS + 0.05)
    assert status_on(b, path, tokens["access_token"]) == 401
    refreshed = httpx.post(b + "/oauth/token/", data={"grant_type": "refresh_token", "client_id": tokens["client_id"],
                                                      "refresh_token": tokens["refresh_token"]}, timeout=30)
    assert refreshed.json()["error"] == "invalid_grant"
