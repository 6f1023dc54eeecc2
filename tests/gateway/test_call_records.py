"""Call records through the gateway's real ASGI app: one per call under concurrency, every outcome and field,
redaction, batches written off the request path, retention, and nothing lost when a live server stops cleanly."""
from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console import services
from console.models import CallRecord
from gateway import governance
from gateway import protocol as p
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.governance import records
from gateway.state import close_states

from ..live import start_live
from .governance_setup import GUARDED, OPEN, build_world, call, rpc, session
from .test_http_to_mcp import Backend

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def held(settings, monkeypatch):
    """A record buffer of its own whose thread never flushes by itself: the test decides when records are written."""
    settings.GATEWAY_CALL_RECORDS = True
    settings.GATEWAY_CALL_RECORD_FLUSH_SECONDS = 3600
    fresh = records.RecordBuffer()
    monkeypatch.setattr(governance, "buffer", fresh)
    yield fresh
    fresh._stopping = True
    fresh._wake.set()


@pytest.fixture
async def world():
    backend = Backend()
    await backend.start()
    backend.answer("/broken", status=502, json_body={"message": "down"})
    built = await sync_to_async(build_world)(backend.url, app)
    yield built
    await close_http_sessions()
    await close_states()
    await backend.stop()


def _records(**filters) -> list[CallRecord]:
    return list(CallRecord.objects.filter(**filters).order_by("pk"))


async def test_one_record_per_call_under_concurrency_written_in_one_batch(world, held):
    headers = await session(world.client, GUARDED, world.keys["alice"], client_name="load-client")
    answers = await asyncio.gather(*(world.client.post(GUARDED, json=call(arguments={"text": f"n{i}"}, id=100 + i),
                                                       headers=headers) for i in range(60)))
    assert [a.status for a in answers] == [200] * 60
    # Answered, and nothing written yet: the request path only appends to the buffer.
    assert held.pending() == 60
    assert await sync_to_async(CallRecord.objects.count)() == 0

    def flush():
        with CaptureQueriesContext(connection) as queries:
            written = held.flush()
        return written, [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]

    written, inserts = await sync_to_async(flush)()
    # One statement for the batch: an INSERT on SQLite; on PostgreSQL a COPY, which Django's query log never sees.
    assert written == 60 and len(inserts) == (0 if connection.vendor == "postgresql" else 1)
    rows = await sync_to_async(_records)()
    assert len(rows) == 60
    first = rows[0]
    assert {r.outcome for r in rows} == {"ok"}
    assert (first.instance, first.tool, first.consumer_name, first.consumer_id) == (
        "gov", "echo", "alice", world.consumers["alice"].pk)
    assert (first.transport, first.revision, first.client_name) == ("streamable", p.V2025_11_25, "load-client")
    assert first.session_id == headers["mcp-session-id"]
    assert first.backend_status == 200 and first.latency_ms > 0
    assert sorted(r.request_bytes for r in rows)[:10] == [len('{"text":"n0"}')] * 10
    assert first.response_bytes == len('{"ok": true}')
    assert first.arguments is None  # not kept unless the server says so


async def test_every_outcome_is_told_apart(world, held):
    await sync_to_async(services.rate_limit_create)(actor=world.owner, mcp_server=world.open, requests=4,
                                                    window="day")
    headers = await session(world.client, OPEN)
    await world.client.post(OPEN, json=call("echo"), headers=headers)  # ok
    await world.client.post(OPEN, json=call("broken"), headers=headers)  # the backend answers 502
    await world.client.post(OPEN, json=rpc("tools/call", {"name": "echo", "arguments": "not an object"}),
                            headers=headers)  # tool error (2025-11-25 reports it in the result)
    await world.client.post(OPEN, json=call("no-such-tool"), headers=headers)  # refused: unknown tool
    await world.client.post(OPEN, json=call("echo"), headers=headers)  # limited (4 per day, the 5th call)
    await sync_to_async(held.flush)()
    rows = await sync_to_async(_records)(mcp_server=world.open)
    assert [(r.tool, r.outcome) for r in rows] == [
        ("echo", "ok"), ("broken", "backend_error"), ("echo", "tool_error"), ("no-such-tool", "refused"),
        ("echo", "limited")]
    assert [r.backend_status for r in rows] == [200, 502, None, None, None]
    assert rows[3].error == "Unknown tool: no-such-tool"
    assert rows[4].error.startswith("Rate limit exceeded: 4 requests per day")
    assert all(r.consumer_id is None and r.consumer_name == "" for r in rows)


async def test_arguments_are_kept_with_secrets_and_configured_fields_redacted(world, held):
    await sync_to_async(services.call_record_settings_set)(actor=world.owner, mcp_server=world.open,
                                                           record_arguments=True, redact_fields=["card"])
    headers = await session(world.client, OPEN)
    answer = await world.client.post(OPEN, json=call(arguments={"text": "hello", "password": "hunter2",
                                                                "card": "4111111111111111"}), headers=headers)
    assert answer.status == 200
    await sync_to_async(held.flush)()
    (row,) = await sync_to_async(_records)(mcp_server=world.open)
    assert row.arguments == {"text": "hello", "password": "[redacted]", "card": "[redacted]"}
    stored = json.dumps(row.arguments)
    assert "hunter2" not in stored and "4111" not in stored


async def test_the_sse_transport_and_the_stateless_revision_are_recorded(world, held):
    async with world.client.stream("GET", OPEN + "/sse", headers={"accept": "text/event-stream"}) as stream:
        endpoint = (await stream.event())["data"]
        await world.client.post(endpoint, json=rpc("initialize", {"protocolVersion": p.V2024_11_05,
                                                                  "capabilities": {},
                                                                  "clientInfo": {"name": "old-client"}}))
        await stream.event()
        await world.client.post(endpoint, json=call(id=5))
        await stream.event()
    message = call(id=6)
    message["params"]["_meta"] = {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}
    answer = await world.client.post(OPEN, json=message, headers={
        "accept": "application/json, text/event-stream", "mcp-protocol-version": p.V2026_07_28,
        "mcp-method": "tools/call", "mcp-name": "echo"})
    assert answer.status == 200
    await sync_to_async(held.flush)()
    rows = await sync_to_async(_records)(mcp_server=world.open)
    assert [(r.transport, r.revision, r.client_name, bool(r.session_id)) for r in rows] == [
        ("sse", p.V2024_11_05, "old-client", True), ("stateless", p.V2026_07_28, "", False)]


async def test_nul_characters_from_a_client_never_make_a_batch_unwritable(world, held):
    # PostgreSQL's text and jsonb refuse NUL: one such call must not hold back the records around it.
    await sync_to_async(services.call_record_settings_set)(actor=world.owner, mcp_server=world.open,
                                                           record_arguments=True, redact_fields=[])
    headers = await session(world.client, OPEN, client_name="odd\x00client")
    await world.client.post(OPEN, json=call(arguments={"text": "before"}), headers=headers)
    await world.client.post(OPEN, json=call("no\x00such", arguments={"text": "nul\x00here"}), headers=headers)
    await world.client.post(OPEN, json=call(arguments={"text": "after"}), headers=headers)
    assert await sync_to_async(held.flush)() == 3
    rows = await sync_to_async(_records)(mcp_server=world.open)
    assert [(r.tool, r.outcome, r.client_name) for r in rows] == [
        ("echo", "ok", "odd\ufffdclient"), ("no\ufffdsuch", "refused", "odd\ufffdclient"),
        ("echo", "ok", "odd\ufffdclient")]
    assert rows[1].arguments == {"text": "nul\ufffdhere"}
    assert held.pending() == 0


async def test_records_of_a_deleted_server_are_dropped_and_the_rest_written(world, held):
    headers_open = await session(world.client, OPEN)
    headers_guarded = await session(world.client, GUARDED, world.keys["bob"])
    await world.client.post(OPEN, json=call(), headers=headers_open)
    await world.client.post(GUARDED, json=call(), headers=headers_guarded)
    await sync_to_async(services.mcp_server_delete)(actor=world.owner, mcp_server=world.open)
    assert await sync_to_async(held.flush)() == 1
    assert [r.consumer_name for r in await sync_to_async(_records)()] == ["bob"]


def test_a_full_buffer_drops_and_counts_rather_than_grows(settings):
    settings.GATEWAY_CALL_RECORD_BUFFER = 3
    settings.GATEWAY_CALL_RECORD_FLUSH_SECONDS = 3600
    full = records.RecordBuffer()
    for _ in range(5):
        full.add({"outcome": "ok"})
    assert (full.pending(), full.dropped) == (3, 2)
    full._stopping = True


def test_retention_purges_old_records_only(settings):
    from console.models import Instance, McpServer, Team

    team = Team.objects.create(name="T", slug="t")
    instance = Instance.objects.create(team=team, name="keep")
    server = McpServer.objects.create(instance=instance, name="s")
    now = dt.datetime.now(tz=dt.timezone.utc)
    for days in (1, 29, 31, 90):
        CallRecord.objects.create(at=now - dt.timedelta(days=days), mcp_server=server, instance="keep", tool="t",
                                  outcome="ok")
    settings.GATEWAY_CALL_RECORD_RETENTION_DAYS = 30
    assert records.purge_records(now=now) == 2
    assert sorted((now - r.at).days for r in CallRecord.objects.all()) == [1, 29]
    settings.GATEWAY_CALL_RECORD_RETENTION_DAYS = 0
    assert records.purge_records(now=now + dt.timedelta(days=365)) == 0
    # Production purges through Celery beat; the task runs the same purge.
    assert django_settings.CELERY_BEAT_SCHEDULE["purge-call-records"]["task"] == \
        "gateway.governance.tasks.call_records_purge"
    from gateway.governance.tasks import call_records_purge

    settings.GATEWAY_CALL_RECORD_RETENTION_DAYS = 2
    assert call_records_purge.apply().get() == 1  # the 29-day-old one
    assert [(now - r.at).days for r in CallRecord.objects.all()] == [1]


@pytest.mark.live
def test_a_clean_shutdown_writes_every_buffered_record():
    """A live server that would flush only hourly is stopped (SIGTERM): every call it answered is in the database."""
    live = start_live(extra_env={"GATEWAY_CALL_RECORD_FLUSH_SECONDS": "3600"})
    try:
        with httpx.Client(timeout=15, headers={"Accept": "application/json, text/event-stream"}) as http:
            init = http.post(live.url + "/mcp-servers/petstore", json=rpc("initialize", {
                "protocolVersion": p.V2025_11_25, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
            headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": p.V2025_11_25}
            for i in range(7):
                answer = http.post(live.url + "/mcp-servers/petstore", headers=headers, json=rpc(
                    "tools/call", {"name": "getPet", "arguments": {"petId": 1}}, id=10 + i))
                assert answer.status_code == 200
        count = "from console.models import CallRecord; print(CallRecord.objects.count())"
        assert live.manage("shell", "-c", count).stdout.strip().splitlines()[-1] == "0"
        for proc in live.procs:
            proc.terminate()
            proc.wait(timeout=20)
        assert live.manage("shell", "-c", count).stdout.strip().splitlines()[-1] == "7", live.log_text()
    finally:
        live.stop()
