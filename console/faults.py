"""Dependency failures at the console's edge: a database outage is a 503 page or JSON, and /readyz says what failed."""
from __future__ import annotations

import asyncio

import redis

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin

from gateway.state.outage import database_outage, redis_outage


def is_outage(exc: BaseException) -> bool:
    """The database being unreachable (OperationalError; InterfaceError for a connection that died under a request),
    not an error of a query (an IntegrityError is the caller's to handle)."""
    return isinstance(exc, (OperationalError, InterfaceError))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _recovered(sender, connection, **kwargs) -> None:
    database_outage.succeeded()


connection_created.connect(_recovered, dispatch_uid="console.faults.database_recovered")


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def unavailable_response(request: HttpRequest, what: str, code: str) -> HttpResponse:
    retry_after = settings.GATEWAY_RETRY_AFTER_SECONDS
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {"detail": f"The {what} is unavailable; retry in {retry_after} s.", "code": code, "errors": {}},
            status=503)
    else:
        response = HttpResponse(render_to_string("503.html", {"what": what, "retry_after": retry_after}),
                                status=503)
    response["Retry-After"] = str(retry_after)
    # One log line per outage (gateway.outage), not a line per request from django.request.
    response._has_been_logged = True
    return response


class DependencyUnavailableMiddleware(MiddlewareMixin):
    """A database or Redis that cannot be reached is a 503 the operator recognises, never a 500 with a traceback.

    (Redis backs the sign-in counters through Django's cache in the production profile.)"""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_outage(exception):
            database_outage.failed(first_line(exception))
            return unavailable_response(request, "database", "database_unavailable")
        if isinstance(exception, redis.RedisError):
            redis_outage.failed(first_line(exception))
            return unavailable_response(request, "shared session store (Redis)", "redis_unavailable")
        return None


# ---------------------------------------------------------------- health

def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering (touches no dependency)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


async def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "in-process"
    from gateway.state import get_state

    await get_state().ping()
    return "ok"


async def _check_channel_layer() -> str:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return "none"
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("the channel layer returned another message")
    return "ok"


async def _run(check, timeout: float) -> tuple[bool, str]:
    try:
        return True, (await asyncio.wait_for(check(), timeout)) or "ok"
    except asyncio.TimeoutError:
        return False, f"no answer within {timeout:g} s"
    except Exception as exc:  # the answer names what failed; the failure itself is the information
        return False, first_line(exc)


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database, Redis and channel layer reachable; else 503 naming which failed."""
    from gateway.drain import drain

    timeout = max(0.5, settings.REDIS_TIMEOUT_SECONDS * 2)

    async def database() -> str:
        await sync_to_async(_check_database, thread_sensitive=False)()
        return "ok"

    names = ("database", "redis", "channel_layer")
    results = await asyncio.gather(_run(database, timeout), _run(_check_redis, timeout),
                                   _run(_check_channel_layer, timeout))
    checks = {name: detail for name, (_, detail) in zip(names, results)}
    failed = [name for name, (ok, _) in zip(names, results) if not ok]
    if drain.started:
        failed.append("draining")
        checks["draining"] = "the process is shutting down"
    if failed:
        response = JsonResponse({"status": "unavailable", "failed": failed, "checks": checks}, status=503)
        response["Retry-After"] = str(settings.GATEWAY_RETRY_AFTER_SECONDS)
        response._has_been_logged = True
        return response
    return JsonResponse({"status": "ready", "checks": checks})
