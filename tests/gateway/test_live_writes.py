"""What clients read from a live Daphne gateway: answers with a declared length, many in order on one keep-alive
connection, SSE events as they happen, and an answer far larger than the socket's buffer whole even when the
client reads it slowly (the part the socket did not take at once goes out as the client makes room)."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from ..loopback_json import LoopbackJson

pytestmark = [pytest.mark.live]

BIG_TEXT_BYTES = 6 * 1024 * 1024  # well past a loopback socket's send buffer
BIG_YAML = """
server:
  name: big
tools:
  - name: bigText
    description: Answers with a large document.
    args: []
    requestTemplate: {{url: "{url}/big", method: GET}}
"""
MODERN = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
          "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}}


def big_backend() -> LoopbackJson:
    """A REST backend whose /big answers {"text": <BIG_TEXT_BYTES characters>}; `.text` is what it sends."""
    letters = "".join(chr(ord("a") + i % 26) for i in range(1000))
    text = (letters * (BIG_TEXT_BYTES // len(letters) + 1))[:BIG_TEXT_BYTES]
    backend = LoopbackJson(lambda path: {"text": text})
    backend.text = text
    return backend


@pytest.fixture(scope="module")
def big_server(demo_server):
    backend = big_backend()
    token = demo_server.manage("create_api_token", "admin").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=demo_server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        instance = api.get("/instances/").json()["results"][0]["id"]
        created = api.post("/mcp-servers/", json={"instance": instance, "name": "big-writes"})
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]
        applied = api.put(f"/mcp-servers/{server_id}/tools/yaml", headers={"Content-Type": "application/yaml"},
                          content=BIG_YAML.format(url=backend.url))
        assert applied.status_code < 300, applied.text
    yield demo_server, backend
    with httpx.Client(base_url=demo_server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        api.delete(f"/mcp-servers/{server_id}/")  # the demo server is shared: leave it as it was
    backend.stop()


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    assert "content-length" in headers, headers
    assert "transfer-encoding" not in headers, headers
    return int(lines[0].split()[1]), headers


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status, headers = await _read_head(reader)
    return status, headers, await reader.readexactly(int(headers["content-length"]))


def _post(path: str, port: int, body: dict, headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(data)}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def test_answers_declare_their_length_and_keep_their_order_on_one_connection(demo_server):
    port = _port(demo_server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(200):
            writer.write(_post("/mcp-servers/petstore", port, {
                "jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "getPet", "arguments": {"petId": 1 + i % 3}, "_meta": MODERN_META}},
                {**MODERN, "Mcp-Name": "getPet"}))
            await writer.drain()
            status, headers, body = await asyncio.wait_for(_read_answer(reader), 30)
            assert status == 200, body
            answer = json.loads(body)
            assert answer["id"] == i
            assert answer["result"]["content"][0]["text"].startswith(f"Pet {1 + i % 3}: ")
        # Several requests written at once are answered one after another, each whole.
        writer.write(b"".join(_post("/mcp-servers/petstore", port, {
            "jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
            "params": {"name": "getPet", "arguments": {"petId": 2}, "_meta": MODERN_META}},
            {**MODERN, "Mcp-Name": "getPet"}) for i in range(20)))
        await writer.drain()
        for i in range(20):
            status, _, body = await asyncio.wait_for(_read_answer(reader), 30)
            assert status == 200 and json.loads(body)["id"] == 1000 + i
    finally:
        writer.close()


async def test_an_answer_larger_than_the_socket_buffer_arrives_whole_when_read_slowly(big_server):
    server, backend = big_server
    port = _port(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=64 * 1024)
    try:
        writer.write(_post("/mcp-servers/big-writes", port, {
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "bigText", "arguments": {}, "_meta": MODERN_META}},
            {**MODERN, "Mcp-Name": "bigText"}))
        await writer.drain()
        await asyncio.sleep(1.0)  # the gateway writes while nobody reads: the socket takes only part of it
        status, headers = await asyncio.wait_for(_read_head(reader), 30)
        assert status == 200
        length = int(headers["content-length"])
        assert length > BIG_TEXT_BYTES
        chunks, got = [], 0
        while got < length:
            chunk = await asyncio.wait_for(reader.read(min(256 * 1024, length - got)), 30)
            assert chunk, f"the connection closed after {got} of {length} bytes"
            chunks.append(chunk)
            got += len(chunk)
            if len(chunks) % 4 == 0:
                await asyncio.sleep(0.02)  # a slow reader
        answer = json.loads(b"".join(chunks))
        assert answer["id"] == 1
        assert json.loads(answer["result"]["content"][0]["text"])["text"] == backend.text
        # The connection is still good for the next call.
        writer.write(_post("/mcp-servers/petstore", port, {
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "getPet", "arguments": {"petId": 1}, "_meta": MODERN_META}},
            {**MODERN, "Mcp-Name": "getPet"}))
        await writer.drain()
        status, _, body = await asyncio.wait_for(_read_answer(reader), 30)
        assert status == 200 and json.loads(body)["id"] == 2
    finally:
        writer.close()


async def test_sse_events_arrive_as_they_are_sent(demo_server):
    """The legacy SSE transport: the endpoint event, then each answer on the stream while it stays open."""
    port = _port(demo_server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /mcp-servers/petstore/sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200")
        endpoint = None
        while endpoint is None:
            line = await asyncio.wait_for(reader.readline(), 30)
            if line.startswith(b"data: /"):
                endpoint = line[len(b"data: "):].strip().decode()
        post_headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=demo_server.url, timeout=30) as http:
            init = await http.post(endpoint, headers=post_headers, json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2024-11-05", "capabilities": {},
                    "clientInfo": {"name": "writes", "version": "1"}}})
            assert init.status_code == 202
            seen = await asyncio.wait_for(_next_message(reader), 30)
            assert seen["id"] == 1 and "serverInfo" in seen["result"]
            await http.post(endpoint, headers=post_headers,
                            json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            for i in range(2, 12):
                sent = await http.post(endpoint, headers=post_headers, json={
                    "jsonrpc": "2.0", "id": i, "method": "tools/call",
                    "params": {"name": "getPet", "arguments": {"petId": 1}}})
                assert sent.status_code == 202
                seen = await asyncio.wait_for(_next_message(reader), 30)
                assert seen["id"] == i and not seen["result"].get("isError")
    finally:
        writer.close()


async def _next_message(reader: asyncio.StreamReader) -> dict:
    """The next `message` event's JSON on a chunked SSE stream (chunk-size lines are skipped)."""
    event = None
    while True:
        line = (await reader.readline()).rstrip(b"\r\n")
        if line.startswith(b"event:"):
            event = line.partition(b":")[2].strip()
        elif line.startswith(b"data:") and event in (None, b"message"):
            data = line.partition(b":")[2].strip()
            if data.startswith(b"{"):
                return json.loads(data)
