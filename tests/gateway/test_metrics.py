"""/metrics through the real app: prometheus-client's own parser reads it, values move with traffic, and only a
token, an allowed address or (with neither set) loopback may read it."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from console import services
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.state import close_states

from .governance_setup import OPEN, build_world, call, session
from .test_http_to_mcp import Backend

pytestmark = pytest.mark.django_db(transaction=True)


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


def scrape(**extra) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_traffic(world):
    await sync_to_async(services.rate_limit_create)(actor=world.owner, mcp_server=world.open, requests=3,
                                                    window="day", tool="broken")
    ok = dict(instance="gov", server="open", tool="echo", outcome="ok")
    failed = dict(instance="gov", server="open", tool="broken", outcome="backend_error")
    before = await sync_to_async(scrape)()
    headers = await session(world.client, OPEN)
    for _ in range(4):
        await world.client.post(OPEN, json=call("echo"), headers=headers)
    for _ in range(5):  # 3 reach the failing backend, 2 are over the tool's limit
        await world.client.post(OPEN, json=call("broken"), headers=headers)
    after = await sync_to_async(scrape)()
    assert value(after, "mcpgw_tool_calls_total", **ok) - value(before, "mcpgw_tool_calls_total", **ok) == 4
    assert value(after, "mcpgw_tool_calls_total", **failed) - value(before, "mcpgw_tool_calls_total", **failed) == 3
    limited = dict(instance="gov", server="open", method="tools/call")
    assert value(after, "mcpgw_rate_limited_total", **limited) - value(before, "mcpgw_rate_limited_total",
                                                                        **limited) == 2
    where = dict(instance="gov", server="open")
    assert (value(after, "mcpgw_tool_call_duration_seconds_count", **where)
            - value(before, "mcpgw_tool_call_duration_seconds_count", **where)) == 9
    assert (value(after, "mcpgw_backend_duration_seconds_count", **where)
            - value(before, "mcpgw_backend_duration_seconds_count", **where)) == 7
    assert value(after, "mcpgw_tool_call_duration_seconds_sum", **where) > value(
        before, "mcpgw_tool_call_duration_seconds_sum", **where)


async def test_open_streams_are_a_gauge(world):
    before = value(await sync_to_async(scrape)(), "mcpgw_active_streams")
    async with world.client.stream("GET", OPEN + "/sse", headers={"accept": "text/event-stream"}) as stream:
        await stream.event()
        assert value(await sync_to_async(scrape)(), "mcpgw_active_streams") == before + 1
    assert value(await sync_to_async(scrape)(), "mcpgw_active_streams") == before


def test_metrics_need_a_token_or_an_allowed_address(settings):
    # Neither set: loopback only (the test client comes from 127.0.0.1).
    assert Client().get("/metrics").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW = ["10.0.0.0/8"]
    assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert Client().get("/metrics").status_code == 403


def _job_statuses_after(world) -> dict[str, float]:
    from console.models import ImportJob
    from console.services.imports import _pack, import_job_run

    queued = ImportJob.objects.create(mcp_server=world.open, source_kind="text", source_name="pasted text",
                                      source=_pack([("pasted.json", b'{"openapi": "3.1.0"}')]))
    failed = ImportJob.objects.create(mcp_server=world.open, source_kind="text", source_name="pasted text",
                                      source=_pack([("pasted.json", b"not a specification")]))
    import_job_run(job_id=failed.pk)  # the task's own call, in the foreground
    assert ImportJob.objects.get(pk=failed.pk).status == "failed"
    assert ImportJob.objects.get(pk=queued.pk).status == "queued"
    samples = scrape()
    return {status: value(samples, "mcpgw_import_jobs", status=status)
            for status in ("queued", "running", "succeeded", "failed")}


async def test_import_jobs_are_counted_by_status(world):
    assert await sync_to_async(_job_statuses_after)(world) == {"queued": 1, "running": 0, "succeeded": 0,
                                                                "failed": 1}


async def test_active_sessions_follow_initialize_delete_and_expiry(world, settings):
    before = value(await sync_to_async(scrape)(), "mcpgw_active_sessions")
    first = await session(world.client, OPEN)
    await session(world.client, OPEN)
    assert value(await sync_to_async(scrape)(), "mcpgw_active_sessions") == before + 2
    ended = await world.client.delete(OPEN, headers=first)
    assert ended.status == 204, ended.text
    assert value(await sync_to_async(scrape)(), "mcpgw_active_sessions") == before + 1
    # A session nobody ends is gone once it expires: the gauge is counted where the sessions are kept.
    settings.MCP_SESSION_TTL = 1
    await session(world.client, OPEN)
    assert value(await sync_to_async(scrape)(), "mcpgw_active_sessions") == before + 2
    await asyncio.sleep(1.2)
    settings.MCP_SESSION_TTL = 3600
    assert value(await sync_to_async(scrape)(), "mcpgw_active_sessions") == before + 1
