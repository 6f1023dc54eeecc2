"""The gateway process tuning: Twisted's Content-Type parsing cached, its access line skipped, writes sent at once
(an answer's head with its first body bytes), a connection's own address and TLS asked once, Daphne's table of
requests and its idle timers kept lean, collector thresholds raised, start-up frozen (what clients then read from a
live server: test_live_writes)."""
import gc
import subprocess
import sys
from pathlib import Path

import twisted.web.http as twisted_http
from daphne.http_protocol import HTTPFactory
from twisted.internet import tcp

from gateway.tuning import tune_process


def test_tune_process_is_applied_once_and_keeps_behaviour():
    tune_process(freeze_after=0.01)
    tune_process()  # idempotent: no double wrapping
    assert hasattr(twisted_http._parseContentType, "cache_info")
    assert not hasattr(twisted_http._parseContentType.__wrapped__, "cache_info")
    assert twisted_http._parseContentType(b"application/json; charset=utf-8") == b"application/json"
    assert gc.get_threshold()[0] == 20_000
    assert gc.get_freeze_count() > 0
    assert HTTPFactory.log(None, None) is None  # no line formatted for a log nobody reads
    assert tcp.Server._sends_at_once
    write = tcp.Server.writeSequence
    tune_process()
    assert tcp.Server.writeSequence is write  # wrapped once


def test_a_connection_asks_for_its_own_address_once():
    import socket

    from twisted.internet.address import IPv4Address

    tune_process()
    assert tcp.Server._knows_own_address

    class Accepted:  # what tcp.Server.getHost reads of an accepted connection
        _addressType = IPv4Address

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        accepted = Accepted()
        accepted.socket = sock
        first = tcp.Server.getHost(accepted)
        assert (first.type, first.host, first.port) == ("TCP", "127.0.0.1", port)
    # The socket is closed now: the address the connection had is still what it reports, with no system call.
    assert tcp.Server.getHost(accepted) is first


def _run_alone(script: str) -> subprocess.CompletedProcess:
    """`script` in a Python process of its own: importing daphne.server installs a Twisted reactor, which this test
    process must not get."""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert run.returncode == 0, run.stderr
    return run


DAPHNE_TABLE = """
import asyncio
import daphne.server  # installs Twisted's asyncio reactor, as the daphne command does
from gateway.tuning import tune_process

tune_process(freeze_after=3600)


async def app(scope, receive, send):
    await receive()
    if scope["path"] == "/fail":
        raise RuntimeError("boom")


async def main():
    server = daphne.server.Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}  # what run() would set up; the server never listens here
    answered, failed, open_ = object(), object(), object()
    queues = []
    for protocol, path in ((answered, "/"), (failed, "/fail"), (open_, "/")):
        server.protocol_connected(protocol)
        queues.append(server.create_application(protocol, {"type": "http", "path": path}))
    server.protocol_disconnected(answered)
    server.protocol_disconnected(failed)
    for queue in queues:
        queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    await asyncio.sleep(0.1)
    print(answered in server.connections, failed in server.connections, open_ in server.connections)


asyncio.run(main())
"""


def test_daphne_forgets_an_answered_request_at_once_and_leaves_failures_to_its_sweep():
    run = _run_alone(DAPHNE_TABLE)
    # answered: gone; failed: kept for the sweep that logs it; finished but still connected: kept until it closes.
    assert run.stdout.split() == ["False", "True", "True"]


HEAD_AND_BODY = """
import socket, threading
import daphne.server  # noqa: F401  the asyncio reactor, as under the daphne command
from twisted.internet import reactor, tcp
from twisted.web import http
from gateway.tuning import tune_process

tune_process(freeze_after=3600)
sends = []
write_some = tcp.Server.writeSomeData
def counted(self, data):
    sends.append(bytes(data))
    return write_some(self, data)
tcp.Server.writeSomeData = counted

class Answer(http.Request):
    def process(self):
        body = b"x" * int(self.path.strip(b"/") or 5)
        self.setHeader(b"content-length", b"%d" % len(body))
        self.write(body)
        self.finish()

factory = http.HTTPFactory()
def build(addr):
    channel = http.HTTPChannel(); channel.requestFactory = Answer; channel.factory = factory
    return channel
factory.buildProtocol = build
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
answers = []
def client():
    with socket.create_connection(("127.0.0.1", port.getHost().port)) as s:
        for n in (5, 300):
            s.sendall(b"GET /%d HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" % n)
            data = b""
            while not data.endswith(b"x" * n):
                data += s.recv(65536)
            answers.append(data)
    reactor.callFromThread(reactor.stop)
threading.Thread(target=client, daemon=True).start()
reactor.run()
whole = [a.startswith(b"HTTP/1.1 200 OK\\r\\n") and a.endswith(b"\\r\\n\\r\\n" + b"x" * n) for a, n in zip(answers, (5, 300))]
print(len(sends), *whole)
"""


def test_an_answers_head_and_first_body_bytes_leave_in_one_write():
    run = _run_alone(HEAD_AND_BODY)
    # Two answers on one kept connection: one write each (not head, then body), both whole and in order.
    assert run.stdout.split() == ["2", "True", "True"]


def test_daphne_reads_twisted_http_directly_and_a_channel_knows_if_it_is_tls():
    import daphne.http_protocol as daphne_http
    from twisted.internet.interfaces import ISSLTransport
    from zope.interface import directlyProvides

    tune_process()
    assert type(daphne_http.http).__name__ != "_ModuleProxy"
    assert daphne_http.http.Request is twisted_http.Request  # the same classes, without the proxy

    class Plain:
        pass

    channel = twisted_http.HTTPChannel()
    channel.transport = Plain()
    assert channel.isSecure() is False
    assert channel.isSecure() is False  # the answer kept for this transport
    tls = Plain()
    directlyProvides(tls, ISSLTransport)
    channel.transport = tls
    assert channel.isSecure() is True  # another transport is asked again


class _Answered(twisted_http.Request):
    """Answers at once, unless the path is /hold (then the test finishes it)."""

    held: list = []

    def process(self):
        if self.path == b"/hold":
            self.held.append(self)
            return
        self.setHeader(b"content-length", b"2")
        self.write(b"ok")
        self.finish()


def _idle_channel():
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    tune_process()
    clock = Clock()
    channel = twisted_http.HTTPChannel()
    channel.callLater = clock.callLater
    channel.requestFactory = _Answered
    channel.timeOut = 60
    transport = StringTransport()
    channel.makeConnection(transport)
    return clock, channel, transport


def _closes_between(clock, transport, still_open: float, closed: float) -> None:
    """Open `still_open` seconds from now, closed by `closed` seconds from now."""
    clock.advance(still_open)
    assert not transport.disconnecting
    clock.advance(closed - still_open)
    assert transport.disconnecting


def test_an_idle_kept_connection_closes_after_the_idle_timeout_counted_from_its_last_answer():
    clock, channel, transport = _idle_channel()
    [timer] = clock.getDelayedCalls()
    clock.advance(50)
    for _ in range(3):
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().count(b"\r\n\r\nok") == 3
    [still] = clock.getDelayedCalls()
    assert still is timer  # one timer for the connection, not a new one per request
    _closes_between(clock, transport, 59, 61)  # counted from the last answer, not from the connection's start


def test_a_request_in_progress_never_times_out_and_bytes_received_count_as_activity():
    clock, channel, transport = _idle_channel()
    channel.dataReceived(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.advance(600)
    assert not transport.disconnecting  # busy: the idle timeout does not apply
    _Answered.held.pop().finish()
    clock.advance(50)
    channel.dataReceived(b"GET / HTTP/1.1\r\n")  # part of the next request
    _closes_between(clock, transport, 50, 61)


def test_a_closed_connection_leaves_no_timer_behind():
    from twisted.python.failure import Failure

    clock, channel, transport = _idle_channel()
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert clock.getDelayedCalls()
    channel.connectionLost(Failure(ConnectionError("closed by the client")))
    assert clock.getDelayedCalls() == []
