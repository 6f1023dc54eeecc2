"""The gateway's cache of OAuth token introspection (gateway/oauth_tokens.py), in-process and on Redis: what an entry
allows, expiry, the unknown marker, and the database lookup when the cache has lost an entry."""
from __future__ import annotations

import time

import pytest

from gateway import oauth_tokens as ot
from gateway.state import close_states

from ..conftest import require_redis

pytestmark = pytest.mark.django_db(transaction=True)


def grant(**kw) -> ot.TokenGrant:
    base = dict(consumer_id=7, server_id=3, resource="http://testserver/mcp-servers/x", scopes=frozenset({"mcp:a/x"}),
                expires_at=time.time() + 60)
    return ot.TokenGrant(**{**base, **kw})


@pytest.fixture(params=["memory", "redis"])
async def profile(request, settings):
    if request.param == "redis":
        settings.REDIS_URL = require_redis()
    else:
        settings.REDIS_URL = ""
    ot._local.clear()  # this process's table holds either profile's entries: each test starts without any
    yield request.param
    await close_states()


async def test_an_entry_round_trips_and_expires(profile):
    issued = grant()
    ot.token_cache_put(digest=ot.token_digest("tok-a"), grant=issued)
    assert await ot.token_grant("tok-a") == issued
    ot.token_cache_put(digest=ot.token_digest("tok-b"), grant=grant(expires_at=time.time() - 1))
    assert await ot.token_grant("tok-b") is None


async def test_a_dropped_entry_is_unknown_and_stays_so(profile):
    ot.token_cache_put(digest=ot.token_digest("tok-c"), grant=grant())
    ot.token_cache_drop(digests=[ot.token_digest("tok-c")])
    assert await ot.token_grant("tok-c") is None


def cached(profile: str, digest: str) -> bytes | None:
    if profile == "memory":
        return ot._local_get(ot.KEY_PREFIX + digest)
    return ot._redis().get(ot.KEY_PREFIX + digest)


async def test_an_unknown_token_is_looked_up_once_then_remembered_as_unknown(profile):
    token = f"never-issued-{profile}-{time.time()}"
    digest = ot.token_digest(token)
    assert cached(profile, digest) is None
    assert await ot.token_grant(token) is None  # the database has no such token
    assert cached(profile, digest) == ot.UNKNOWN


def test_a_damaged_entry_reads_as_nothing():
    assert ot.TokenGrant.loads(b"{not json") is None
    assert ot.TokenGrant.loads(b'{"c": 1}') is None
    issued = grant()
    assert ot.TokenGrant.loads(issued.dumps()) == issued


async def test_with_redis_a_process_keeps_what_it_read_for_the_poll_interval_only(settings):
    """Another process's revocation (the Redis entry turned unknown behind this one's back) is seen once the poll
    interval has passed; a revocation made in this process is seen at once."""
    settings.REDIS_URL = require_redis()
    settings.GATEWAY_CONFIG_POLL_SECONDS = 0.2
    ot._local.clear()
    try:
        issued = grant()
        for name in ("tok-elsewhere", "tok-here"):
            ot.token_cache_put(digest=ot.token_digest(name), grant=issued)
            assert await ot.token_grant(name) == issued
        ot._redis().set(ot.KEY_PREFIX + ot.token_digest("tok-elsewhere"), ot.UNKNOWN, ex=30)
        assert await ot.token_grant("tok-elsewhere") == issued  # what this process read a moment ago
        time.sleep(0.25)
        assert await ot.token_grant("tok-elsewhere") is None
        ot.token_cache_drop(digests=[ot.token_digest("tok-here")])
        assert await ot.token_grant("tok-here") is None
    finally:
        await close_states()
