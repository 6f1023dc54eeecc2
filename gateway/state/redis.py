"""Redis-backed shared state: any gateway process can serve any request of a session."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .base import QueueSubscription, SharedState, Subscription
from .outage import StateUnavailable, redis_outage
from .redis_pipe import Pipe, ReplyError, plain_tcp

log = logging.getLogger(__name__)

# What a Redis failure looks like from redis-py and the sockets under it.
REDIS_FAILURES = (redis.RedisError, ConnectionError, OSError, asyncio.TimeoutError)


def _unavailable(exc: BaseException) -> StateUnavailable:
    redis_outage.failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return StateUnavailable(str(exc) or type(exc).__name__)


async def _guarded(awaitable):
    """Run one Redis command: a failure is the typed StateUnavailable (and the outage's one log line)."""
    try:
        result = await awaitable
    except REDIS_FAILURES as exc:
        raise _unavailable(exc) from None
    redis_outage.succeeded()
    return result


PREFIX = "mcpgw:"
CONFIG_VERSION_KEY = PREFIX + "config_version"

# One GCRA step, atomic across processes; Redis's own clock so gateway hosts need not agree on the time.
# Returns {allowed, retry_after, reset_after} with the floats as strings (Lua numbers become integers).
_RATE_TAKE = """
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > capacity + 1e-9 then
  return {0, tostring(new_tat - capacity - now), tostring(tat - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0', tostring(new_tat - now)}
"""
_RATE_TAKE_SHA = hashlib.sha1(_RATE_TAKE.encode()).hexdigest()


@lru_cache(maxsize=4)
def _sync_client(url: str, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


# /metrics counts the session keys in Redis; beyond this many it reports this many (a scrape stays bounded).
SESSION_COUNT_LIMIT = 200_000


def live_sessions_sync(url: str, timeout: float = 2.0) -> int | None:
    """Sessions Redis holds now (expired ones are gone by their TTL); None when Redis is unreachable."""
    try:
        count = 0
        for _ in _sync_client(url, timeout).scan_iter(match=PREFIX + "session:*", count=1000):
            count += 1
            if count >= SESSION_COUNT_LIMIT:
                break
        return count
    except REDIS_FAILURES:
        return None


def bump_config_version_sync(url: str, timeout: float = 2.0) -> int | None:
    """The new config version; None when Redis is unreachable (the change is committed all the same; the caller
    announces it again once Redis is back)."""
    try:
        version = int(_sync_client(url, timeout).incr(CONFIG_VERSION_KEY))
    except REDIS_FAILURES as exc:
        redis_outage.failed(f"{type(exc).__name__}: {exc}")
        return None
    redis_outage.succeeded()
    return version


class _HubSubscription(QueueSubscription):
    def __init__(self, hub: "_PubSubHub", channel: str):
        super().__init__(channel)
        self._hub = hub

    async def close(self) -> None:
        await self._hub.remove(self)


class _PubSubHub:
    """One Redis pub/sub connection per process, fanned out to local queues.

    A connection per open stream would cost a Redis connection per idle SSE client.
    """

    def __init__(self, client: aioredis.Redis):
        self._client = client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        # Seconds between reads of the pub/sub connection; an outage is noticed within about this long.
        self.read_interval = 1.0
        self._subs: dict[str, set[_HubSubscription]] = {}
        self._reader: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    def local_subscribers(self, channel: str) -> set[_HubSubscription]:
        return self._subs.get(channel, set())

    async def add(self, channel: str) -> _HubSubscription:
        sub = _HubSubscription(self, channel)
        async with self._lock:
            first = channel not in self._subs
            self._subs.setdefault(channel, set()).add(sub)
            if first:
                try:
                    await self._pubsub.subscribe(channel)
                except REDIS_FAILURES as exc:
                    self._subs[channel].discard(sub)
                    if not self._subs[channel]:
                        del self._subs[channel]
                    await self._reset()
                    raise _unavailable(exc) from None
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._read())
        return sub

    async def remove(self, sub: _HubSubscription) -> None:
        async with self._lock:
            subs = self._subs.get(sub.channel)
            if not subs or sub not in subs:
                return
            subs.discard(sub)
            if not subs:
                del self._subs[sub.channel]
                with contextlib.suppress(redis.RedisError, ConnectionError):
                    await self._pubsub.unsubscribe(sub.channel)

    deliver = staticmethod(QueueSubscription.deliver)

    async def _reset(self) -> None:
        """A fresh pub/sub connection for the next stream: the old one's subscriptions died with it."""
        old, self._pubsub = self._pubsub, self._client.pubsub(ignore_subscribe_messages=True)
        with contextlib.suppress(*REDIS_FAILURES):
            await old.aclose()

    async def _read(self) -> None:
        while self._subs:
            try:
                # Reading with no subscriber ends within the interval; a dead connection raises here.
                message = await asyncio.wait_for(self._pubsub.get_message(timeout=self.read_interval),
                                                 self.read_interval + 2)
            except REDIS_FAILURES as exc:
                # Messages published meanwhile are lost: end every stream held here so its client reconnects
                # (and, while Redis is down, gets a 503 it can retry) instead of waiting for answers that never come.
                failure = _unavailable(exc)
                async with self._lock:
                    subs = [sub for channel_subs in self._subs.values() for sub in channel_subs]
                    self._subs.clear()
                    await self._reset()
                for sub in subs:
                    sub.fail(failure)
                return
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            self.deliver(self._subs.get(channel, set()), message["data"])

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()


class RedisState(SharedState):
    shared = True

    def __init__(self, url: str, *, client_name: str = "mcpgw-gateway", max_connections: int = 128,
                 timeout: float = 2.0):
        # A blocking pool: past `max_connections` in-flight commands wait for a free connection instead of
        # failing with "Too many connections" (the plain pool's behaviour) under a burst of clients.
        # Every wait is bounded by `timeout` (connect, each command, a free connection), and a failed command is
        # retried once at once (a pooled connection Redis closed on restart) and never with a backoff: a client
        # gets its 503 within about twice `timeout`, not after a minute of retries.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, socket_connect_timeout=timeout,
            socket_timeout=timeout, health_check_interval=30, client_name=client_name,
            retry=Retry(NoBackoff(), 1), retry_on_timeout=False,
        )
        self._client = aioredis.Redis(connection_pool=pool)
        self._hub = _PubSubHub(self._client)
        # The rate-limit script, once per tools/call, goes through a pipelined connection of its own (plain TCP).
        tcp = plain_tcp(url)
        self._pipe = Pipe(tcp) if tcp is not None else None

    async def session_put(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        await _guarded(self._client.set(PREFIX + "session:" + sid, json.dumps(data), ex=ttl))

    async def session_get(self, sid: str, ttl: int) -> dict[str, Any] | None:
        raw = await _guarded(self._client.getex(PREFIX + "session:" + sid, ex=ttl))
        return json.loads(raw) if raw else None

    async def session_delete(self, sid: str) -> bool:
        return bool(await _guarded(self._client.delete(PREFIX + "session:" + sid)))

    async def session_exists(self, sid: str) -> bool:
        return bool(await self._client.exists(PREFIX + "session:" + sid))

    async def publish(self, channel: str, message: bytes) -> int:
        # A stream held by this very process gets the message without a Redis round trip.
        local = self._hub.local_subscribers(channel)
        if local:
            return self._hub.deliver(local, message)
        return int(await _guarded(self._client.publish(channel, message)))

    async def subscribe(self, channel: str) -> Subscription:
        return await self._hub.add(channel)

    async def config_version(self) -> int:
        raw = await _guarded(self._client.get(CONFIG_VERSION_KEY))
        return int(raw) if raw else 0

    async def rate_take(self, key: str, interval: float, capacity: float):
        from ..governance.limits import Decision

        args = ("1", PREFIX + key, repr(interval), repr(capacity))
        if self._pipe is not None:
            try:
                answer = await self._pipe.call("EVALSHA", _RATE_TAKE_SHA, *args)
                if isinstance(answer, ReplyError) and str(answer).startswith("NOSCRIPT"):
                    answer = await self._pipe.call("EVAL", _RATE_TAKE, *args)  # a restarted Redis caches it again
            except StateUnavailable as exc:
                redis_outage.failed(exc.cause)
                raise
            if isinstance(answer, ReplyError):  # LOADING after a restart, BUSY, OOM: not serving yet
                redis_outage.failed(f"Redis answered {answer}")
                raise StateUnavailable(f"Redis answered {answer}")
            redis_outage.succeeded()
            allowed, retry, reset = answer
            return Decision(bool(allowed), float(retry), float(reset))
        try:
            allowed, retry, reset = await self._client.evalsha(_RATE_TAKE_SHA, *args)
        except redis.exceptions.NoScriptError:
            allowed, retry, reset = await _guarded(self._client.eval(_RATE_TAKE, *args))
        except REDIS_FAILURES as exc:
            raise _unavailable(exc) from None
        else:
            redis_outage.succeeded()
        return Decision(bool(allowed), float(retry), float(reset))

    async def note(self, key: str, value: bytes, ttl: int) -> None:
        await _guarded(self._client.set(key, value, ex=ttl))

    async def cache_get(self, key: str) -> bytes | None:
        return await _guarded(self._client.get(key))

    async def cache_set(self, key: str, value: bytes, ttl: int) -> None:
        await _guarded(self._client.set(key, value, ex=ttl))

    async def ping(self) -> None:
        await _guarded(self._client.ping())

    async def close(self) -> None:
        if self._pipe is not None:
            await self._pipe.close()
        await self._hub.close()
        await self._client.aclose()
