"""The relay's HTTP/1.1 client against raw loopback servers: bodies by length, chunks and close; pooled connections;
answers it must refuse; the egress policy on every new connection."""
from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from gateway import egress
from gateway.executors import http1

pytestmark = pytest.mark.django_db


class RawServer:
    """A loopback server that answers each request with the next canned bytes; counts connections and requests."""

    def __init__(self, answers: list[bytes], *, close_after: bool = False) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answers.pop(0))
                await writer.drain()
                if self.close_after:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    async def __aenter__(self) -> URL:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return URL(f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/mcp?x=1")

    async def __aexit__(self, *exc) -> None:
        http1.close_all()
        self.server.close()


async def exchange(url: URL, body: bytes = b'{"a":1}') -> tuple[int, bytes]:
    head = http1.request_head("POST", url, {"Content-Type": "application/json"})
    response = await http1.post(url, head, body, connect_timeout=5, read_timeout=5)
    try:
        chunks = []
        while chunk := await response.readany():
            chunks.append(chunk)
        return response.status, b"".join(chunks)
    finally:
        response.release()


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.GATEWAY_EGRESS_ALLOW = "127.0.0.1"


async def test_bodies_by_length_and_by_chunks_on_one_kept_connection():
    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                        b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    async with server as url:
        assert await exchange(url) == (200, b"hello")
        assert await exchange(url) == (200, b"abcde")
        assert await exchange(url) == (202, b"")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nContent-Length: 7\r\n\r\n{\"a\":1}" in first and b"Accept-Encoding: identity" in first


async def test_a_body_until_close_is_read_whole_and_the_connection_not_kept():
    server = RawServer([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"] * 2, close_after=True)
    async with server as url:
        assert await exchange(url) == (200, b"until the end")
        assert await exchange(url) == (200, b"until the end")
    assert server.connections == 2


async def test_a_kept_connection_the_backend_closed_meanwhile_is_replaced_without_losing_the_request():
    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"] * 2, close_after=True)
    async with server as url:
        assert await exchange(url) == (200, b"ok")  # kept: the answer had a length, no Connection: close
        await asyncio.sleep(0.05)  # the server has closed it by now
        assert await exchange(url) == (200, b"ok")
    assert server.connections == 2 and len(server.requests) == 2


@pytest.mark.parametrize("answer, message", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP/1.x"),
    (b"HTTP/1.1 200 OK\r\nBroken header\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", "two different Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * (70 * 1024) + b"\r\n\r\n", "larger than"),
])
async def test_answers_that_are_not_readable_http_are_refused_with_a_reason(answer, message):
    async with RawServer([answer]) as url:
        with pytest.raises(http1.ProtocolError, match=message):
            await exchange(url)


async def test_a_backend_that_sends_nothing_times_out_at_the_first_byte_limit():
    async def silent(reader, writer):
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
    try:
        with pytest.raises(http1.ReadTimeout):
            await http1.post(url, http1.request_head("POST", url, {}), b"{}", connect_timeout=5, read_timeout=0.2)
    finally:
        server.close()


async def test_without_a_first_byte_limit_the_callers_deadline_ends_the_wait_and_the_connection():
    seen = []

    async def silent(reader, writer):
        seen.append(writer)
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
    try:
        with pytest.raises(TimeoutError) as raised:
            async with asyncio.timeout(0.2):
                await http1.post(url, http1.request_head("POST", url, {}), b"{}", connect_timeout=5, read_timeout=None)
        assert not isinstance(raised.value, http1.ReadTimeout)  # the caller's deadline, not a limit of the client's
        assert http1._pool().take(("http", "127.0.0.1", url.port)) is None  # the waiting connection was not kept
    finally:
        server.close()


async def test_a_body_that_stops_halfway_times_out_at_the_read_limit():
    async def halfway(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await asyncio.sleep(30)

    server = await asyncio.start_server(halfway, "127.0.0.1", 0)
    url = URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
    try:
        response = await http1.post(url, http1.request_head("POST", url, {}), b"{}", connect_timeout=5,
                                    read_timeout=0.2)
        assert await response.readany() == b"half"
        with pytest.raises(http1.ReadTimeout):
            await response.readany()
        response.release()
    finally:
        server.close()


async def test_new_connections_pass_the_egress_policy(settings):
    settings.GATEWAY_EGRESS_ALLOW = "127.0.0.1"
    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    async with server as url:
        denied = url.with_host("127.0.0.2")  # a loopback alias the policy denies by default
        with pytest.raises(egress.EgressRefused, match="127.0.0.2 is not allowed"):
            await exchange(denied)
        settings.GATEWAY_EGRESS_DENY = "127.0.0.1"
        with pytest.raises(egress.EgressRefused):
            await exchange(url)
    assert server.connections == 0


def test_header_values_with_line_breaks_are_never_written():
    with pytest.raises(ValueError, match="line break"):
        http1.request_head("POST", URL("http://127.0.0.1/"), {"X-Evil": "a\r\nInjected: 1"})
