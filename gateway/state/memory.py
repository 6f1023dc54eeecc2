"""In-process shared state for the embedded profile (one Daphne process)."""
from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from typing import Any

from .base import QueueSubscription, SharedState, Subscription

# The console writes from worker threads; an int bump is atomic enough under the GIL with a counter.
_version_counter = itertools.count(1)
_version = 0


def bump_local_version() -> int:
    global _version
    _version = next(_version_counter)
    return _version


class _LocalSubscription(QueueSubscription):
    def __init__(self, state: "MemoryState", channel: str):
        super().__init__(channel)
        self._state = state

    async def close(self) -> None:
        subs = self._state._subscribers.get(self.channel)
        if subs is not None:
            subs.discard(self)
            if not subs:
                del self._state._subscribers[self.channel]


class MemoryState(SharedState):
    def __init__(self) -> None:
        # sid -> (expires_at, serialized data); serialized so callers never share mutable dicts
        self._sessions: dict[str, tuple[float, str]] = {}
        self._subscribers: dict[str, set[_LocalSubscription]] = defaultdict(set)
        self._last_sweep = time.monotonic()
        self._buckets: dict[str, float] = {}  # rate-limit bucket -> theoretical arrival time (monotonic)

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

    def live_sessions(self) -> int:
        """Sessions not yet expired; read from any thread (the /metrics view), so over a copy of the table."""
        now = time.monotonic()
        for _ in range(3):
            try:
                return sum(1 for expires, _ in list(self._sessions.values()) if expires >= now)
            except RuntimeError:  # the table changed size while being copied: look again
                continue
        return len(self._sessions)

    async def session_exists(self, sid: str) -> bool:
        entry = self._sessions.get(sid)
        return entry is not None and entry[0] >= time.monotonic()

    async def publish(self, channel: str, message: bytes) -> int:
        subs = self._subscribers.get(channel)
        return QueueSubscription.deliver(subs, message) if subs else 0

    async def subscribe(self, channel: str) -> Subscription:
        sub = _LocalSubscription(self, channel)
        self._subscribers[channel].add(sub)
        return sub

    async def config_version(self) -> int:
        return _version

    async def rate_take(self, key: str, interval: float, capacity: float):
        from ..governance.limits import gcra

        now = time.monotonic()
        entry = self._buckets.get(key)
        decision, tat = gcra(entry, now, interval, capacity)
        if tat is not None:
            if len(self._buckets) >= 100_000:  # bounded: drop buckets that are full again
                self._buckets = {k: v for k, v in self._buckets.items() if v > now}
            self._buckets[key] = tat
        return decision
