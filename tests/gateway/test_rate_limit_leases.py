"""Busy rate-limit buckets in Redis are taken from in leases; small quotas and quiet buckets stay exact."""
from __future__ import annotations

import uuid

import pytest
import redis

from gateway.governance import limits
from gateway.governance.limits import LimitPolicy, lease_size, take
from gateway.state.redis import PREFIX, RedisState

from ..conftest import require_redis

pytestmark = pytest.mark.redis


def policy(requests: int, window: str = "second", burst: int | None = None) -> LimitPolicy:
    return LimitPolicy(id=1, requests=requests, window=window, burst=burst or requests, every_request=False,
                       stamp=uuid.uuid4().hex)


def test_lease_sizes_stay_within_a_share_of_the_burst_and_half_a_second_of_the_rate():
    assert lease_size(policy(1_000_000)) == limits.LEASE_MAX
    assert lease_size(policy(1000)) == 10  # 1 % of the burst
    assert lease_size(policy(10, burst=10_000)) == 5  # half a second of 10 per second
    assert lease_size(policy(100)) == 1
    assert lease_size(policy(10_000, "day")) == 1  # a day's quota is never leased


async def test_a_busy_bucket_takes_a_lease_and_spends_it_without_redis():
    url = require_redis()
    state = RedisState(url)
    raw = redis.Redis.from_url(url)
    busy = policy(10_000)  # leases of 64
    key = PREFIX + limits.bucket_key(7, busy, None)
    try:
        assert (await take(state, 7, busy, None)).allowed  # quiet: one request
        assert (await take(state, 7, busy, None)).allowed  # busy now: a lease of 64, one spent
        leased = raw.get(key)
        for _ in range(limits.LEASE_MAX - 1):
            assert (await take(state, 7, busy, None)).allowed
        assert raw.get(key) == leased  # the lease was spent here, Redis untouched
        assert (await take(state, 7, busy, None)).allowed  # spent: the next lease
        assert raw.get(key) != leased
    finally:
        raw.delete(key)
        await state.close()


async def test_a_small_quota_is_counted_exactly_across_processes():
    url = require_redis()
    a, b = RedisState(url), RedisState(url)  # two processes' states
    small = policy(5, "minute")
    try:
        answers = [(await take(state, 8, small, None)).allowed for state in (a, b) * 4]
        assert answers == [True] * 5 + [False] * 3
    finally:
        redis.Redis.from_url(url).delete(PREFIX + limits.bucket_key(8, small, None))
        await a.close()
        await b.close()
