"""Governance around each request: the rate limit before the executor, the call record and metrics after it."""
from __future__ import annotations

import contextvars
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from django.conf import settings

from ..jsonrpc import Message, RpcError, dumps
from ..state.outage import DependencyUnavailable
from . import limits, metrics
from .limits import EMPTY, LimitIndex, Limited, LimitPolicy, retry_after_of
from .records import buffer, flush_records, purge_records, redact


@dataclass(frozen=True, slots=True)
class ServerGovernance:
    """What the read model carries for a server: its limits and what its call records keep."""

    limits: LimitIndex = EMPTY
    record_arguments: bool = False
    redact_fields: frozenset[str] = frozenset()


NONE = ServerGovernance()


class _Probe:
    """Filled in by the executor while a call runs: what the backend answered."""

    __slots__ = ("status", "seconds", "failed")

    def __init__(self) -> None:
        self.status: int | None = None
        self.seconds: float | None = None
        self.failed = False


_probe: contextvars.ContextVar[_Probe | None] = contextvars.ContextVar("governance_probe", default=None)


def backend_answered(status: int | None, seconds: float | None = None) -> None:
    """Executors call this once the backend answered (a status) or failed (None: no answer at all)."""
    probe = _probe.get()
    if probe is not None:
        probe.status = status
        probe.seconds = seconds
        probe.failed = status is None


def load(server) -> ServerGovernance:
    """Built with the server's read model (gateway.config), from console tables: two queries."""
    from console.models import CallRecordSettings, RateLimitPolicy

    policies = [
        LimitPolicy(id=row.pk, requests=row.requests, window=row.window, burst=row.burst or row.requests,
                    every_request=row.applies_to == RateLimitPolicy.AppliesTo.ALL, consumer_id=row.consumer_id,
                    tool=row.tool, stamp=f"{row.created_at.timestamp():.6f}")
        for row in RateLimitPolicy.objects.filter(mcp_server=server, enabled=True, requests__gt=0)
    ]
    record = CallRecordSettings.objects.filter(mcp_server=server).first()
    if not policies and record is None:
        return NONE
    return ServerGovernance(limits=limits.index_of(policies),
                            record_arguments=bool(record and record.record_arguments),
                            redact_fields=frozenset(str(f) for f in (record.redact_fields if record else []) or []))


def _consumer_id(ctx) -> int | None:
    consumer = ctx.consumer
    return consumer.id if consumer is not None else None


async def _admit(gov: ServerGovernance, method: str, tool: str | None, ctx) -> None:
    policy = gov.limits.policy_for(_consumer_id(ctx), tool)
    if policy is None:
        return
    from ..state import get_state

    from ..state.outage import RateCountersUnavailable, StateUnavailable

    try:
        decision = await limits.take(get_state(), ctx.server.id, policy, _consumer_id(ctx))
    except StateUnavailable as exc:
        # Fail closed: counting per process while Redis is away would multiply a quota by the process count.
        raise RateCountersUnavailable(exc.cause) from None
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(ctx.server.instance, ctx.server.name, method).inc()
        raise Limited(policy, decision)


async def governed(handle: Callable[[Message, Any], Awaitable[Message | None]], message: Message, ctx) -> Message | None:
    """Serve one request through its rate limit; a tools/call, and any request to a proxy, leaves a call record.

    `handle` is the executor's: it answers the whole message, so the response passes through untouched and
    the record reads its outcome from it."""
    server = ctx.server
    gov: ServerGovernance = getattr(server, "governance", None) or NONE
    method = message["method"]
    tool_call = method == "tools/call"
    if not tool_call and server.type != "direct_proxy":
        if gov.limits.every_request:
            await _admit(gov, method, None, ctx)
        return await handle(message, ctx)
    params = message.get("params") or {}
    name = params.get("name") if tool_call else None
    tool = name if isinstance(name, str) else ""
    started = time.perf_counter()
    probe = _Probe()
    token = _probe.set(probe)
    result: dict | None = None
    error: RpcError | None = None
    try:
        if tool_call:
            if gov.limits is not EMPTY:
                await _admit(gov, method, tool, ctx)
        elif gov.limits.every_request:
            await _admit(gov, method, None, ctx)
        response = await handle(message, ctx)
        if response is not None:
            answered = response.get("error")
            if isinstance(answered, dict):  # an error answered as a response is recorded as if it were raised
                error = RpcError(answered.get("code", -32603), str(answered.get("message", "")))
            else:
                result = response.get("result")
        return response
    except RpcError as exc:
        error = exc
        raise
    except DependencyUnavailable as exc:
        # Answered 503 by the transport; the record says the call was turned away and why, not a backend error.
        error = RpcError(-32603, exc.summary, http_status=503)
        raise
    finally:
        _probe.reset(token)
        if tool_call:
            _settle(gov, ctx, tool, params, started, probe, result, error)
        else:
            _settle_proxied(ctx, method, params, started, probe, result, error)


def _backend_failed(probe: _Probe) -> bool:
    return probe.failed or (probe.status is not None and not 200 <= probe.status < 300)


def _outcome(result: dict | None, error: RpcError | None, probe: _Probe) -> tuple[str, str]:
    if error is not None:
        if isinstance(error, Limited):
            return "limited", error.message[:500]
        # An error the gateway or the backend answered is a refusal; a backend that failed to answer is not.
        return ("backend_error" if _backend_failed(probe) else "refused"), error.message[:500]
    if result is None:
        return "backend_error", "Internal error while handling the request."
    if not result.get("isError"):
        return "ok", ""
    message = ""
    content = result.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        message = str(content[0].get("text", ""))[:500]
    if _backend_failed(probe):
        return "backend_error", message
    return "tool_error", message


def _size_of(value: Any) -> int:
    """Bytes of the value as the gateway writes it (compact UTF-8 JSON)."""
    try:
        return len(dumps(value))
    except (TypeError, ValueError):
        return 0


def _result_size(result: dict | None) -> int:
    # The text of the content blocks: the bulk of any answer, counted without serialising it a second time.
    if not result:
        return 0
    size = 0
    for block in result.get("content") or ():
        if isinstance(block, dict):
            size += len(block.get("text") or block.get("data") or "")
    return size


# (instance, server, tool, outcome) -> the labelled metrics of that call: labels() is most of a metric's cost.
_series: dict[tuple[str, str, str, str], tuple] = {}


def _settle(gov: ServerGovernance, ctx, tool: str, params: dict, started: float, probe: _Probe,
            result: dict | None, error: RpcError | None) -> None:
    elapsed = time.perf_counter() - started
    server = ctx.server
    outcome, message = _outcome(result, error, probe)
    # A refused call may name any tool: it is counted without one, so clients cannot mint label values.
    key = (server.instance, server.name, tool if outcome != "refused" else "", outcome)
    series = _series.get(key)
    if series is None:
        if len(_series) > 10_000:
            _series.clear()
        series = _series[key] = (metrics.TOOL_CALLS.labels(*key), metrics.CALL_SECONDS.labels(*key[:2]),
                                 metrics.BACKEND_SECONDS.labels(*key[:2]))
    series[0].inc()
    series[1].observe(elapsed)
    if probe.seconds is not None:
        series[2].observe(probe.seconds)
    if not settings.GATEWAY_CALL_RECORDS:
        return
    arguments = params.get("arguments")
    _record(ctx, "tools/call", tool, outcome, message, probe, elapsed,
            _size_of(arguments) if arguments is not None else 0, _result_size(result),
            redact(arguments, gov.redact_fields) if gov.record_arguments and arguments is not None else None)


# Methods counted under their own name; anything else a client sends is counted as "other".
_PROXIED_METHODS = frozenset({
    "ping", "tools/list", "resources/list", "resources/templates/list", "resources/read", "resources/subscribe",
    "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
    "server/discover", "tasks/get", "tasks/list", "tasks/result", "tasks/cancel"})
_proxied: dict[tuple[str, str, str, str], Any] = {}


def _settle_proxied(ctx, method: str, params: dict, started: float, probe: _Probe, result: dict | None,
                    error: RpcError | None) -> None:
    """A request other than tools/call relayed by a Direct Proxy: counted, and recorded without a tool."""
    elapsed = time.perf_counter() - started
    server = ctx.server
    outcome, message = _outcome(result, error, probe)
    key = (server.instance, server.name, method if method in _PROXIED_METHODS else "other", outcome)
    counter = _proxied.get(key)
    if counter is None:
        if len(_proxied) > 10_000:
            _proxied.clear()
        counter = _proxied[key] = metrics.PROXIED_REQUESTS.labels(*key)
    counter.inc()
    if not settings.GATEWAY_CALL_RECORDS:
        return
    _record(ctx, method[:64], "", outcome, message, probe, elapsed, _size_of(params) if params else 0,
            _size_of(result) if result else 0, None)


def _record(ctx, method: str, tool: str, outcome: str, message: str, probe: _Probe, elapsed: float,
            request_bytes: int, response_bytes: int, arguments: Any) -> None:
    server = ctx.server
    consumer = ctx.consumer
    buffer.add({
        "at": datetime.now(tz=timezone.utc),
        "mcp_server_id": server.id,
        "instance": server.instance,
        "consumer_id": consumer.id if consumer is not None else None,
        "consumer_name": consumer.name if consumer is not None else "",
        "method": method,
        "tool": tool[:128],
        "transport": ctx.transport,
        "revision": ctx.version,
        "session_id": ctx.session_id or "",
        "client_name": ctx.client_name,
        "outcome": outcome,
        "backend_status": probe.status,
        "latency_ms": round(elapsed * 1000, 3),
        "request_bytes": request_bytes,
        "response_bytes": response_bytes,
        "arguments": arguments,
        "error": message,
    })


__all__ = ["ServerGovernance", "governed", "load", "backend_answered", "flush_records", "purge_records",
           "retry_after_of", "Limited"]
