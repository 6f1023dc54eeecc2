"""Load driver for the 2024-11-05 HTTP+SSE transport, which wrk cannot drive (it cannot hold a stream).

`load`: open K SSE streams, initialize each session, then each stream runs a closed loop: POST tools/call
to its message endpoint (a keep-alive connection of its own) and wait for the result event on its
stream. Prints one JSON line: throughput, latency percentiles, errors and the driver's own CPU share.
`idle`: open K streams, print a READY line, hold them until stdin closes, then check a few still answer.

HTTP/1.1 is spoken directly over asyncio streams (requests pre-formatted, responses parsed minimally) so
that the driver costs far less per call than the servers it drives; its CPU share is reported to show it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urljoin, urlsplit

try:  # the harness runs this with uvloop when its venv has it
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class HttpError(Exception):
    pass


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])
    return b""


def request_bytes(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Stream:
    """One SSE session: a GET stream, the message URL it announced, and a keep-alive connection for POSTs."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname, parts.port or 80
        self.hostport = parts.netloc
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        loop = asyncio.get_running_loop()
        self.endpoint: asyncio.Future = loop.create_future()
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.reader_task: asyncio.Task | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.post_reader: asyncio.StreamReader | None = None
        self.post_writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request_bytes("GET", self.path, self.hostport, {"Accept": "text/event-stream"}))
        status, headers = await read_head(reader)
        if status != 200:
            raise HttpError(f"GET {self.url} -> {status}")
        self.reader_task = asyncio.get_running_loop().create_task(self._read(reader, headers))
        endpoint = await asyncio.wait_for(self.endpoint, 30)
        parts = urlsplit(urljoin(self.url, endpoint))
        self.message_path = parts.path + (f"?{parts.query}" if parts.query else "")

    async def _chunks(self, reader: asyncio.StreamReader, headers: dict[bytes, bytes]):
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    return
                yield (await reader.readexactly(size + 2))[:-2]
        else:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                yield data

    async def _read(self, reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> None:
        event, data, pending = b"message", [], b""
        try:
            async for chunk in self._chunks(reader, headers):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.rstrip(b"\r")
                    if not line:
                        if data:
                            self._event(event, b"\n".join(data))
                        event, data = b"message", []
                    elif line[:1] == b":":
                        continue
                    else:
                        name, _, value = line.partition(b":")
                        if value[:1] == b" ":
                            value = value[1:]
                        if name == b"event":
                            event = value
                        elif name == b"data":
                            data.append(value)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if not self.endpoint.done():
                self.endpoint.set_exception(HttpError("stream closed before the endpoint event"))
            self.messages.put_nowait(b"")  # wakes a waiter: the stream is gone

    def _event(self, event: bytes, data: bytes) -> None:
        if event == b"endpoint":
            if not self.endpoint.done():
                self.endpoint.set_result(data.decode())
        elif event == b"message":
            self.messages.put_nowait(data)

    def post_request(self, message: dict) -> bytes:
        return request_bytes("POST", self.message_path, self.hostport, {"Content-Type": "application/json"},
                             json.dumps(message, separators=(",", ":")).encode())

    async def post(self, raw: bytes) -> int:
        if self.post_writer is None:
            self.post_reader, self.post_writer = await asyncio.open_connection(self.host, self.port)
        self.post_writer.write(raw)
        status, headers = await read_head(self.post_reader)
        await read_body(self.post_reader, headers)
        if headers.get(b"connection", b"").lower() == b"close":
            self.post_writer.close()
            self.post_writer = None
        return status

    async def rpc(self, method: str, params: dict, msg_id: int = 1, timeout: float = 30.0) -> bytes:
        status = await self.post(self.post_request({"jsonrpc": "2.0", "id": msg_id, "method": method,
                                                    "params": params}))
        if status not in (200, 202):
            raise HttpError(f"POST {method} -> {status}")
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def initialize(self) -> None:
        await self.rpc("initialize", {"protocolVersion": "2024-11-05", "capabilities": {},
                                      "clientInfo": {"name": "bench-sse-driver", "version": "1"}})
        status = await self.post(self.post_request({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        if status not in (200, 202):
            raise HttpError(f"POST notifications/initialized -> {status}")

    async def close(self) -> None:
        if self.reader_task:
            self.reader_task.cancel()
        for writer in (self.writer, self.post_writer):
            if writer is not None:
                writer.close()


def good(body: bytes, expect: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    result = message.get("result")
    return isinstance(result, dict) and not result.get("isError") and expect in body


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def open_streams(url: str, count: int, *, initialize: bool, parallel: int = 64):
    gate = asyncio.Semaphore(parallel)
    streams: list[Stream] = []
    failures: list[str] = []

    async def one() -> None:
        async with gate:
            stream = Stream(url)
            try:
                await stream.open()
                if initialize:
                    await stream.initialize()
                streams.append(stream)
            except Exception as exc:  # counted and reported, not raised
                failures.append(f"{type(exc).__name__}: {exc}")
                await stream.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return streams, failures


async def load(args) -> dict:
    streams, failures = await open_streams(args.url, args.streams, initialize=True)
    arguments = json.loads(args.arguments)
    expect = args.expect.encode()
    latencies: list[float] = []
    errors = {"post_status": 0, "bad_result": 0, "timeouts": 0, "stream_lost": 0}
    samples: list[str] = []
    clock = time.perf_counter
    start = clock() + args.warmup
    end = start + args.duration
    counted = 0

    async def worker(stream: Stream) -> None:
        nonlocal counted
        raw = stream.post_request({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                   "params": {"name": args.tool, "arguments": arguments}})
        while True:
            t0 = clock()
            if t0 >= end:
                return
            body = b""
            try:
                status = await stream.post(raw)
                if status not in (200, 202):
                    problem, body = "post_status", f"HTTP {status}".encode()
                else:
                    body = await asyncio.wait_for(stream.messages.get(), args.timeout)
                    problem = None if good(body, expect) else ("stream_lost" if not body else "bad_result")
            except asyncio.TimeoutError:
                problem = "timeouts"
            except (asyncio.IncompleteReadError, ConnectionError, HttpError) as exc:
                problem, body = "post_status", repr(exc).encode()
                stream.post_writer = None
            t1 = clock()
            # A call that started in the window and failed counts even if it failed after the window
            # (a lost result times out late); a success counts when it also finished in the window.
            if start <= t0 and problem:
                errors[problem] += 1
                if len(samples) < 5:
                    samples.append(f"{problem}: {body[:300]!r}")
            elif start <= t0 and t1 <= end:
                counted += 1
                latencies.append(t1 - t0)
            if problem == "stream_lost":
                return

    marks: dict[str, float] = {}

    async def mark() -> None:
        await asyncio.sleep(max(0.0, start - clock()))
        marks["start"] = cpu_seconds()
        print("MARK start", flush=True)  # the harness reads the servers' CPU time at these marks
        await asyncio.sleep(max(0.0, end - clock()))
        marks["end"] = cpu_seconds()
        print("MARK end", flush=True)

    await asyncio.gather(mark(), *(worker(s) for s in streams))
    for stream in streams:
        await stream.close()
    latencies.sort()
    cpu = marks.get("end", cpu_seconds()) - marks.get("start", 0.0)
    return {
        "streams_requested": args.streams, "streams_open": len(streams), "open_failures": len(failures),
        "open_failure_samples": failures[:5], "requests": counted + sum(errors.values()), "ok": counted,
        "duration_s": args.duration, "rps": counted / args.duration, "errors": errors, "error_samples": samples,
        "p50_ms": percentile(latencies, 50) * 1000, "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": (sum(latencies) / len(latencies) * 1000) if latencies else 0.0,
        "driver_cpu_s": cpu, "driver_cpu_share": cpu / args.duration,
        "event_loop": "uvloop" if uvloop is not None else "asyncio",
    }


async def idle(args) -> dict:
    t0 = time.monotonic()
    streams, failures = await open_streams(args.url, args.streams, initialize=False, parallel=100)
    opened_in = time.monotonic() - t0
    print("READY " + json.dumps({"streams_open": len(streams), "open_failures": len(failures),
                                 "open_failure_samples": failures[:5], "opened_in_s": round(opened_in, 3)}),
          flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the harness closes stdin
    alive = sum(1 for s in streams if s.reader_task is not None and not s.reader_task.done())
    # A few streams must still work end to end after idling.
    probes = streams[:: max(1, len(streams) // 10)][:10]
    answered = 0
    for stream in probes:
        try:
            await stream.initialize()
            body = await stream.rpc("tools/call", {"name": args.tool, "arguments": json.loads(args.arguments)},
                                    msg_id=2)
            answered += good(body, args.expect.encode())
        except Exception:
            pass
    for stream in streams:
        await stream.close()
    return {"streams_open": len(streams), "open_failures": len(failures), "still_open": alive,
            "probes": len(probes), "probes_answered": answered, "opened_in_s": round(opened_in, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["load", "idle"])
    parser.add_argument("--url", required=True, help="SSE endpoint, e.g. http://127.0.0.1:8000/mcp-servers/bench/sse")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a result (wrk: --timeout 10s)")
    parser.add_argument("--tool", default="getPet")
    parser.add_argument("--arguments", default='{"petId": 1}')
    parser.add_argument("--expect", default="Rex", help="text a good result contains")
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()
    result = asyncio.run(load(args) if args.mode == "load" else idle(args))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
