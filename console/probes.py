"""Reachability of backend services, checked on demand for the console and the REST API (cached briefly)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import aiohttp
from django.core.cache import cache

from gateway import egress

from .models import BackendService

PROBE_TIMEOUT_SECONDS = 3.0
CACHE_SECONDS = 30


@dataclass(frozen=True)
class Reachability:
    reachable: bool
    status: int | None  # the HTTP status the base URL answered with, when it answered
    latency_ms: int | None
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def _cache_key(service: BackendService) -> str:
    return f"reachability:{service.pk}:{service.base_url}"


async def service_reachability(*, service: BackendService, fresh: bool = False) -> Reachability:
    """Whether the service's base URL answers HTTP at all; any status counts, since the base path may be a 404."""
    key = _cache_key(service)
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return Reachability(**cached)
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
    try:
        # Async on purpose: the demo API is served by this very process, and a synchronous request from a
        # synchronous view would wait on the thread that must answer it.
        # The probe connects on a tenant's behalf, so it passes the same egress policy as the gateway's tool calls.
        async with aiohttp.ClientSession(connector=egress.aiohttp_connector(), timeout=timeout,
                                         trust_env=False) as session:
            async with session.get(service.base_url, allow_redirects=False) as response:
                status = response.status
        latency = int((time.monotonic() - started) * 1000)
        result = Reachability(True, status, latency, f"Answered HTTP {status} in {latency} ms.")
    except TimeoutError:
        result = Reachability(False, None, None, f"No answer within {PROBE_TIMEOUT_SECONDS:g} s.")
    except aiohttp.ClientConnectorError as exc:
        refused = egress.refusal_of(exc)
        if refused is not None:
            result = Reachability(False, None, None, f"{refused.describe()}.")
        else:
            result = Reachability(False, None, None, f"Cannot connect: {exc.os_error.strerror or exc}.")
    except (aiohttp.ClientError, ValueError) as exc:
        result = Reachability(False, None, None, f"Request failed: {exc.__class__.__name__}: {exc}".rstrip(": "))
    cache.set(key, result.as_dict(), CACHE_SECONDS)
    return result
