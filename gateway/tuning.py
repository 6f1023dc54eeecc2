"""Process tuning for a gateway process, applied once when the ASGI application is loaded (measured in bench/)."""
from __future__ import annotations

import functools
import gc
import logging
import threading

log = logging.getLogger(__name__)

_applied = False


def tune_process(*, freeze_after: float = 5.0) -> None:
    """Keep the garbage collector's full passes off the event loop and trim Daphne's and Twisted's per-request work.

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
    _skip_twisted_access_line()
    _send_at_once()
    _know_own_address()
    _forget_finished_requests()
    _direct_twisted_names()
    _know_if_secure()
    _lazy_idle_timer()
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


def _skip_twisted_access_line() -> None:
    # Twisted formats a combined-log line for every request and hands it to its own log, which nothing under
    # Daphne reads: Daphne writes the access log itself (`--access-log`). A few per cent of a busy process.
    try:
        from daphne.http_protocol import HTTPFactory
    except ImportError:
        return
    HTTPFactory.log = lambda self, request: None


def _send_at_once() -> None:
    """Plain TCP connections Daphne accepts send a write straight away when nothing is queued before it.

    Twisted queues every write until the reactor reports the socket writable: two epoll changes and one more
    pass of the event loop per response, about a tenth of a busy process. asyncio's transports, like most
    servers, try the socket first and queue only what it did not take; this does the same. Anything that is
    not the plain case (TLS, data already queued, a closing connection) takes Twisted's own path."""
    try:
        from twisted.internet import tcp
    except ImportError:
        return
    if getattr(tcp.Server, "_sends_at_once", False):
        return
    queued_write, queued_sequence = tcp.Server.write, tcp.Server.writeSequence

    def idle(connection) -> bool:
        return (not connection.TLS and connection.connected and not connection.disconnecting
                and not connection._writeDisconnected and not connection._writeDisconnecting
                and not connection._tempDataBuffer and connection.offset == len(connection.dataBuffer))

    def send(connection, data: bytes) -> bytes:
        """What the socket did not take; everything when it failed (Twisted's path then reports the loss)."""
        sent = connection.writeSomeData(data)
        if isinstance(sent, int) and sent > 0:
            return data[sent:]
        return data

    def write(self, data):
        held = self.__dict__.get("_held")
        if held is not None:
            held.append(data)
            return
        if type(data) is bytes and data and idle(self):
            data = send(self, data)
            if not data:
                return
        queued_write(self, data)

    def write_sequence(self, iovec):
        held = self.__dict__.get("_held")
        if held is not None:
            held.extend(iovec)
            return
        if iovec and idle(self):
            data = send(self, b"".join(iovec))
            if not data:
                return
            iovec = [data]
        queued_sequence(self, iovec)

    tcp.Server.write, tcp.Server.writeSequence = write, write_sequence
    tcp.Server._sends_at_once = True
    _head_with_first_body()


def _head_with_first_body() -> None:
    # Twisted writes an answer's head and its first body bytes as two writes, so two packets: the client wakes
    # twice per answer, and the gateway makes two system calls. Held for the length of that one call, the two
    # leave together, in the same order, as one write.
    from twisted.internet import tcp
    from twisted.web import http as twisted_http

    first_write = twisted_http.Request.write

    def write(self, data):
        transport = None if self.startedWriting else getattr(self.channel, "transport", None)
        if type(transport) is not tcp.Server or not data:
            return first_write(self, data)
        held = transport._held = []
        try:
            return first_write(self, data)
        finally:
            del transport._held
            if held:
                transport.write(b"".join(held))

    twisted_http.Request.write = write


def _know_own_address() -> None:
    # Twisted asks the kernel for a connection's local address (getsockname) for every request on it, to fill the
    # ASGI scope's "server": an accepted socket's local address never changes, so the first answer is kept.
    try:
        from twisted.internet import tcp
    except ImportError:
        return
    if getattr(tcp.Server, "_knows_own_address", False):
        return
    ask = tcp.Server.getHost

    def get_host(self):
        host = self.__dict__.get("_own_address")
        if host is None:
            host = self._own_address = ask(self)  # an IPv4Address/IPv6Address: immutable, safe to hand out again
        return host

    tcp.Server.getHost = get_host
    tcp.Server._knows_own_address = True


def _forget_finished_requests() -> None:
    """Daphne drops a request it has answered as soon as its application instance ends cleanly.

    Daphne keeps every request in one table until a once-a-second sweep walks the whole table: at a few thousand
    requests a second that walk, and the answered requests it holds meanwhile, cost a few per cent of a busy
    process. An instance that failed or was cancelled is left for the sweep, which logs what went wrong."""
    try:
        from daphne.server import Server
    except ImportError:
        return
    if getattr(Server, "_forgets_finished_requests", False):
        return
    create = Server.create_application

    def create_application(self, protocol, scope):
        queue = create(self, protocol, scope)
        details = self.connections.get(protocol)
        instance = details.get("application_instance") if details is not None else None
        if instance is not None:
            instance.add_done_callback(functools.partial(_forget, self.connections, protocol))
        return queue

    Server.create_application = create_application
    Server._forgets_finished_requests = True


def _forget(connections: dict, protocol, instance) -> None:
    if instance.cancelled() or instance.exception() is not None:
        return  # Daphne's sweep logs it and answers the client if it still can
    details = connections.get(protocol)
    if details is not None and "disconnected" in details and details.get("application_instance") is instance:
        del connections[protocol]


def _direct_twisted_names() -> None:
    """Daphne's request code reaches Twisted's HTTP classes without the deprecation proxy in between.

    `twisted.web.http` is wrapped in a proxy that checks every attribute read for a deprecation; Daphne reads
    `http.Request` a few times per request through it. Daphne uses no deprecated name, so it gets the module
    itself."""
    try:
        import daphne.http_protocol as daphne_http
    except ImportError:
        return
    module = daphne_http.http
    if type(module).__name__ == "_ModuleProxy":
        daphne_http.http = object.__getattribute__(module, "_module")


def _http_channel_to_patch(mark: str):
    """Twisted's HTTPChannel, marked with `mark`, the first time a patch asks for it; None when it is patched
    already or Twisted is not there (not running under Daphne)."""
    try:
        from twisted.web import http as twisted_http
    except ImportError:
        return None
    channel = twisted_http.HTTPChannel
    if getattr(channel, mark, False):
        return None
    setattr(channel, mark, True)
    return channel


def _know_if_secure() -> None:
    # Twisted works out whether a channel is TLS with an interface lookup on every request; a channel's transport
    # is set once, so the answer is kept for it (a new transport is asked again).
    channel = _http_channel_to_patch("_knows_if_secure")
    if channel is None:
        return
    ask = channel.isSecure

    def is_secure(self):
        known = self.__dict__.get("_secure")
        if known is None or known[0] is not self.transport:
            known = self._secure = (self.transport, ask(self))
        return known[1]

    channel.isSecure = is_secure


def _lazy_idle_timer() -> None:
    """A kept-alive HTTP connection's idle timeout is one timer per connection, checked when it fires, not one new
    timer per request.

    Twisted stops a connection's idle timer when a request arrives and starts a new one when the answer is done:
    a cancelled timer and a new one in the reactor's heap per request (a few per cent of a busy process). Here the
    timer stays; a request only marks the connection busy, an answer marks when it went idle, and the timer, when
    it fires, closes the connection if it has been idle for the whole timeout, or waits out the rest. A closed
    connection's timer is cancelled at once, so nothing holds the connection afterwards."""
    channel = _http_channel_to_patch("_lazy_idle_timer")
    if channel is None:
        return
    lost = channel.connectionLost

    def set_timeout(self, period):
        previous, self.timeOut = self.timeOut, period
        if period is None:
            self._idle_until = None  # busy (or closing): the timer, if it fires meanwhile, does nothing
            return previous
        call = self.__dict__.get("_idle_call")
        if call is None or not call.active():
            call = self._idle_call = self.callLater(period, functools.partial(_idle_check, self))
            self._idle_clock = call.seconds
            self._idle_until = call.getTime()
        else:
            self._idle_until = self._idle_clock() + period
            if self._idle_until < call.getTime():
                call.reset(period)  # a shorter timeout than the one the timer was set for
        return previous

    def reset_timeout(self):
        if self.__dict__.get("_idle_until") is not None and self.timeOut is not None:
            self._idle_until = self._idle_clock() + self.timeOut

    def connection_lost(self, reason):
        call = self.__dict__.get("_idle_call")
        if call is not None and call.active():
            call.cancel()
        self._idle_call = self._idle_until = None
        return lost(self, reason)

    channel.setTimeout, channel.resetTimeout, channel.connectionLost = set_timeout, reset_timeout, connection_lost


def _idle_check(channel) -> None:
    channel._idle_call = None
    until = channel._idle_until
    if until is None:
        return  # busy: the answer's set_timeout starts a timer again
    left = until - channel._idle_clock()
    if left > 0:
        channel._idle_call = channel.callLater(left, functools.partial(_idle_check, channel))
        return
    channel._idle_until = None
    channel.timeoutConnection()
