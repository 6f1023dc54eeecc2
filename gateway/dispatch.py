"""JSON-RPC dispatch: one message in, one response (or none) out, by the executor of the server's type."""
from __future__ import annotations

import logging

from . import protocol as p
from .executors import executor_for
from .governance import governed
from .jsonrpc import Message, RpcError, error_response
from .lifecycle import CallContext, initialize, is_stateless  # noqa: F401  (the transports' imports)
from .state.outage import DependencyUnavailable

log = logging.getLogger(__name__)

_CACHEABLE = {"server/discover", "tools/list", "resources/list", "resources/templates/list", "resources/read",
              "prompts/list"}


async def dispatch(message: Message, ctx: CallContext) -> Message | None:
    """Answer one message: a request gets its response, a notification or response None. Never raises."""
    method = message.get("method")
    is_request = "id" in message and method is not None
    if is_request:
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            return error_response(message["id"], p.INVALID_PARAMS, 'Invalid params: "params" must be an object.')
    executor = executor_for(ctx.server)
    if not is_request and not executor.relays_all:
        return None
    try:
        # The one place an executor serves a message: whatever wraps every call (limits, records) wraps this.
        if is_request:
            response = await governed(executor.handle, message, ctx)
        else:
            response = await executor.handle(message, ctx)
    except RpcError as exc:
        return exc.response(message["id"]) if is_request else None
    except DependencyUnavailable:
        raise  # Redis or the database is away: the transport answers 503 with Retry-After, not a JSON-RPC error
    except Exception:  # the edge: a bug must become a JSON-RPC error, never a hung client
        log.exception("Unhandled error in %s on %s", method or "a response", ctx.server.key)
        if not is_request:
            return None
        return error_response(message["id"], p.INTERNAL_ERROR, "Internal error while handling the request.")
    if not is_request or response is None:
        return None
    result = response.get("result")
    if ctx.stateless and isinstance(result, dict):
        result.setdefault("resultType", "complete")
        if method in _CACHEABLE:
            # 2026-07-28 requires caching directives; listings may differ per consumer, so never shared.
            result.setdefault("ttlMs", 0)
            result.setdefault("cacheScope", "private")
    return response
