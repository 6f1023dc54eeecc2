"""Runs a tool call's template work without holding the event loop: inline for a short slice, then on a worker thread.

Almost every template renders in microseconds, so it runs where it is called, on the event loop.
A render still going after INLINE_SLICE_SECONDS (all of one call's renders together) stops and the
whole step (building the request, or mapping the response) runs again from the start on a small
pool of threads, where the renderer hands the GIL back every few hundred steps: other sessions keep
being served while a slow template uses up its time limit. Templates have no side effects, so
running one again is safe. Time spent waiting for a worker counts against the template time limit,
so a burst of slow templates fails in time instead of queueing without end.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ..gotemplate import SliceSpent

INLINE_SLICE_SECONDS = 0.01  # what one call's templates may take on the event loop
WORKER_THREADS = 4  # renders past their slice, at once (the GIL makes more pointless)

T = TypeVar("T")

# None: rendering outside the gateway's call path (console previews, tests) with no slicing.
# ("inline", slice_end) on the event loop; ("worker", started) on a worker thread.
_mode: contextvars.ContextVar[tuple[str, float] | None] = contextvars.ContextVar("template_mode", default=None)
_pool: ThreadPoolExecutor | None = None


def render_options() -> dict[str, Any]:
    """Extra keyword arguments for Template.render in the current mode."""
    mode = _mode.get()
    if mode is None:
        return {}
    kind, at = mode
    if kind == "inline":
        left = at - time.perf_counter()
        if left <= 0:
            raise SliceSpent
        return {"slice_seconds": left}
    return {"yield_gil": True, "started": at}


def _worker_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="template")
    return _pool


def _in_worker(started: float, fn: Callable[..., T]) -> T:
    _mode.set(("worker", started))
    return fn()


async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs), whose templates render inline if quick and on a worker thread if not."""
    token = _mode.set(("inline", time.perf_counter() + INLINE_SLICE_SECONDS))
    try:
        return fn(*args, **kwargs)
    except SliceSpent:
        pass
    finally:
        _mode.reset(token)
    call = functools.partial(fn, *args, **kwargs)
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_worker_pool(), context.run, _in_worker, time.perf_counter(), call)
