"""State shared between gateway processes: sessions, stream fan-in, config version — in-process or Redis."""
from __future__ import annotations

import asyncio
import threading

from django.conf import settings

from .base import SharedState, Subscription
from .outage import DependencyUnavailable, StateUnavailable

_lock = threading.Lock()
_states: dict[int, SharedState] = {}


def get_state() -> SharedState:
    """The state for the running event loop (a Redis client cannot cross loops)."""
    try:
        loop_id = id(asyncio.get_running_loop())
    except RuntimeError:
        loop_id = 0
    state = _states.get(loop_id)
    if state is None:
        with _lock:
            state = _states.get(loop_id)
            if state is None:
                state = _make_state()
                _states[loop_id] = state
    return state


def _make_state() -> SharedState:
    if settings.REDIS_URL:
        from .redis import RedisState

        return RedisState(settings.REDIS_URL, max_connections=settings.REDIS_MAX_CONNECTIONS,
                          timeout=settings.REDIS_TIMEOUT_SECONDS)
    from .memory import MemoryState

    return MemoryState()


# Console writes made in this very process (the console and the gateway share each Daphne process): counted here
# so this process's gateway caches look at the shared version on their next request instead of at the next poll.
local_changes = 0


def bump_config_version() -> int | None:
    """Called by the console after a configuration change commits; gateways drop their caches."""
    global local_changes
    if settings.REDIS_URL:
        from .redis import bump_config_version_sync

        version = bump_config_version_sync(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)
        local_changes += 1
        if version is None:
            _announce_later()
        return version
    from .memory import bump_local_version

    return bump_local_version()


_pending: threading.Timer | None = None


def _announce_later() -> None:
    """A change committed while Redis was down: keep trying to announce it, so processes that did not notice the
    outage (and so keep their caches) still learn of it once Redis is back."""
    global _pending
    with _lock:
        if _pending is not None:
            return  # one announcement covers every change made meanwhile
        _pending = threading.Timer(max(1.0, settings.REDIS_TIMEOUT_SECONDS), _announce_now)
        _pending.daemon = True
        _pending.start()


def _announce_now() -> None:
    global _pending
    from .redis import bump_config_version_sync

    with _lock:
        _pending = None
    if bump_config_version_sync(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS) is None:
        _announce_later()


async def close_states() -> None:
    with _lock:
        states = list(_states.values())
        _states.clear()
    for state in states:
        await state.close()


__all__ = ["SharedState", "Subscription", "get_state", "bump_config_version", "close_states", "DependencyUnavailable",
           "StateUnavailable"]


def live_sessions() -> int | None:
    """MCP sessions open now, counted where they are kept: in Redis for every process, or in this process's
    tables; None when that cannot be told (Redis away)."""
    if settings.REDIS_URL:
        from .redis import live_sessions_sync

        return live_sessions_sync(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)
    from .memory import MemoryState

    return sum(state.live_sessions() for state in list(_states.values()) if isinstance(state, MemoryState))
