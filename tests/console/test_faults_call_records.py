"""Call records across a PostgreSQL outage: kept in memory up to the bound, written on return, the rest counted."""
from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..live import fresh_database_url, start_live
from ..outages import Relay, require_postgres

pytestmark = [pytest.mark.live, pytest.mark.postgres]

ACCEPT = {"Accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": 1}}}
BUFFER = 5


@pytest.fixture
def relayed_database():
    require_postgres()
    db_url, drop = fresh_database_url()
    parts = urlsplit(db_url)
    relay = Relay(parts.hostname, parts.port or 5432)
    relay.open()
    userinfo = parts.netloc.rpartition("@")[0]
    relayed = urlunsplit(parts._replace(netloc=(userinfo + "@" if userinfo else "") + f"127.0.0.1:{relay.port}"))
    server = start_live(extra_env={"DATABASE_URL": relayed, "DATABASE_CONNECT_TIMEOUT": "2",
                                   "GATEWAY_CALL_RECORD_BUFFER": str(BUFFER),
                                   "GATEWAY_CALL_RECORD_FLUSH_SECONDS": "0.2"})
    yield relay, server
    server.stop()
    relay.cut()
    drop()


def _records(server) -> int:
    out = server.manage("shell", "-c", "from console.models import CallRecord; print(CallRecord.objects.count())")
    return int(out.stdout.strip().splitlines()[-1])


def _wait_for_records(server, expected: int) -> int:
    deadline = time.monotonic() + 20
    while True:
        count = _records(server)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.3)


def _dropped(http: httpx.Client, base: str) -> float:
    page = http.get(base + "/metrics")
    assert page.status_code == 200, page.text
    for family in text_string_to_metric_families(page.text):
        if family.name == "mcpgw_call_records_dropped":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    raise AssertionError("no mcpgw_call_records_dropped_total in /metrics")


def test_call_records_are_kept_through_a_database_outage_and_overflow_is_counted(relayed_database):
    relay, server = relayed_database
    base = server.url
    with httpx.Client(timeout=30, headers=ACCEPT) as http:
        init = http.post(base + "/mcp-servers/petstore", json=INIT)
        assert init.status_code == 200, init.text
        session = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        assert http.post(base + "/mcp-servers/petstore", json=CALL, headers=session).status_code == 200
        assert _wait_for_records(server, 1) == 1
        assert _dropped(http, base) == 0

        relay.cut()

        # Calls are served from the configuration cache; their records wait in memory, the bound's worth of them.
        # (The demo API behind petstore is part of the console and may itself answer 503 now: a tool result too.)
        for id in range(10, 10 + BUFFER + 3):
            called = http.post(base + "/mcp-servers/petstore", json={**CALL, "id": id}, headers=session)
            assert called.status_code == 200 and called.json()["result"]["content"], called.text
        time.sleep(1.0)  # several flushes fail meanwhile: still one log line for the outage

        relay.open()

        assert _wait_for_records(server, 1 + BUFFER) == 1 + BUFFER
        time.sleep(0.5)
        assert _records(server) == 1 + BUFFER  # nothing written twice
        assert _dropped(http, base) == 3

    log = server.log_text()
    assert log.count("Could not write call records") == 1, log
    assert log.count("Call records written again after") == 1, log
    assert f"{BUFFER} kept meanwhile, 3 dropped" in log, log
    assert "Traceback" not in log, log
