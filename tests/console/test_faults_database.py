"""PostgreSQL unreachable under a live server: MCP keeps serving from the configuration cache; console and API 503."""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from ..live import fresh_database_url, start_live
from ..outages import Relay, require_postgres

pytestmark = [pytest.mark.live, pytest.mark.postgres]

ACCEPT = {"Accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": 1}}}


@pytest.fixture
def relayed_database(monkeypatch):
    """A live server whose database connections pass through a relay on a loopback port the test can close."""
    require_postgres()
    db_url, drop = fresh_database_url()
    parts = urlsplit(db_url)
    relay = Relay(parts.hostname, parts.port or 5432)
    relay.open()
    userinfo = parts.netloc.rpartition("@")[0]
    relayed = urlunsplit(parts._replace(netloc=(userinfo + "@" if userinfo else "") + f"127.0.0.1:{relay.port}"))
    server = start_live(extra_env={"DATABASE_URL": relayed, "GATEWAY_RETRY_AFTER_SECONDS": "7",
                                   "DATABASE_CONNECT_TIMEOUT": "2"})
    yield relay, server
    server.stop()
    relay.cut()
    drop()


def _sign_in(http: httpx.Client, base: str) -> None:
    page = http.get(base + "/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = http.post(base + "/login/", data={"username": "admin", "password": "admin-pass-1",
                                                  "csrfmiddlewaretoken": token}, headers={"Referer": base + "/login/"})
    assert signed_in.status_code == 302, signed_in.text


def test_database_unreachable_gateway_serves_from_cache_console_and_api_answer_503(relayed_database):
    relay, server = relayed_database
    base = server.url
    token = server.manage("create_api_token", "admin").stdout.strip()
    api_headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=30) as http, httpx.Client(timeout=30) as browser:
        instance = http.get(base + "/api/v1/instances/", headers=api_headers).json()["results"][0]["id"]
        spare = http.post(base + "/api/v1/mcp-servers/", json={"instance": instance, "name": "spare"},
                          headers=api_headers)
        assert spare.status_code == 201, spare.text
        # Warm-up: the gateway has read the petstore server's configuration; an operator is signed in.
        init = http.post(base + "/mcp-servers/petstore", json=INIT, headers=ACCEPT)
        sid = init.headers["mcp-session-id"]
        session = {**ACCEPT, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
        assert http.post(base + "/mcp-servers/petstore", json=CALL, headers=session).status_code == 200
        _sign_in(browser, base)
        assert browser.get(base + "/console/instances/").status_code == 200
        assert http.get(base + "/api/v1/instances/", headers=api_headers).status_code == 200
        assert http.get(base + "/readyz").json()["status"] == "ready"

        relay.cut()

        # The gateway keeps serving: the session's tool call, a new session, another call. The call reaches the
        # backend, whose answer is relayed: the demo API is part of the console, so it is as down as the database.
        called = http.post(base + "/mcp-servers/petstore", json=CALL, headers=session)
        assert called.status_code == 200
        result = called.json()["result"]
        assert result["isError"] is True
        assert result["content"][0]["text"].startswith("Backend returned HTTP 503 Service Unavailable for GET ")
        again = http.post(base + "/mcp-servers/petstore", json=INIT, headers=ACCEPT)
        assert again.status_code == 200 and again.headers["mcp-session-id"] != sid

        # A server the gateway has not read yet cannot be served: a 503 it can retry, not a 500.
        unread = http.post(base + "/mcp-servers/spare", json=INIT, headers=ACCEPT)
        assert unread.status_code == 503 and unread.headers["retry-after"] == "7"
        assert unread.json()["error"]["message"] == "Configuration database unavailable; retry in 7 s."

        started = time.monotonic()
        listed = http.get(base + "/api/v1/instances/", headers=api_headers)
        assert time.monotonic() - started < 10  # the connect timeout bounds it; a closed port fails at once
        assert listed.status_code == 503
        assert listed.headers["retry-after"] == "7"
        assert listed.json() == {"detail": "The database is unavailable; retry in 7 s.",
                                 "code": "database_unavailable", "errors": {}}

        page = browser.get(base + "/console/instances/")
        assert page.status_code == 503
        assert page.headers["retry-after"] == "7"
        assert "Temporarily unavailable" in page.text and "cannot reach its database" in page.text

        ready = http.get(base + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["database"]
        # Redis is fine: in-process in the embedded profile, reachable in the production one (REDIS_URL, as under CI).
        assert ready.json()["checks"]["redis"] == ("ok" if server.env.get("REDIS_URL") else "in-process")
        assert http.get(base + "/healthz").status_code == 200

        relay.open()  # the database is back: everything recovers without a restart

        assert http.get(base + "/api/v1/instances/", headers=api_headers).status_code == 200
        assert browser.get(base + "/console/instances/").status_code == 200
        assert http.get(base + "/readyz").json()["status"] == "ready"

    log = server.log_text()
    assert log.count("Database (configuration store) unreachable") == 1, log
    assert log.count("Database (configuration store) reachable again") == 1, log
    assert "Traceback" not in log, log
