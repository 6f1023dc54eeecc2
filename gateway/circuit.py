"""Circuit breaking per backend service: stop calling a failing backend for a while, then try one call."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from .readmodel import CircuitConfig
from .state.outage import DependencyUnavailable

log = logging.getLogger("gateway.circuit")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_KEY = "mcpgw:circuit:"


@dataclass
class Breaker:
    """One backend service's breaker in this process."""

    failures: int = 0  # in a row
    opened_at: float = 0.0  # monotonic
    opened_wall: float = 0.0  # epoch seconds, for the console
    state: str = CLOSED
    trial: bool = False  # half open: one call is out trying

    def as_dict(self, circuit: CircuitConfig) -> dict:
        return {"state": self.state, "failures": self.failures, "opened_at": self.opened_wall or None,
                "retry_at": (self.opened_wall + circuit.open_seconds) if self.state != CLOSED else None}


_breakers: dict[int, Breaker] = {}
# What this process last reported per service, for the console of this process (embedded profile).
_reported: dict[int, dict] = {}
_lock = threading.Lock()
_tasks: set[asyncio.Task] = set()


def admit(circuit: CircuitConfig | None) -> str | None:
    """None when a call to the service may go ahead; else the message the caller answers with."""
    if circuit is None:
        return None
    breaker = _breakers.get(circuit.service_id)
    if breaker is None or breaker.state == CLOSED:
        return None
    now = time.monotonic()
    if breaker.state == OPEN and now - breaker.opened_at >= circuit.open_seconds:
        breaker.state, breaker.trial = HALF_OPEN, False
    if breaker.state == HALF_OPEN and not breaker.trial:
        breaker.trial = True  # this call is the one that tries the backend again
        return None
    wait = max(0.0, circuit.open_seconds - (now - breaker.opened_at))
    return (f"Backend service {circuit.service_name} is not being called: {breaker.failures} calls in a row failed "
            f"(circuit open); the next call goes through in {wait:.0f} s")


def record(circuit: CircuitConfig | None, *, ok: bool) -> None:
    """The outcome of a call admitted by `admit`: a success closes the circuit, enough failures open it."""
    if circuit is None:
        return
    breaker = _breakers.setdefault(circuit.service_id, Breaker())
    if ok:
        if breaker.state != CLOSED:
            log.warning("Circuit of backend service %s closed: a call succeeded", circuit.service_name)
            breaker.state, breaker.trial, breaker.opened_wall = CLOSED, False, 0.0
            breaker.failures = 0
            _report(circuit, breaker)
        breaker.failures = 0
        return
    breaker.failures += 1
    if breaker.state == HALF_OPEN or (breaker.state == CLOSED and breaker.failures >= circuit.failure_threshold):
        breaker.state, breaker.trial = OPEN, False
        breaker.opened_at, breaker.opened_wall = time.monotonic(), time.time()
        log.warning("Circuit of backend service %s opened after %d failed calls in a row; calls fail at once for "
                    "%d s", circuit.service_name, breaker.failures, circuit.open_seconds)
        _report(circuit, breaker)


def abandon(circuit: CircuitConfig | None) -> None:
    """A call admitted by `admit` ended without an outcome (cancelled): a half-open circuit may try again."""
    if circuit is None:
        return
    breaker = _breakers.get(circuit.service_id)
    if breaker is not None and breaker.state == HALF_OPEN:
        breaker.trial = False


def _report(circuit: CircuitConfig, breaker: Breaker) -> None:
    """Make the state visible to the console: in this process, and in Redis for the console of any process."""
    data = breaker.as_dict(circuit)
    with _lock:
        _reported[circuit.service_id] = data
    if settings.REDIS_URL:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # reported outside the gateway's loop: this process's console still shows it
            return
        task = loop.create_task(_publish(circuit, data))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


async def _publish(circuit: CircuitConfig, data: dict) -> None:
    from .state import get_state

    # The state matters only while the circuit may still be open; the key outlives that by a margin. Redis being
    # down costs the console this display only (the outage itself is logged once by the state).
    with contextlib.suppress(DependencyUnavailable):
        await get_state().note(_KEY + str(circuit.service_id), json.dumps(data).encode(),
                               ttl=circuit.open_seconds * 4 + 60)


def circuit_states(service_ids: list[int]) -> dict[int, dict]:
    """For the console: the last reported state of each service's circuit (absent: closed, or never tripped)."""
    if not service_ids:
        return {}
    with _lock:
        states = {pk: dict(_reported[pk]) for pk in service_ids if pk in _reported}
    if settings.REDIS_URL:
        from .state.redis import REDIS_FAILURES, _sync_client

        try:
            raw = _sync_client(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS).mget(
                [_KEY + str(pk) for pk in service_ids])
        except REDIS_FAILURES:
            return states  # Redis down: what this process knows
        # The latest report of any process wins over this process's own.
        reported = {pk: json.loads(value) for pk, value in zip(service_ids, raw) if value}
        for pk, state in reported.items():
            if pk not in states or (state.get("opened_at") or 0) >= (states[pk].get("opened_at") or 0):
                states[pk] = state
    return states


def reset() -> None:
    """Forget every breaker and every reported state (tests)."""
    _breakers.clear()
    with _lock:
        _reported.clear()
    if settings.REDIS_URL:
        from .state.redis import REDIS_FAILURES, _sync_client

        client = _sync_client(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)
        with contextlib.suppress(*REDIS_FAILURES):
            for key in client.scan_iter(match=_KEY + "*"):
                client.delete(key)
