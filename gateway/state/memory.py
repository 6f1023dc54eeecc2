"""In-process shared state for the embedded profile (one Daphne process)."""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

from .base import SharedState, Subscription

# The console writes from worker threads; an int bump is atomic enough under the GIL with a counter.
_version_counter = itertools.count(1)
_version = 0


def bump_local_version() -> int:
    global _version
    _version = next(_version_counter)
    return _version


class _LocalSubscription(Subscription):
    def __init__(self, state: "MemoryState", channel: str):
        self._state = state
        self._channel = channel
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)

    async def get(self, timeout: float | None = None) -> bytes | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def close(self) -> None:
        self._state._subscribers[self._channel].discard(self)
        if not self._state._subscribers[self._channel]:
            self._state._subscribers.pop(self._channel, None)


class MemoryState(SharedState):
    def __init__(self) -> None:
        # sid -> (expires_at, serialized data); serialized so callers never share mutable dicts
        self._sessions: dict[str, tuple[float, str]] = {}
        self._subscribers: dict[str, set[_LocalSubscription]] = defaultdict(set)
        self._last_sweep = time.monotonic()

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for sid in [sid for sid, (exp, _) in self._sessions.items() if exp < now]:
            del self._sessions[sid]

    async def session_put(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        now = time.monotonic()
        self._sweep(now)
        self._sessions[sid] = (now + ttl, json.dumps(data))

    async def session_get(self, sid: str, ttl: int) -> dict[str, Any] | None:
        now = time.monotonic()
        entry = self._sessions.get(sid)
        if entry is None:
            return None
        if entry[0] < now:
            del self._sessions[sid]
            return None
        self._sessions[sid] = (now + ttl, entry[1])
        return json.loads(entry[1])

    async def session_delete(self, sid: str) -> bool:
        return self._sessions.pop(sid, None) is not None

    async def publish(self, channel: str, message: bytes) -> int:
        subs = self._subscribers.get(channel)
        if not subs:
            return 0
        delivered = 0
        for sub in list(subs):
            try:
                sub.queue.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                pass  # a stream that stopped reading loses messages rather than growing without bound
        return delivered

    async def subscribe(self, channel: str) -> Subscription:
        sub = _LocalSubscription(self, channel)
        self._subscribers[channel].add(sub)
        return sub

    async def config_version(self) -> int:
        return _version
