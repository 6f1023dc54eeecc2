"""The one small interface for everything gateway processes share."""
from __future__ import annotations

import abc
import asyncio
import contextlib
from typing import Any

# A stream that stops reading loses messages beyond this rather than growing without bound.
QUEUE_LIMIT = 1000


class Subscription(abc.ABC):
    """Messages published to one channel, received by the stream that holds it."""

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message, or None when `timeout` passes first."""

    @abc.abstractmethod
    async def close(self) -> None: ...


_FAILED = object()


class QueueSubscription(Subscription):
    """A subscription fed through a local queue (by the in-process state, or by the Redis pub/sub reader)."""

    def __init__(self, channel: str):
        self.channel = channel
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LIMIT + 1)
        self._failure: Exception | None = None

    async def get(self, timeout: float | None = None) -> bytes | None:
        if self._failure is not None:
            raise self._failure
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if item is _FAILED:
            raise self._failure
        return item

    def fail(self, exc: Exception) -> None:
        """End the subscription with `exc`: its stream's next (or pending) get raises it, so the stream ends."""
        self._failure = exc
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_FAILED)  # the one place beyond QUEUE_LIMIT is kept for this

    @staticmethod
    def deliver(subs, data: bytes) -> int:
        delivered = 0
        for sub in list(subs):
            if sub.queue.qsize() >= QUEUE_LIMIT:
                continue
            try:
                sub.queue.put_nowait(data)
                delivered += 1
            except asyncio.QueueFull:
                pass
        return delivered


class SharedState(abc.ABC):
    # True where several processes count into the same rate-limit buckets (busy ones are then leased).
    shared = False

    # Sessions: a JSON-able dict per id, expiring after `ttl` seconds without use.
    @abc.abstractmethod
    async def session_put(self, sid: str, data: dict[str, Any], ttl: int) -> None: ...

    @abc.abstractmethod
    async def session_get(self, sid: str, ttl: int) -> dict[str, Any] | None:
        """The session, its expiry pushed back by `ttl`; None when unknown or ended."""

    @abc.abstractmethod
    async def session_delete(self, sid: str) -> bool: ...

    async def session_exists(self, sid: str) -> bool:
        """Whether the session is still there, without pushing back its expiry."""
        raise NotImplementedError

    # Fan-in: a POST handled by any process reaches the stream held by another.
    @abc.abstractmethod
    async def publish(self, channel: str, message: bytes) -> int:
        """Deliver to the channel's subscribers; returns how many received it (0: nobody listens)."""

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> Subscription: ...

    # Configuration version bumped by console writes.
    @abc.abstractmethod
    async def config_version(self) -> int: ...

    # Small facts other processes' consoles display (a circuit's state); the in-process state has no one to tell.
    async def note(self, key: str, value: bytes, ttl: int) -> None:
        return None

    async def close(self) -> None:
        return None

    # Small values every process reads (OAuth token introspection, gateway/oauth_tokens.py); Redis only: the
    # embedded profile keeps them in a process-wide table instead.
    async def cache_get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def cache_set(self, key: str, value: bytes, ttl: int) -> None:
        raise NotImplementedError

    # Rate limits (gateway.governance.limits): one atomic GCRA step on the bucket `key`.
    async def rate_take(self, key: str, interval: float, capacity: float):
        """Spend one request of the bucket: a gateway.governance.limits.Decision."""
        raise NotImplementedError
