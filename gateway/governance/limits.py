"""Rate limits: GCRA (a token bucket kept as one timestamp), per consumer, shared through the gateway state."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..jsonrpc import RpcError

# A JSON-RPC server error code of the implementation-defined range (-32000 … -32099).
RATE_LIMITED = -32029

WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    id: int
    requests: int
    window: str
    burst: int
    every_request: bool  # also initialize, ping and listings
    consumer_id: int | None = None
    tool: str = ""
    stamp: str = ""  # when the policy was created: a recreated database never meets an old bucket

    @property
    def interval(self) -> float:
        """Seconds one request uses up of the bucket."""
        return WINDOW_SECONDS[self.window] / self.requests

    def describe(self) -> str:
        text = f"{self.requests} requests per {self.window}"
        if self.burst != self.requests:
            text += f" (burst {self.burst})"
        scope = [f"tool {self.tool}"] if self.tool else []
        if self.consumer_id is not None:
            scope.append("this consumer")
        return text + (f" for {' and '.join(scope)}" if scope else "")


@dataclass(frozen=True, slots=True)
class LimitIndex:
    """A server's policies, keyed (consumer id | None, tool | "") so a request finds its policy in four lookups."""

    by_scope: dict[tuple[int | None, str], LimitPolicy] = field(default_factory=dict)
    every_request: bool = False  # some policy counts methods other than tools/call

    def policy_for(self, consumer_id: int | None, tool: str | None) -> LimitPolicy | None:
        """The most specific policy: consumer and tool, consumer, tool, then the server's own."""
        scopes = self.by_scope
        if tool:
            if consumer_id is not None:
                found = scopes.get((consumer_id, tool))
                if found is not None:
                    return found
        if consumer_id is not None:
            found = scopes.get((consumer_id, ""))
            if found is not None and (tool or found.every_request):
                return found
        if tool:
            found = scopes.get((None, tool))
            if found is not None:
                return found
        found = scopes.get((None, ""))
        if found is not None and (tool or found.every_request):
            return found
        return None


EMPTY = LimitIndex()


def index_of(policies: list[LimitPolicy]) -> LimitIndex:
    if not policies:
        return EMPTY
    return LimitIndex(by_scope={(pol.consumer_id, pol.tool): pol for pol in policies},
                      every_request=any(pol.every_request and not pol.tool for pol in policies))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until one more request would be allowed (0 when allowed)
    reset_after: float  # seconds until the bucket is full again


def gcra(tat: float | None, now: float, interval: float, capacity: float) -> tuple[Decision, float | None]:
    """One request against a bucket whose theoretical arrival time is `tat`: the decision and the new tat (None:
    unchanged). The in-process state and the Redis script compute exactly this."""
    tat = now if tat is None or tat < now else tat
    new_tat = tat + interval
    if new_tat - now > capacity + 1e-9:
        return Decision(False, new_tat - capacity - now, tat - now), None
    return Decision(True, 0.0, new_tat - now), new_tat


def bucket_key(server_id: int, policy: LimitPolicy, consumer_id: int | None) -> str:
    # Parameters are part of the key: a changed quota starts from a full bucket rather than a stale one.
    return (f"rl:{server_id}:{policy.id}.{policy.stamp}:{policy.requests}/{policy.window}/{policy.burst}:"
            f"{consumer_id if consumer_id is not None else '-'}")


# Busy buckets in shared state are taken from in leases: one Redis round trip takes several requests' worth, which
# this process then spends locally. A lease is at most LEASE_MAX requests, 1 % of the burst and half a second of
# the rate, and lives LEASE_SECONDS: what a process leases and does not spend is at most that, so the limit never
# lets more through and keeps back at most one lease per process. Quiet buckets (and every small quota) are taken
# one request at a time, exactly.
LEASE_MAX = 64
LEASE_SECONDS = 0.5
_ALLOWED = Decision(True, 0.0, 0.0)
_leases: dict[str, list[float]] = {}  # bucket key -> [requests left, lease ends (monotonic), last take]


def lease_size(policy: LimitPolicy) -> int:
    per_second = policy.requests / WINDOW_SECONDS[policy.window]
    return max(1, min(LEASE_MAX, int(policy.burst * 0.01), int(per_second * LEASE_SECONDS)))


async def take(state, server_id: int, policy: LimitPolicy, consumer_id: int | None) -> Decision:
    interval = policy.interval
    key = bucket_key(server_id, policy, consumer_id)
    if not state.shared:
        return await state.rate_take(key, interval, interval * policy.burst)  # in-process: as cheap as a lease
    now = time.monotonic()
    lease = _leases.get(key)
    if lease is not None and lease[0] >= 1 and lease[1] > now:
        lease[0] -= 1
        return _ALLOWED
    size = lease_size(policy)
    busy = lease is not None and now - lease[2] < LEASE_SECONDS
    if size > 1 and busy:
        decision = await state.rate_take(key, interval * size, interval * policy.burst)
        if decision.allowed:
            _leases[key] = [size - 1, now + LEASE_SECONDS, now]
            return decision
    decision = await state.rate_take(key, interval, interval * policy.burst)
    if len(_leases) >= 10_000:
        _leases.clear()  # bounded: leases are only ever an optimisation
    _leases[key] = [0, 0.0, now]
    return decision


class Limited(RpcError):
    """Over a rate limit: a JSON-RPC error (HTTP 429 with Retry-After where the answer is a plain response)."""

    def __init__(self, policy: LimitPolicy, decision: Decision):
        self.retry_after = max(1, math.ceil(decision.retry_after))
        resets = time.time() + decision.reset_after
        super().__init__(
            RATE_LIMITED,
            f"Rate limit exceeded: {policy.describe()}. Retry after {self.retry_after} s.",
            {"limit": {"requests": policy.requests, "window": policy.window, "burst": policy.burst,
                       "tool": policy.tool or None, "policy": policy.id},
             "retryAfter": self.retry_after,
             "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(resets)))},
            http_status=429,
        )


def retry_after_of(response: Any) -> int | None:
    """The Retry-After seconds of a rate-limit error response, else None (transports use it for the 429)."""
    if not isinstance(response, dict):
        return None
    error = response.get("error")
    if not isinstance(error, dict) or error.get("code") != RATE_LIMITED:
        return None
    data = error.get("data")
    return int(data.get("retryAfter", 1)) if isinstance(data, dict) else 1


__all__ = ["LimitPolicy", "LimitIndex", "Decision", "Limited", "RATE_LIMITED", "gcra", "index_of", "take",
           "retry_after_of", "p"]
