"""Graceful shutdown of a gateway process: on SIGTERM stop taking calls, let in-flight ones finish, close streams."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from django.conf import settings

log = logging.getLogger("gateway.drain")


class Drain:
    """This process's in-flight gateway requests, and whether it is shutting down."""

    def __init__(self) -> None:
        self.started = False  # new requests are refused
        self.streams_closed = False  # open streams end
        self.in_flight = 0
        self._waiters: set[asyncio.Future] = set()

    def stopping(self) -> asyncio.Future:
        """A future done once streams are to close (a stream waits on it next to its messages)."""
        future = asyncio.get_running_loop().create_future()
        if self.streams_closed:
            future.set_result(None)
        else:
            self._waiters.add(future)
            future.add_done_callback(self._waiters.discard)
        return future

    def begin(self) -> None:
        self.started = True

    def close_streams(self) -> None:
        self.streams_closed = True
        for future in list(self._waiters):
            if not future.done():
                future.set_result(None)

    async def until_idle(self, timeout: float) -> bool:
        """Wait for in-flight requests to finish; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self.in_flight > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def track(self):
        return _Tracked(self)


class _Tracked:
    __slots__ = ("_drain",)

    def __init__(self, drain: Drain):
        self._drain = drain

    def __enter__(self):
        self._drain.in_flight += 1

    def __exit__(self, *exc):
        self._drain.in_flight -= 1


drain = Drain()


def install_under_daphne() -> None:
    """Replace Twisted's SIGTERM handler (stop the reactor now, cancelling every request) with a drain that stops it
    once in-flight calls are done or GATEWAY_DRAIN_SECONDS have passed."""
    if "twisted.internet.reactor" not in sys.modules:
        return  # not under Daphne (importing the reactor here would install one of the wrong kind)
    from twisted.internet import reactor

    def on_sigterm(signum, frame) -> None:
        # A signal handler runs between bytecodes of the loop's thread: hand the work to the loop.
        reactor.callFromThread(_start)

    def _start() -> None:
        if drain.started:
            return
        asyncio.ensure_future(_drain_then_stop(reactor))

    def install() -> None:
        signal.signal(signal.SIGTERM, on_sigterm)

    # After the reactor has installed its own handlers, so this one replaces Twisted's.
    reactor.callWhenRunning(install)


async def _drain_then_stop(reactor) -> None:
    timeout = float(settings.GATEWAY_DRAIN_SECONDS)
    log.warning("SIGTERM: draining (%d in-flight gateway requests, at most %g s); new calls answer 503",
                drain.in_flight, timeout)
    drain.begin()
    # Streams stay open meanwhile: an SSE client's in-flight call is answered on its stream.
    finished = await drain.until_idle(timeout)
    if finished:
        log.warning("Drained; closing open streams and stopping")
    else:
        log.warning("Drain timeout: stopping with %d gateway requests unfinished", drain.in_flight)
    drain.close_streams()
    from .hosted.children import registry

    # Hosted stdio children run in process groups of their own: nothing else would stop them with this process.
    await registry.stop_all()
    # Let the streams' final chunks reach their clients before the reactor closes the connections.
    await asyncio.sleep(0.3)
    reactor.stop()
