"""The Redis state through an outage, in-process: typed errors, one log line each way, changes announced late."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis

from gateway import state as shared_state
from gateway.state.outage import StateUnavailable, redis_outage
from gateway.state.redis import CONFIG_VERSION_KEY, RedisState

from ..outages import OwnRedis

pytestmark = pytest.mark.redis


@pytest.fixture
def own_redis():
    redis_outage.succeeded()  # an outage an earlier test left noticed is over
    server = OwnRedis()
    yield server
    server.stop()


async def test_commands_fail_typed_and_the_outage_is_logged_once_each_way(own_redis, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.outage")
    own_redis.start()
    state = RedisState(own_redis.url, timeout=0.5)
    try:
        await state.session_put("sid", {"a": 1}, ttl=60)
        own_redis.stop()
        for _ in range(5):
            with pytest.raises(StateUnavailable) as raised:
                await state.session_get("sid", ttl=60)
            assert raised.value.message == "Shared session store unavailable; retry in 5 s."
        with pytest.raises(StateUnavailable):
            await state.publish("mcpgw:stream:nobody", b"x")
        own_redis.start()
        assert await state.session_get("sid", ttl=60) is None  # this Redis kept nothing
    finally:
        await state.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.outage"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Redis (shared session store) unreachable")
    assert lines[1].startswith("Redis (shared session store) reachable again") and "(6 failed attempts meanwhile)" in lines[1]
    assert not redis_outage.down


async def test_a_stream_held_during_an_outage_ends_with_the_typed_error(own_redis):
    own_redis.start()
    state = RedisState(own_redis.url, timeout=0.5)
    try:
        subscription = await state.subscribe("mcpgw:stream:held")
        own_redis.stop()
        with pytest.raises(StateUnavailable):
            await subscription.get(timeout=10)
        await subscription.close()
        own_redis.start()
        again = await state.subscribe("mcpgw:stream:held")  # a new stream works once Redis is back
        await asyncio.sleep(0.1)
        assert await RedisState(own_redis.url).publish("mcpgw:stream:held", b"hello") == 1
        assert await again.get(timeout=5) == b"hello"
        await again.close()
    finally:
        await state.close()


def test_a_change_made_while_redis_is_down_is_announced_once_it_is_back(own_redis, settings):
    settings.REDIS_URL = own_redis.url
    settings.REDIS_TIMEOUT_SECONDS = 0.3
    assert shared_state.bump_config_version() is None  # nobody listens on that port yet
    own_redis.start()
    client = redis.Redis.from_url(own_redis.url)
    deadline = time.monotonic() + 10
    while client.get(CONFIG_VERSION_KEY) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(client.get(CONFIG_VERSION_KEY)) == 1
