"""Shared state behind one interface: the in-process and Redis implementations behave alike."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.state.memory import MemoryState
from gateway.state.redis import RedisState

from ..conftest import require_redis


@pytest.fixture(params=["memory", "redis"])
async def make_state(request):
    made = []

    def factory():
        if request.param == "memory":
            state = made[0] if made else MemoryState()  # one process: one state
        else:
            state = RedisState(require_redis())  # each instance stands for another process
        made.append(state)
        return state

    yield factory
    for state in made:
        await state.close()


async def test_session_put_get_delete(make_state):
    state = make_state()
    await state.session_put("sid-1", {"server": "default/petstore", "version": "2025-11-25"}, ttl=60)
    assert await state.session_get("sid-1", ttl=60) == {"server": "default/petstore", "version": "2025-11-25"}
    assert await state.session_delete("sid-1") is True
    assert await state.session_get("sid-1", ttl=60) is None
    assert await state.session_delete("sid-1") is False


async def test_session_expires(make_state):
    state = make_state()
    await state.session_put("sid-exp", {"a": 1}, ttl=1)
    await asyncio.sleep(1.3)
    assert await state.session_get("sid-exp", ttl=1) is None


async def test_publish_reaches_subscriber_of_other_process(make_state):
    holder, poster = make_state(), make_state()
    sub = await holder.subscribe("mcpgw:stream:test-channel")
    await asyncio.sleep(0.1)  # let the subscription reach Redis
    assert await poster.publish("mcpgw:stream:test-channel", b'{"id":1}') == 1
    assert await sub.get(timeout=2) == b'{"id":1}'
    assert await sub.get(timeout=0.1) is None
    await sub.close()
    await asyncio.sleep(0.1)
    assert await poster.publish("mcpgw:stream:test-channel", b"lost") == 0


async def test_many_subscriptions_share_one_connection():
    name = f"mcpgw-test-{uuid.uuid4().hex[:8]}"
    state = RedisState(require_redis(), client_name=name)
    try:
        subs = [await state.subscribe(f"mcpgw:stream:many-{i}") for i in range(200)]
        await asyncio.sleep(0.1)
        ours = [c for c in await state._client.client_list() if c.get("name") == name]
        assert 1 <= len(ours) <= 3  # one pub/sub connection, not one per stream
        assert await state.publish("mcpgw:stream:many-7", b"x") == 1
        assert await subs[7].get(timeout=2) == b"x"
        for sub in subs:
            await sub.close()
    finally:
        await state.close()


async def test_a_burst_beyond_the_pool_waits_instead_of_failing():
    state = RedisState(require_redis(), max_connections=8)
    try:
        await state.session_put("burst", {"n": 1}, ttl=60)
        results = await asyncio.gather(*(state.session_get("burst", ttl=60) for _ in range(300)))
        assert results == [{"n": 1}] * 300
    finally:
        await state.close()
