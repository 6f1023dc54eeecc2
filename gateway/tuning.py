"""Process tuning for a gateway process, applied once when the ASGI application is loaded (measured in bench/)."""
from __future__ import annotations

import functools
import gc
import logging
import threading

log = logging.getLogger(__name__)

_applied = False


def tune_process(*, freeze_after: float = 5.0) -> None:
    """Keep the garbage collector's full passes off the event loop and skip Twisted's per-request header parsing.

    A full collection walks every tracked object — about 140,000 from start-up alone — and stopped the
    event loop for ~100 ms about once a second under load: that was the whole p99 tail. Freezing the
    start-up objects (again once the first requests' lazy imports are done) and a larger young
    generation remove those pauses; see bench/results/experiments-2026-11-21.md.
    """
    global _applied
    if _applied:
        return
    _applied = True
    _cache_twisted_content_type()
    gc.set_threshold(20_000, 50, 100)
    _freeze()
    timer = threading.Timer(freeze_after, _freeze)
    timer.daemon = True
    timer.start()


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def _cache_twisted_content_type() -> None:
    # Twisted parses every POST's Content-Type with the email package, for form handling Daphne never
    # uses: a fifth of the event loop's time under load. The result depends only on the header's bytes.
    try:
        import twisted.web.http as twisted_http
    except ImportError:  # not running under Daphne
        return
    parse = getattr(twisted_http, "_parseContentType", None)
    if parse is None or hasattr(parse, "cache_info"):
        return
    twisted_http._parseContentType = functools.lru_cache(maxsize=256)(parse)
