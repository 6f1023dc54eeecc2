"""Rate limits through the gateway's real ASGI app: exact at window edges, per consumer and tool, 429 with
Retry-After, the JSON-RPC error on every transport, and changes that apply without a restart."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from console import services
from gateway import protocol as p
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.governance.limits import RATE_LIMITED, LimitPolicy, gcra, index_of
from gateway.state import close_states
from gateway.state.memory import MemoryState

from ..conftest import require_redis
from .governance_setup import ACCEPT, GUARDED, OPEN, build_world, call, rpc, session
from .test_http_to_mcp import Backend

pytestmark = pytest.mark.django_db(transaction=True)


# ---------------------------------------------------------------- the algorithm

def test_window_edges_are_exact_no_fixed_window_doubling():
    """3 per second: three at 0.999 s use the bucket up; at 1.000 s (where a fixed window would start afresh) the
    fourth is still refused, and exactly one interval after the burst one more goes through."""
    interval, capacity = 1 / 3, 1.0
    tat = None
    for _ in range(3):
        decision, tat = gcra(tat, 0.999, interval, capacity)
        assert decision.allowed
    refused, unchanged = gcra(tat, 0.999, interval, capacity)
    assert (refused.allowed, unchanged) == (False, None)
    assert refused.retry_after == pytest.approx(1 / 3)
    assert refused.reset_after == pytest.approx(1.0)
    assert not gcra(tat, 1.0, interval, capacity)[0].allowed
    assert not gcra(tat, 0.999 + 1 / 3 - 1e-6, interval, capacity)[0].allowed
    decision, tat = gcra(tat, 0.999 + 1 / 3, interval, capacity)
    assert decision.allowed
    # In any one-second span no more than 3 + the refill of that span get through: after 2 s idle, a full burst.
    allowed = 0
    for _ in range(10):
        decision, new = gcra(tat, 3.5, interval, capacity)
        if decision.allowed:
            allowed += 1
            tat = new
    assert allowed == 3


def test_burst_smaller_than_the_window_spreads_requests():
    # 60 per minute with burst 2: two at once, then one per second.
    interval, capacity = 1.0, 2.0
    d1, tat = gcra(None, 100.0, interval, capacity)
    d2, tat = gcra(tat, 100.0, interval, capacity)
    d3, _ = gcra(tat, 100.0, interval, capacity)
    assert (d1.allowed, d2.allowed, d3.allowed) == (True, True, False)
    assert d3.retry_after == pytest.approx(1.0)
    assert gcra(tat, 101.0, interval, capacity)[0].allowed


def test_the_most_specific_policy_applies():
    server = LimitPolicy(id=1, requests=10, window="minute", burst=10, every_request=False)
    tool = LimitPolicy(id=2, requests=5, window="minute", burst=5, every_request=False, tool="echo")
    alice = LimitPolicy(id=3, requests=20, window="minute", burst=20, every_request=False, consumer_id=7)
    alice_echo = LimitPolicy(id=4, requests=1, window="minute", burst=1, every_request=False, consumer_id=7,
                             tool="echo")
    index = index_of([server, tool, alice, alice_echo])
    assert index.policy_for(7, "echo") is alice_echo
    assert index.policy_for(7, "other") is alice
    assert index.policy_for(8, "echo") is tool
    assert index.policy_for(8, "other") is server
    assert index.policy_for(None, "other") is server
    # Listings, ping and initialize are not counted by tools/call policies.
    assert index.policy_for(7, None) is None and not index.every_request


async def test_in_process_and_redis_buckets_agree():
    url = require_redis()
    from gateway.state.redis import RedisState

    redis_state = RedisState(url)
    try:
        for state in (MemoryState(), redis_state):
            key = f"test:{id(state)}:{__import__('uuid').uuid4()}"
            # 2 per day: nothing refills during the test.
            decisions = [await state.rate_take(key, 43200.0, 86400.0) for _ in range(3)]
            assert [d.allowed for d in decisions] == [True, True, False]
            assert decisions[2].retry_after == pytest.approx(43200.0, abs=5)
            assert decisions[2].reset_after == pytest.approx(86400.0, abs=5)
    finally:
        await redis_state.close()


# ---------------------------------------------------------------- through the gateway

@pytest.fixture
async def world():
    backend = Backend()
    await backend.start()
    backend.answer("/broken", status=502, json_body={"message": "down"})
    built = await sync_to_async(build_world)(backend.url, app)
    built.backend = backend
    yield built
    await close_http_sessions()
    await close_states()
    await backend.stop()


def limit(world, server=None, **kw):
    return services.rate_limit_create(actor=world.owner, mcp_server=server or world.guarded, **kw)


async def test_over_the_limit_is_a_429_with_retry_after_and_says_which_limit(world):
    await sync_to_async(limit)(world, requests=2, window="day")
    headers = await session(world.client, GUARDED, world.keys["alice"])
    for i in range(2):
        ok = await world.client.post(GUARDED, json=call(id=10 + i), headers=headers)
        assert ok.status == 200 and not ok.json()["result"]["isError"], ok.text
    refused = await world.client.post(GUARDED, json=call(id=12), headers=headers)
    assert refused.status == 429
    assert 43000 <= int(refused.headers["retry-after"]) <= 43200
    error = refused.json()["error"]
    assert refused.json()["id"] == 12
    assert error["code"] == RATE_LIMITED
    assert error["message"].startswith("Rate limit exceeded: 2 requests per day. Retry after ")
    assert error["data"]["limit"] == {"requests": 2, "window": "day", "burst": 2, "tool": None,
                                      "policy": error["data"]["limit"]["policy"]}
    assert error["data"]["resetAt"].endswith("Z")
    # initialize, ping and listings are never limited by a tools/call policy.
    assert (await world.client.post(GUARDED, json=rpc("ping"), headers=headers)).status == 200
    listed = await world.client.post(GUARDED, json=rpc("tools/list"), headers=headers)
    assert listed.status == 200 and len(listed.json()["result"]["tools"]) == 3
    await session(world.client, GUARDED, world.keys["alice"])
    # The limit is alice's: bob has his own bucket.
    bob = await session(world.client, GUARDED, world.keys["bob"])
    assert (await world.client.post(GUARDED, json=call(), headers=bob)).status == 200


async def test_a_per_tool_and_a_per_consumer_override(world):
    await sync_to_async(limit)(world, requests=100, window="day")
    await sync_to_async(limit)(world, requests=1, window="day", tool="other")
    await sync_to_async(limit)(world, requests=1, window="day", consumer=world.consumers["bob"])
    alice = await session(world.client, GUARDED, world.keys["alice"])
    bob = await session(world.client, GUARDED, world.keys["bob"])
    assert (await world.client.post(GUARDED, json=call("other"), headers=alice)).status == 200
    second = await world.client.post(GUARDED, json=call("other"), headers=alice)
    assert second.status == 429 and second.json()["error"]["data"]["limit"]["tool"] == "other"
    for _ in range(3):  # echo is under the server's generous policy
        assert (await world.client.post(GUARDED, json=call("echo"), headers=alice)).status == 200
    # bob's own policy (1 per day, every tool) wins over the server's and the tool's.
    assert (await world.client.post(GUARDED, json=call("echo"), headers=bob)).status == 200
    refused = await world.client.post(GUARDED, json=call("other"), headers=bob)
    assert refused.status == 429
    assert refused.json()["error"]["message"].startswith("Rate limit exceeded: 1 requests per day for this consumer")


async def test_limits_change_without_a_restart(world):
    policy = await sync_to_async(limit)(world, server=world.open, requests=1, window="day")
    headers = await session(world.client, OPEN)
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 200
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 429
    await sync_to_async(services.rate_limit_update)(actor=world.owner, policy=policy, requests=3)
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 200
    await sync_to_async(services.rate_limit_update)(actor=world.owner, policy=policy, enabled=False)
    for _ in range(5):
        assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 200
    await sync_to_async(services.rate_limit_update)(actor=world.owner, policy=policy, enabled=True, requests=2)
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 200
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 200
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 429
    await sync_to_async(services.rate_limit_delete)(actor=world.owner, policy=policy)
    assert (await world.client.post(OPEN, json=call(), headers=headers)).status == 200


async def test_a_policy_for_every_request_counts_listings_and_ping(world):
    await sync_to_async(limit)(world, server=world.open, requests=2, window="day", applies_to="all")
    headers = await session(world.client, OPEN)
    assert (await world.client.post(OPEN, json=rpc("tools/list"), headers=headers)).status == 200
    assert (await world.client.post(OPEN, json=rpc("ping"), headers=headers)).status == 200
    refused = await world.client.post(OPEN, json=rpc("tools/list", id=9), headers=headers)
    assert refused.status == 429 and refused.json()["error"]["code"] == RATE_LIMITED


async def test_the_error_on_the_sse_transport_and_the_stateless_revision(world):
    await sync_to_async(limit)(world, server=world.open, requests=1, window="day")
    # 2024-11-05: the POST is accepted and the error arrives on the stream as the request's response.
    async with world.client.stream("GET", OPEN + "/sse", headers={"accept": "text/event-stream"}) as stream:
        endpoint = (await stream.event())["data"]
        assert (await world.client.post(endpoint, json=rpc("initialize", {
            "protocolVersion": p.V2024_11_05, "capabilities": {},
            "clientInfo": {"name": "sse-client", "version": "1"}}))).status == 202
        await stream.event()
        for i in (1, 2):
            assert (await world.client.post(endpoint, json=call(id=20 + i))).status == 202
        answers = [json.loads((await stream.event())["data"]) for _ in range(2)]
    by_id = {a["id"]: a for a in answers}
    assert "result" in by_id[21]
    assert by_id[22]["error"]["code"] == RATE_LIMITED
    # 2026-07-28 (stateless): a plain HTTP answer, so a 429.
    message = call(id=30)
    message["params"]["_meta"] = {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}
    refused = await world.client.post(OPEN, json=message, headers={
        "accept": ACCEPT, "mcp-protocol-version": p.V2026_07_28, "mcp-method": "tools/call", "mcp-name": "echo"})
    assert refused.status == 429 and refused.headers["retry-after"]
    assert refused.json()["error"]["code"] == RATE_LIMITED and refused.json()["id"] == 30



async def test_redis_buckets_survive_a_script_cache_flush_and_fail_clearly_without_redis():
    url = require_redis()
    import uuid

    import redis

    from gateway.state import StateUnavailable
    from gateway.state.redis import RedisState
    from tests.live import free_port

    state = RedisState(url)
    try:
        key = f"test:{uuid.uuid4()}"
        assert (await state.rate_take(key, 43200.0, 86400.0)).allowed
        redis.Redis.from_url(url).script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
        assert (await state.rate_take(key, 43200.0, 86400.0)).allowed
        assert not (await state.rate_take(key, 43200.0, 86400.0)).allowed
    finally:
        await state.close()
    # Nothing listens on this loopback port: the error names the cause, for the 503 the edge answers.
    gone = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StateUnavailable, match="Redis is unreachable"):
            await gone.rate_take("test:gone", 1.0, 1.0)
    finally:
        await gone.close()
