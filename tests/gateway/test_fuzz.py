"""Seeded fuzzing of the gateway: hostile bodies, headers and arguments on both transports and every revision.

Most messages go through the real ASGI application in-process (the demo API, the tools' backend, is served
by uvicorn on loopback); a share goes as raw bytes to a live Daphne server so its header parsing is covered.
Every answer must be below 500, well formed and on time (a per-request hang detector, not a speed limit),
and the gateway must be healthy afterwards. MCP_FUZZ_SEED changes the seed; MCP_FUZZ_MESSAGES the count.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time

import pytest

from gateway import protocol as p

SEED = int(os.environ.get("MCP_FUZZ_SEED", "20261202"))
MESSAGES = int(os.environ.get("MCP_FUZZ_MESSAGES", "10000"))
LIVE_MESSAGES = int(os.environ.get("MCP_FUZZ_LIVE_MESSAGES", "1000"))
REQUEST_TIMEOUT = 20.0  # seconds one exchange may take before it counts as a hang
PATH = "/mcp-servers/petstore"
TOOLS = ["listPets", "getPet", "createPet", "updatePet", "deletePet", "getPetJson"]
ALL_VERSIONS = list(p.SUPPORTED_VERSIONS)
STATUSES = {200, 202, 204, 400, 403, 404, 405, 406, 413}


# ------------------------------------------------------------------------------------------------ generators

class Gen:
    """Hostile values, messages, bodies and headers, all drawn from one seeded random source."""

    def __init__(self, rnd: random.Random):
        self.r = rnd

    def chance(self, p_: float) -> bool:
        return self.r.random() < p_

    def text(self) -> str:
        r = self.r
        return r.choice([
            "", " ", "x", "petstore", "tools/call", "../../etc/passwd", "\x00", "\u202e\u200b", "😀" * r.randint(1, 50),
            "é" * r.randint(1, 300), "a" * r.randint(1000, 70_000), "{{.config}}", "%s%n%x", "' OR 1=1 --",
            "\r\nX-Injected: 1", "\ufeff", "\uffff", "日本語", "[" * r.randint(1, 3000), "{\"a\":" * 200,
            json.dumps([[[[1]]]]), str(r.randint(-10**20, 10**20)), "1e999", "NaN", "true",
        ])

    def value(self, depth: int = 0) -> object:
        r = self.r
        roll = r.random()
        if roll < 0.55 or depth > 3:
            return r.choice([
                None, True, False, 0, -1, 1, 2**31, 2**63, -2**63 - 1, 10**300, 1.5, -0.0, 1e308, 5e-324,
                self.text(), self.text(), int("9" * r.randint(1, 4000)),
            ])
        if roll < 0.8:
            return [self.value(depth + 1) for _ in range(r.randint(0, 5))]
        return {self.text()[:50]: self.value(depth + 1) for _ in range(r.randint(0, 5))}

    def msg_id(self) -> object:
        return self.r.choice([1, 0, -7, 2**53, 2**70, "abc", "", "x" * 500, None, True, 1.5, [], {}, self.r.randint(1, 10**6)])

    def arguments(self, tool: str) -> object:
        r = self.r
        if self.chance(0.1):
            return self.value()
        if self.chance(0.6):  # plausible arguments, one of them hostile: these reach the backend
            args = {"petId": r.randint(1, 8), "name": "fuzz", "tag": "dog", "status": "available", "limit": 5}
            args = {k: v for k, v in args.items() if self.chance(0.8)}
            if self.chance(0.7):
                args[r.choice(["name", "tag", "petId", "limit", "offset", "status"])] = r.choice(
                    [self.text(), self.value(), str(r.randint(-5, 10))])
            return args
        args = {}
        for name in r.sample(["petId", "name", "tag", "status", "limit", "offset", "extra", "_meta"], r.randint(0, 4)):
            args[name] = r.choice([self.value(), r.randint(1, 6), "available", str(r.randint(1, 6)),
                                   "[" + "[" * r.randint(50, 2000) + "]", "[1,2,3]", '{"a":1}'])
        return args

    def message(self, version: str) -> dict:
        r = self.r
        method = r.choice(["ping", "tools/list", "tools/call", "tools/call", "tools/call", "initialize",
                           "notifications/initialized", "server/discover", "resources/list", "nope", ""])
        msg: dict = {"jsonrpc": "2.0", "id": r.randint(1, 10**9), "method": method}
        params: dict = {}
        if method == "tools/call":
            params = {"name": r.choice(TOOLS + ["", "unknown", "getPet\x00"]), "arguments": {}}
            params["arguments"] = self.arguments(params["name"])
        elif method == "tools/list" and self.chance(0.5):
            params["cursor"] = r.choice(["", "bzox", "bzotMQ", "o:1", self.value()])
        elif method == "initialize":
            params = {"protocolVersion": r.choice(ALL_VERSIONS + ["bogus", ""]), "capabilities": {},
                      "clientInfo": r.choice([{"name": "fuzz", "version": "1"}, self.value(),
                                              {"name": self.text(), "version": self.value(), "x": self.value()}])}
        if version == p.V2026_07_28:
            params["_meta"] = {p.META_PROTOCOL_VERSION: version}
        elif self.chance(0.1):
            params["_meta"] = {"progressToken": self.value()}
        if params or self.chance(0.5):
            msg["params"] = params
        if method.startswith("notifications/") and self.chance(0.8):
            del msg["id"]
        return self.mutate(msg)

    def mutate(self, msg: dict) -> object:
        """Wrong types in the fields: id, method, params, arguments, _meta, cursor, protocolVersion, jsonrpc."""
        r = self.r
        for _ in range(r.choice([0, 0, 0, 1, 1, 2, 3])):
            field = r.choice(["id", "method", "params", "jsonrpc", "arguments", "_meta", "cursor", "protocolVersion",
                              "name", "drop", "extra"])
            params = msg.get("params") if isinstance(msg.get("params"), dict) else None
            if field in ("id", "method", "params", "jsonrpc"):
                msg[field] = self.value() if field != "id" else self.msg_id()
            elif field == "drop" and msg:
                msg.pop(r.choice(list(msg)))
            elif field == "extra":
                msg[self.text()[:30]] = self.value()
            elif params is not None:
                if field == "arguments":
                    params["arguments"] = self.value()
                elif field == "_meta":
                    params["_meta"] = r.choice([self.value(), {p.META_PROTOCOL_VERSION: self.value()}])
                else:
                    params[field] = self.value()
        if self.chance(0.03):
            return self.value()  # not an object at all
        return msg

    def raw_body(self, message: object) -> bytes:
        """The message as bytes, or a broken relative of it."""
        r = self.r
        try:
            body = json.dumps(message, ensure_ascii=self.chance(0.5)).encode("utf-8", "surrogatepass")
        except (ValueError, OverflowError):
            body = b"{}"
        roll = r.random()
        if roll < 0.70:
            return body
        if roll < 0.76:
            return body[: r.randint(0, max(0, len(body) - 1))]  # truncated
        if roll < 0.80:
            n = r.randint(60, 20_000)
            return r.choice([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
        if roll < 0.83:
            return b"[" + b",".join([b"0"] * r.randint(100_001, 150_000)) + b"]"
        if roll < 0.87:
            return r.choice([b"1e999", b"-1e99999", b"NaN", b"[Infinity]", b"9" * 5000, b'{"id":1e400}',
                             b'{"jsonrpc":"2.0","id":' + b"9" * 400 + b',"method":"ping"}'])
        if roll < 0.91:
            return r.choice([b'"\\ud800"', b'{"jsonrpc":"2.0","id":1,"method":"\\udfff"}', b"\xff\xfe{}",
                             b'{"a":"\xed\xa0\x80"}', b"\xef\xbb\xbf{}", b"\x00" * 10, b'{"a":"\xc3"}'])
        if roll < 0.95:
            return bytes(r.getrandbits(8) for _ in range(r.randint(1, 200)))
        if roll < 0.97:
            return r.choice([b"", b"   ", b"\n", b"null", b"[]", b"{}", b"[[]]", b"[1]", b'"x"', b"true"])
        return body + r.choice([b"}", b"]", b",", b"garbage", b" " * 1000])

    def batch(self, version: str) -> list:
        r = self.r
        n = r.choice([0, 1, 2, 5, 20, 101, 300])
        return [self.message(version) if self.chance(0.9) else self.value() for _ in range(n)]

    def header_value(self) -> bytes:
        r = self.r
        return r.choice([
            b"", b" ", b"x" * r.randint(1, 8000), "é".encode("latin-1"), b"\xff\xfe", b"\t", b"a, b, c",
            "2025-06-18".encode(), b"2026-07-28", b"2024-11-05", b"1999-01-01", b"*/*", b"null",
        ])

    def headers(self, base: dict[str, bytes]) -> list[tuple[bytes, bytes]]:
        r = self.r
        headers = dict(base)
        for _ in range(r.choice([0, 0, 0, 0, 0, 1, 1, 2, 3])):
            name = r.choice([b"mcp-session-id", b"mcp-protocol-version", b"accept", b"content-type", b"origin",
                             b"host", b"mcp-method", b"mcp-name", b"authorization", b"last-event-id",
                             b"x-" + bytes(r.choice(b"abcdef") for _ in range(5))])
            if self.chance(0.15):
                headers.pop(name, None)
                continue
            headers[name] = r.choice([
                self.header_value(),
                b"text/event-stream", b"application/json", b"text/plain", b"application/json; charset=latin-1",
                b"multipart/form-data; boundary=x", b"http://evil.example", b"http://127.0.0.1:8000", b"null",
                b"file://", b"http://[::1", b"127.0.0.1:99999", b"[::1]:80", b"localhost", b"a.b.c.d.e" * 50,
                p.SUPPORTED_VERSIONS[r.randrange(len(p.SUPPORTED_VERSIONS))].encode(),
            ])
        out = list(headers.items())
        if self.chance(0.05):  # a header given twice
            out.append(r.choice(out) if out else (b"accept", b"*/*"))
        return out


# ------------------------------------------------------------------------------------------------ checking answers

class Failures(list):
    def add(self, what: str, request: str) -> None:
        if len(self) < 50:
            self.append(f"{what}\n    request: {request[:400]}")


def rpc_ok(obj: object) -> bool:
    """A JSON-RPC response object: jsonrpc 2.0 and exactly one of result and error, a well-formed error."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0" or "id" not in obj:
        return False
    if ("result" in obj) == ("error" in obj):
        return False
    if "error" in obj:
        err = obj["error"]
        return isinstance(err, dict) and type(err.get("code")) is int and isinstance(err.get("message"), str)
    return True


def sent_ids(body: bytes) -> set:
    """The ids (as JSON text) of the requests a body holds, read from the bytes actually sent."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return set()
    messages = message if isinstance(message, list) else [message]
    ids = set()
    for m in messages:
        if isinstance(m, dict) and "id" in m and isinstance(m.get("id"), (int, str)) and not isinstance(m["id"], bool):
            ids.add(json.dumps(m["id"]))
    return ids


def is_request(body: bytes) -> bool:
    try:
        m = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return (isinstance(m, dict) and m.get("jsonrpc") == "2.0" and isinstance(m.get("method"), str)
            and bool(m["method"]) and bool(sent_ids(body)))


def sse_data(body: bytes) -> list[bytes]:
    out = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        data = b"\n".join(lines)
        if data:
            out.append(data)
    return out


def check_answer(failures: Failures, desc: str, status: int, headers: dict, body: bytes, ids: set | None) -> None:
    """The HTTP answer's status is one the gateway means, and a JSON or event-stream body holds JSON-RPC."""
    if status >= 500 or status not in STATUSES:
        failures.add(f"status {status}: {body[:300]!r}", desc)
        return
    ctype = headers.get("content-type", "")
    if status in (202, 204):
        if body not in (b"", b"Accepted"):
            failures.add(f"{status} with a body {body[:100]!r}", desc)
        return
    if ctype.startswith("text/event-stream"):
        payloads = sse_data(body)
    elif ctype.startswith("application/json"):
        payloads = [body]
    else:
        failures.add(f"status {status} with content-type {ctype!r}", desc)
        return
    for raw in payloads:
        try:
            obj = json.loads(raw)
        except ValueError:
            failures.add(f"answer is not JSON: {raw[:200]!r}", desc)
            continue
        items = obj if isinstance(obj, list) else [obj]
        for item in items:
            if not rpc_ok(item):
                failures.add(f"not a JSON-RPC response: {json.dumps(item)[:300]}", desc)
                continue
            err = item.get("error")
            if err and err["code"] == p.INTERNAL_ERROR and "Internal" in err["message"]:
                failures.add(f"internal error: {err}", desc)
            if ids is not None and item["id"] is not None and json.dumps(item["id"]) not in ids:
                failures.add(f"answer id {item['id']!r} is none of the request's", desc)
            if ids is not None and "result" in item and item["id"] is None:
                failures.add("a result without the request's id", desc)
        if status != 200 and isinstance(obj, dict) and "result" in obj:
            failures.add(f"a result with status {status}", desc)
        if status == 400 and isinstance(obj, dict) and "error" in obj and obj["error"]["code"] > 0:
            failures.add(f"a 400 with a non-JSON-RPC error code {obj['error']}", desc)


# ------------------------------------------------------------------------------------------------ in-process ASGI

class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.done = asyncio.Event()


async def asgi_exchange(app, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"",
                        query: bytes = b"", stream_until: bytes | None = None) -> Answer:
    """One HTTP exchange with the ASGI app; an event stream is read until `stream_until` appears, then left."""
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    leave = asyncio.Event()
    answer = Answer()

    async def receive():
        if incoming:
            return incoming.pop(0)
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]}
            if answer.headers.get("content-type", "").startswith("text/event-stream") and stream_until is None:
                leave.set()
        else:
            answer.body += message.get("body", b"")
            if stream_until is not None and stream_until in answer.body:
                leave.set()
            if not message.get("more_body", False):
                answer.done.set()

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode("utf-8", "replace"),
             "query_string": query, "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 8000)}
    task = asyncio.ensure_future(app(scope, receive, send))
    try:
        await asyncio.wait_for(asyncio.shield(task), REQUEST_TIMEOUT)
    except asyncio.TimeoutError:
        task.cancel()
        raise
    finally:
        leave.set()
    return answer


def base_headers(version: str | None, sid: str | None, accept: bytes = b"application/json, text/event-stream"):
    headers = {b"host": b"127.0.0.1:8000", b"accept": accept, b"content-type": b"application/json"}
    if version:
        headers[b"mcp-protocol-version"] = version.encode()
    if sid:
        headers[b"mcp-session-id"] = sid.encode()
    return headers


def stateless_headers(msg: object) -> dict[bytes, bytes]:
    headers = base_headers(p.V2026_07_28, None)
    if isinstance(msg, dict):
        if isinstance(msg.get("method"), str):
            headers[b"mcp-method"] = msg["method"].encode("utf-8", "replace")
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if isinstance(params.get("name"), str):
            headers[b"mcp-name"] = params["name"].encode("utf-8", "replace")
    return headers


class DemoBackend:
    """The console's ASGI app (its demo API is the petstore tools' backend) served by uvicorn on loopback."""

    def __init__(self) -> None:
        import socket

        import uvicorn
        from django.core.asgi import get_asgi_application

        django_app = get_asgi_application()
        self.statuses: list[tuple[int, str]] = []

        async def recording(scope, receive, send):
            async def tap(message):
                if message["type"] == "http.response.start":
                    self.statuses.append((message["status"], scope.get("path", "")))
                await send(message)
            await django_app(scope, receive, tap)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(recording, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()


async def count_sessions(state) -> int:
    from gateway.state.memory import MemoryState
    from gateway.state.redis import PREFIX

    if isinstance(state, MemoryState):
        return len(state._sessions)
    return len(await state._client.keys(PREFIX + "session:*"))


@pytest.fixture
def demo_backend(transactional_db):
    from console.demo_seed import seed_demo

    with DemoBackend() as backend:
        seed_demo(admin_password="admin-pass-1", host="127.0.0.1", port=backend.port)
        yield backend
    # Configuration reads on worker threads leave connections behind; they must not outlive the test database.
    # Threads that ended drop theirs only when collected.
    import gc

    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    gc.collect()


async def test_fuzz_in_process(demo_backend, caplog):
    """≥ 10,000 hostile exchanges through the real ASGI app: no 5xx, well-formed answers, no hang, healthy after."""
    from gateway.asgi import app
    from gateway.state import get_state
    from gateway.transport import sse as sse_transport

    print(f"\nfuzz seed {SEED} (set MCP_FUZZ_SEED to change), {MESSAGES} in-process messages")
    caplog.set_level(logging.ERROR, logger="gateway")
    gen = Gen(random.Random(SEED))
    failures = Failures()
    stats: dict[str, int] = {}
    tasks_before = len(asyncio.all_tasks())
    sessions_before = await count_sessions(get_state())
    minted: set[str] = set()  # distinct session ids the gateway handed out

    async def exchange(desc, method, path, headers, body=b"", query=b"", ids=None, stream_until=None):
        try:
            answer = await asgi_exchange(app, method, path, headers, body, query, stream_until)
        except asyncio.TimeoutError:
            failures.add(f"no answer within {REQUEST_TIMEOUT} s", desc)
            return None
        stats[f"{method} {answer.status}"] = stats.get(f"{method} {answer.status}", 0) + 1
        check_answer(failures, desc, answer.status, answer.headers, bytes(answer.body), ids)
        if "mcp-session-id" in answer.headers:
            minted.add(answer.headers["mcp-session-id"])
        return answer

    async def open_session(version: str) -> str | None:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}}).encode()
        answer = await exchange(f"initialize {version}", "POST", PATH, list(base_headers(None, None).items()), body)
        return answer.headers.get("mcp-session-id") if answer else None

    sessions = {v: await open_session(v) for v in p.HANDSHAKE_VERSIONS}
    ended: list[str] = ["ended-long-ago"]
    assert all(sessions.values()), sessions
    sent = 0
    while sent < MESSAGES:
        roll = gen.r.random()
        version = gen.r.choice(ALL_VERSIONS)
        if roll < 0.80:  # Streamable HTTP POST
            if version == p.V2026_07_28:
                msg = gen.message(version)
                base = stateless_headers(msg)
            else:
                msg = gen.batch(version) if gen.chance(0.08) else gen.message(version)
                sid = gen.r.choice([sessions[version]] * 6 + [None, "unknown", "x" * 300, gen.r.choice(ended),
                                                              sessions[gen.r.choice(p.HANDSHAKE_VERSIONS)]])
                base = base_headers(version if gen.chance(0.8) else None, sid)
            body = gen.raw_body(msg)
            headers = gen.headers(base)
            desc = f"POST {headers!r} {body[:300]!r}"
            await exchange(desc, "POST", PATH, headers, body, ids=sent_ids(body))
            sent += 1
        elif roll < 0.86:  # Streamable HTTP GET and DELETE, other methods, other paths
            method = gen.r.choice(["GET", "GET", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])
            sid = gen.r.choice([sessions.get(version)] * 3 + [None, "unknown", "ä" * 40])
            headers = gen.headers(base_headers(version, sid, accept=gen.r.choice(
                [b"text/event-stream", b"application/json", b"*/*"])))
            path = gen.r.choice([PATH, PATH, PATH + "/", "/mcp-servers/nope", "/mcp-servers/petstore/x",
                                 "/mcp-servers/" + "a" * 500, "/mcp-servers/%00", "/mcp-servers/default/petstore"])
            await exchange(f"{method} {path} {headers!r}", method, path, headers)
            sent += 1
        elif roll < 0.97:  # SSE: a stream, hostile POSTs to its message endpoint, answers read off the stream
            sent += await fuzz_sse(gen, exchange, failures)
        else:  # a session ends mid-run; later messages meet an expired session and open a new one
            if version in sessions and gen.chance(0.5):
                sid = sessions[version]
                await exchange("DELETE session", "DELETE", PATH, list(base_headers(version, sid).items()))
                ended.append(sid)
                sessions[version] = await open_session(version)
                sent += 2

    # Healthy afterwards: initialize, tools/call and the SSE transport still work; nothing left running.
    for _ in range(50):
        if not sse_transport._background:
            break
        await asyncio.sleep(0.1)
    assert not sse_transport._background, "SSE answers still running after the fuzz run"
    sid = await open_session(p.LATEST_HANDSHAKE)
    call = {"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": "listPets", "arguments": {}}}
    answer = await asgi_exchange(app, "POST", PATH, list(base_headers(p.LATEST_HANDSHAKE, sid).items()),
                                 json.dumps(call).encode())
    result = json.loads(bytes(answer.body))
    assert answer.status == 200 and result["id"] == 99 and result["result"]["isError"] is False, result
    assert "pet(s) match" in result["result"]["content"][0]["text"]
    await asyncio.sleep(0.2)
    assert len(asyncio.all_tasks()) <= tasks_before + 2, asyncio.all_tasks()
    state = get_state()
    # Every session left is one handed out by initialize (SSE sessions end with their streams).
    assert await count_sessions(state) - sessions_before <= len(minted)
    subscribers = state._subscribers if hasattr(state, "_subscribers") else state._hub._subs
    assert not subscribers, "event-stream subscriptions outlived their streams"

    from gateway.backends import close_http_sessions

    await close_http_sessions()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    backend_5xx = [s for s in demo_backend.statuses if s[0] >= 500]
    print(f"fuzz answers by method and status: {dict(sorted(stats.items()))}")
    print(f"backend calls: {len(demo_backend.statuses)}")
    assert sent >= MESSAGES
    assert len(demo_backend.statuses) >= MESSAGES // 100, "too few tool calls reached the backend to mean much"
    assert not failures, f"{len(failures)} bad answers (seed {SEED}):\n" + "\n".join(failures)
    assert not errors, f"gateway logged errors (seed {SEED}): {errors[:5]}"
    assert not backend_5xx, f"the demo API answered 5xx: {backend_5xx[:5]}"


async def fuzz_sse(gen: Gen, exchange, failures: Failures) -> int:
    """Open an SSE stream, post hostile messages to its endpoint, and check what comes back on the stream."""
    from gateway.asgi import app

    r = gen.r
    stream_headers = gen.headers({b"host": b"127.0.0.1:8000", b"accept": b"text/event-stream"})
    posted_ids: set = set()
    expected = 0
    leave = asyncio.Event()
    chunks = bytearray()
    started = asyncio.Event()
    status: list[int] = []

    async def receive():
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
            started.set()
        else:
            chunks.extend(message.get("body", b""))
            if not status or status[0] != 200 or not message.get("more_body", False):
                started.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": PATH + "/sse", "raw_path": (PATH + "/sse").encode(), "query_string": b"", "root_path": "",
             "headers": stream_headers, "client": ("127.0.0.1", 40001), "server": ("127.0.0.1", 8000)}
    stream = asyncio.ensure_future(app(scope, receive, send))
    try:
        await asyncio.wait_for(started.wait(), REQUEST_TIMEOUT)
        for _ in range(100):
            if b"\n\n" in chunks or stream.done():
                break
            await asyncio.sleep(0.01)
    except asyncio.TimeoutError:
        failures.add("SSE stream did not start", repr(stream_headers))
        leave.set()
        stream.cancel()
        return 1
    if not status or status[0] != 200:
        leave.set()
        await asyncio.wait_for(stream, REQUEST_TIMEOUT)
        check_answer(failures, f"GET /sse {stream_headers!r}", status[0] if status else 0,
                     {"content-type": "application/json"}, bytes(chunks), None)
        return 1
    first = sse_data(bytes(chunks))
    endpoint = first[0].decode() if first else ""
    if not endpoint.startswith(PATH + "/message?sessionId="):
        failures.add(f"SSE stream did not announce its endpoint: {bytes(chunks)[:200]!r}", "GET /sse")
    sid = endpoint.partition("sessionId=")[2]
    sent = 1
    for i in range(r.randint(3, 30)):
        version = r.choice([p.V2024_11_05, p.V2026_07_28])
        msg = gen.message(version)
        if i == 0 and r.random() < 0.7:
            msg = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": p.V2024_11_05}}
        body = gen.raw_body(msg)
        query = r.choice([f"sessionId={sid}"] * 8 + ["", "sessionId=unknown", "session_id=" + sid,
                                                     "sessionId=" + "z" * 3000, "sessionId=%ff%fe"]).encode()
        method = r.choice(["POST"] * 15 + ["GET", "DELETE"])
        headers = gen.headers({b"host": b"127.0.0.1:8000", b"content-type": b"application/json"})
        answer = await exchange(f"{method} /message?{query[:80]!r} {headers!r} {body[:300]!r}", method,
                                PATH + "/message", headers, body, query, sent_ids(body))
        sent += 1
        if answer is not None and answer.status == 202 and is_request(body):
            posted_ids |= sent_ids(body)
            expected += 1
    # Every request the endpoint accepted is answered on the stream, with its id, as JSON-RPC.
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while time.monotonic() < deadline and len(sse_data(bytes(chunks))) - 1 < expected and not stream.done():
        await asyncio.sleep(0.02)
    events = sse_data(bytes(chunks))[1:]
    if len(events) < expected:
        failures.add(f"SSE stream carried {len(events)} answers for {expected} accepted requests", f"session {sid}")
    for data in events:
        check_answer(failures, f"SSE event on {sid}", 200, {"content-type": "application/json"}, data, posted_ids)
    leave.set()
    try:
        await asyncio.wait_for(stream, REQUEST_TIMEOUT)
    except asyncio.TimeoutError:
        failures.add("SSE stream did not end after the client left", f"session {sid}")
    return sent


# ------------------------------------------------------------------------------------------------ live Daphne

async def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes to the server; the status, headers and (for non-streams) body of its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        body = b""
        if headers.get("content-type", "").startswith("text/event-stream"):
            pass  # a stream stays open: its status and headers are what is checked here
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.read()
        return status, headers, body
    finally:
        writer.close()


@pytest.mark.live
async def test_fuzz_live_daphne(demo_server):
    """A share of the messages as raw HTTP to a live Daphne server, so its header parsing meets them too."""
    port = int(demo_server.url.rsplit(":", 1)[1])
    print(f"\nfuzz seed {SEED} (set MCP_FUZZ_SEED to change), {LIVE_MESSAGES} live messages")
    gen = Gen(random.Random(SEED + 1))
    failures = Failures()
    log_start = len(demo_server.log_text())  # the server is shared: judge only this test's part of its log

    def http_request(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1".encode()]
        names = {k.lower() for k, _ in headers}
        if b"host" not in names:
            headers = [(b"host", f"127.0.0.1:{port}".encode())] + headers
        for k, v in headers:
            lines.append(k + b": " + v.replace(b"\r", b"").replace(b"\n", b""))
        lines.append(b"content-length: " + str(len(body)).encode())
        lines.append(b"connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    refused = 0

    async def one(desc: str, request: bytes, ids) -> None:
        nonlocal refused
        head = request.partition(b"\r\n\r\n")[0]
        # Beyond Twisted's header limits Daphne answers 400 and drops the connection before the gateway sees the
        # request; the drop can overtake the 400 while the client is still sending, so either ends the exchange.
        oversized = len(head) > 16384 or head.count(b"\r\n") > 500
        # Twisted also answers a bare 400 itself for a NUL in a header and for a multipart body it cannot parse.
        server_refuses = b"\x00" in head or b"content-type: multipart/form-data" in head.lower()
        try:
            status, headers, body = await asyncio.wait_for(raw_exchange(port, request), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            failures.add(f"no answer within {REQUEST_TIMEOUT} s", desc)
            return
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if oversized:
                refused += 1
            else:
                failures.add(f"broken answer: {exc!r}", desc)
            return
        except (ValueError, IndexError) as exc:
            failures.add(f"broken answer: {exc!r}", desc)
            return
        if oversized or (server_refuses and status == 400 and not headers.get("content-type")):
            refused += 1
            if status != 400:
                failures.add(f"an oversized request got {status}", desc)
            return
        check_answer(failures, desc, status, headers, body if not headers.get("content-type", "").startswith(
            "text/event-stream") else b"", ids)

    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": p.LATEST_HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}})
    status, headers, _ = await raw_exchange(port, http_request("POST", PATH, [
        (b"accept", b"application/json, text/event-stream"), (b"content-type", b"application/json")], init.encode()))
    sid = headers["mcp-session-id"]
    jobs = []
    for i in range(LIVE_MESSAGES):
        version = gen.r.choice(ALL_VERSIONS)
        msg = gen.message(version)
        base = stateless_headers(msg) if version == p.V2026_07_28 else base_headers(
            version if version != p.V2024_11_05 else p.LATEST_HANDSHAKE, gen.r.choice([sid, sid, None, "nope"]))
        base.pop(b"host")
        headers = gen.headers(base)
        if gen.chance(0.1):
            headers.append((b"x-big", b"y" * gen.r.randint(10_000, 100_000)))
        if gen.chance(0.05):
            headers.extend((f"x-many-{n}".encode(), b"1") for n in range(gen.r.randint(100, 500)))
        method = gen.r.choice(["POST"] * 8 + ["GET", "DELETE"])
        path = gen.r.choice([PATH] * 8 + [PATH + "/sse", PATH + "/message?sessionId=unknown"])
        body = gen.raw_body(msg) if method == "POST" else b""
        jobs.append(one(f"{method} {path} {headers!r:.300} {body[:200]!r}", http_request(method, path, headers, body),
                        sent_ids(body)))
        if len(jobs) == 8:
            await asyncio.gather(*jobs)
            jobs = []
    await asyncio.gather(*jobs)

    # Healthy afterwards: a new session and a tool call through the real server.
    import httpx

    with httpx.Client(base_url=demo_server.url, timeout=15,
                      headers={"Accept": "application/json, text/event-stream"}) as client:
        response = client.post(PATH, content=init)
        assert response.status_code == 200
        headers = {"Mcp-Session-Id": response.headers["mcp-session-id"], "MCP-Protocol-Version": p.LATEST_HANDSHAKE}
        call = client.post(PATH, headers=headers, json={"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                                                        "params": {"name": "getPet", "arguments": {"petId": 1}}})
        assert call.status_code == 200 and call.json()["result"]["isError"] is False, call.text
    log = demo_server.log_text()[log_start:]
    print(f"refused by the HTTP server itself (oversized or unparsable): {refused}")
    assert not failures, f"{len(failures)} bad answers (seed {SEED + 1}):\n" + "\n".join(failures)
    assert "Traceback" not in log, log[-3000:]


async def test_a_session_keeps_only_the_identifying_strings_of_client_info(demo_backend):
    """The session is read back on every request, so a megabyte of clientInfo must not ride along with it."""
    from gateway.asgi import app
    from gateway.sessions import session_get

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": p.LATEST_HANDSHAKE, "capabilities": {},
        "clientInfo": {"name": "n" * 300, "version": "1.0", "title": 7, "extra": ["x" * 1000] * 1000}}}).encode()
    answer = await asgi_exchange(app, "POST", PATH, list(base_headers(None, None).items()), body)
    assert answer.status == 200
    session = await session_get(answer.headers["mcp-session-id"])
    assert session.client == {"name": "n" * 200, "version": "1.0"}
