"""The one small interface for everything gateway processes share."""
from __future__ import annotations

import abc
from typing import Any


class Subscription(abc.ABC):
    """Messages published to one channel, received by the stream that holds it."""

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message, or None when `timeout` passes first."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class SharedState(abc.ABC):
    # Sessions: a JSON-able dict per id, expiring after `ttl` seconds without use.
    @abc.abstractmethod
    async def session_put(self, sid: str, data: dict[str, Any], ttl: int) -> None: ...

    @abc.abstractmethod
    async def session_get(self, sid: str, ttl: int) -> dict[str, Any] | None:
        """The session, its expiry pushed back by `ttl`; None when unknown or ended."""

    @abc.abstractmethod
    async def session_delete(self, sid: str) -> bool: ...

    # Fan-in: a POST handled by any process reaches the stream held by another.
    @abc.abstractmethod
    async def publish(self, channel: str, message: bytes) -> int:
        """Deliver to the channel's subscribers; returns how many received it (0: nobody listens)."""

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> Subscription: ...

    # Configuration version bumped by console writes.
    @abc.abstractmethod
    async def config_version(self) -> int: ...

    async def close(self) -> None:
        return None
