"""Direct Proxy through a live gateway: real MCP SDK backends over SSE and Streamable HTTP, SDK clients on both transports."""
from __future__ import annotations

import asyncio
import itertools

import httpx
import httpx2
import pytest
from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from .mcp_backends import seen, sse_backend, streamable_backend

pytestmark = pytest.mark.live

_names = itertools.count(1)


@pytest.fixture(scope="module")
def backends():
    started = {"streamable_http": streamable_backend(), "sse": sse_backend()}
    yield started
    for backend in started.values():
        backend.stop()


def make_proxy(api, backend, transport: str, **extra) -> dict:
    """A backend MCP service and a Direct Proxy server in front of it, created through the REST API."""
    instance = api.get("/instances/").json()["results"][0]["id"]
    n = next(_names)
    service = api.post("/services/", json={"instance": instance, "name": f"mcp-backend-{n}", "protocol": "mcp",
                                           "base_url": backend.url})
    assert service.status_code == 201, service.text
    created = api.post("/mcp-servers/", json={"instance": instance, "name": f"weather-{n}",
                                              "server_type": "direct_proxy", "backend_service": service.json()["id"],
                                              "backend_transport": transport, "backend_path": backend.path, **extra})
    assert created.status_code == 201, created.text
    return created.json()


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


class Client:
    """Callbacks of an SDK client: what the backend asked for through the gateway, and what it notified."""

    def __init__(self) -> None:
        self.notifications: list = []
        self.logs: list[str] = []

    async def sampling(self, context, params: types.CreateMessageRequestParams):
        prompt = params.messages[0].content.text
        return types.CreateMessageResult(role="assistant", model="test-model",
                                         content=types.TextContent(type="text", text=prompt.upper()))

    async def elicitation(self, context, params):
        return types.ElicitResult(action="accept", content={"city": "Oslo"})

    async def roots(self, context):
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])

    async def logging(self, params):
        self.logs.append(str(params.data))

    async def message(self, message):
        if isinstance(message, Exception):
            return
        self.notifications.append(getattr(message, "method", None) or type(message).__name__)

    def session(self, read, write) -> ClientSession:
        return ClientSession(read, write, sampling_callback=self.sampling, elicitation_callback=self.elicitation,
                             list_roots_callback=self.roots, logging_callback=self.logging,
                             message_handler=self.message)


async def exercise(session: ClientSession, client: Client) -> None:
    """Everything a backend offers, relayed: tools, resources, prompts, completion, progress, logging, and requests
    the backend sends to the client."""
    tools = {tool.name for tool in (await session.list_tools()).tools}
    assert {"echo", "add", "slow", "sample", "ask", "roots", "announce"} <= tools
    assert text_of(await session.call_tool("echo", {"text": "hello"})) == "echo: hello"
    added = await session.call_tool("add", {"a": 2, "b": 40})
    assert text_of(added) == "42"

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    slow = await session.call_tool("slow", {"steps": 3}, progress_callback=on_progress)
    assert text_of(slow) == "done after 3 steps"
    assert [p[0] for p in progress] == [1, 2, 3]
    assert progress[-1][2] == "step 3"

    assert text_of(await session.call_tool("sample", {"prompt": "hi there"})) == "model said: HI THERE"
    assert text_of(await session.call_tool("ask", {})) == "accept: Oslo"
    assert text_of(await session.call_tool("roots", {})) == "file:///work/project"

    resources = await session.list_resources()
    assert [str(r.uri) for r in resources.resources] == ["weather://today"]
    read = await session.read_resource("weather://today")
    assert read.contents[0].text == "sunny"
    templates = await session.list_resource_templates()
    assert [t.uri_template for t in templates.resource_templates] == ["weather://city/{city}"]
    assert (await session.read_resource("weather://city/Rome")).contents[0].text == "rain in Rome"

    prompts = await session.list_prompts()
    assert [p.name for p in prompts.prompts] == ["forecast"]
    prompt = await session.get_prompt("forecast", {"city": "Lima"})
    assert "Lima" in prompt.messages[0].content.text

    completion = await session.complete(types.PromptReference(type="ref/prompt", name="forecast"),
                                        {"name": "city", "value": "Be"})
    assert completion.completion.values == ["Berlin", "Bern"]


async def test_streamable_client_in_front_of_a_streamable_backend(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    client = Client()
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with client.session(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "weather"
            assert init.instructions == "The weather backend."
            assert init.capabilities.tools is not None and init.capabilities.prompts is not None
            await exercise(session, client)


async def test_sse_client_2024_in_front_of_a_streamable_backend(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    client = Client()
    async with sse_client(demo_server.url + server["endpoints"]["sse"]) as (read, write):
        async with client.session(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "weather"
            await exercise(session, client)


async def test_streamable_client_in_front_of_an_sse_backend(demo_server, api, backends):
    server = make_proxy(api, backends["sse"], "sse")
    client = Client()
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with client.session(read, write) as session:
            await session.initialize()
            await exercise(session, client)


async def test_sse_client_at_the_backend_path_of_an_sse_backend(demo_server, api, backends):
    server = make_proxy(api, backends["sse"], "sse")
    assert server["endpoints"]["backend_path"] == f"/mcp-servers/{server['name']}/test/sse"
    client = Client()
    async with sse_client(demo_server.url + server["endpoints"]["backend_path"]) as (read, write):
        async with client.session(read, write) as session:
            await session.initialize()
            await exercise(session, client)


async def test_stateless_2026_client_in_front_of_session_backends(demo_server, api, backends):
    for transport in ("streamable_http", "sse"):
        server = make_proxy(api, backends[transport], transport)
        async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
            async with ClientSession(read, write) as session:
                discovered = await session.discover()
                assert discovered.instructions == "The weather backend."
                assert discovered.capabilities.prompts is not None
                assert "2026-07-28" in discovered.supported_versions
                tools = {tool.name for tool in (await session.list_tools()).tools}
                assert {"echo", "add"} <= tools
                calls = await asyncio.gather(*(session.call_tool("add", {"a": i, "b": 1}) for i in range(5)))
                assert [text_of(c) for c in calls] == [str(i + 1) for i in range(5)]
                progress = []

                async def on_progress(value, total, message):
                    progress.append(value)

                slow = await session.call_tool("slow", {"steps": 2}, progress_callback=on_progress)
                assert text_of(slow) == "done after 2 steps"
                assert (await session.read_resource("weather://today")).contents[0].text == "sunny"


async def test_backend_path_access_point_speaks_streamable_http(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    assert server["endpoints"]["backend_path"] == f"/mcp-servers/{server['name']}/test/mcp"
    async with streamable_http_client(demo_server.url + server["endpoints"]["backend_path_by_instance"]) as (r, w):
        async with ClientSession(r, w) as session:
            await session.initialize()
            assert text_of(await session.call_tool("echo", {"text": "x"})) == "echo: x"


async def test_list_changed_logging_and_resource_updates_reach_the_client(demo_server, api, backends):
    for transport in ("streamable_http", "sse"):
        server = make_proxy(api, backends[transport], transport)
        client = Client()
        async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
            async with client.session(read, write) as session:
                await session.initialize()
                await session.set_logging_level("debug")
                assert seen["levels"][-1] == "debug"
                await session.subscribe_resource("weather://today")
                assert "weather://today" in seen["subscribed"]
                assert text_of(await session.call_tool("announce", {})) == "announced"
                for _ in range(100):
                    if {"notifications/tools/list_changed", "notifications/resources/updated"} <= \
                            set(client.notifications):
                        break
                    await asyncio.sleep(0.05)
                assert "notifications/tools/list_changed" in client.notifications
                assert "notifications/resources/updated" in client.notifications
                assert client.logs == ["announcing"]
                await session.unsubscribe_resource("weather://today")
                assert "weather://today" not in seen["subscribed"]


async def test_allow_list_and_consumer_authorization(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http", allow_tools=["echo", "add", "secret"])
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert sorted(t.name for t in (await session.list_tools()).tools) == ["add", "echo", "secret"]
            with pytest.raises(Exception) as refused:
                await session.call_tool("slow", {"steps": 1})
            assert "Unknown tool: slow" in str(refused.value)

    # Consumer authentication on: a consumer authorized for some tools sees and calls only those.
    consumer = api.post("/consumers/", json={"name": f"limited-{server['id']}"})
    assert consumer.status_code == 201, consumer.text
    key = api.post(f"/consumers/{consumer.json()['id']}/api-keys/", json={"name": "k"})
    assert key.status_code == 201, key.text
    auth = api.put(f"/mcp-servers/{server['id']}/consumer-auth", json={"enabled": True, "method": "api_key",
                                                                         "source": "bearer"})
    assert auth.status_code == 200, auth.text
    granted = api.post(f"/mcp-servers/{server['id']}/authorizations/", json={"consumer": consumer.json()["id"],
                                                                             "tools": ["echo"]})
    assert granted.status_code in (200, 201), granted.text
    secret_key = key.json()["key"]
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret_key}"}, timeout=30)
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"],
                                      http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert [t.name for t in (await session.list_tools()).tools] == ["echo"]
            with pytest.raises(Exception) as refused:
                await session.call_tool("add", {"a": 1, "b": 2})
            assert "Unknown tool: add" in str(refused.value)
            # The consumer's key stays at the gateway: the backend sees no credential at all.
            assert text_of(await session.call_tool("echo", {"text": "ok"})) == "echo: ok"


async def test_backend_credential_injected_consumer_credential_never_forwarded(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    auth = api.put(f"/mcp-servers/{server['id']}/backend-auth", json={"kind": "bearer", "credential": "backend-tok"})
    assert auth.status_code == 200, auth.text
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"],
                                      http_client=httpx2.AsyncClient(headers={"X-API-Key": "client-key"},
                                                                     timeout=30)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            # whoami is filtered by nothing: the backend reports the headers it received.
            assert text_of(await session.call_tool("whoami", {})) == \
                "authorization=Bearer backend-tok;x-api-key=;query="
    api.put(f"/mcp-servers/{server['id']}/backend-auth", json={"kind": "api_key", "location": "query",
                                                              "param_name": "key", "credential": "q-secret"})
    async with sse_client(demo_server.url + server["endpoints"]["sse"],
                          headers={"Authorization": "Bearer client-token"}) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert text_of(await session.call_tool("whoami", {})) == "authorization=;x-api-key=;query=key=q-secret"


async def test_backend_timeout_and_refusal_are_clear_errors(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http", timeout_seconds=1)
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            slept = await session.call_tool("sleepy", {"seconds": 5})
            assert slept.is_error is True
            assert "did not answer in time" in text_of(slept)
    # A backend that is not running: initialize itself fails with a JSON-RPC error naming it.
    from ..live import free_port

    class Down:
        url = f"http://127.0.0.1:{free_port()}"
        path = "/mcp"

    down = make_proxy(api, Down, "streamable_http")
    with httpx.Client(timeout=15) as http:
        answer = http.post(demo_server.url + down["endpoints"]["streamable_http"], json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
            headers={"Accept": "application/json, text/event-stream"})
    assert answer.status_code == 200
    error = answer.json()["error"]
    assert error["code"] == -32603
    assert f"{Down.url}/mcp refused the connection" in error["message"]


async def test_backend_that_forgets_the_session_gets_a_new_one(demo_server, api):
    backend = streamable_backend()
    server = make_proxy(api, backend, "streamable_http")
    async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert text_of(await session.call_tool("echo", {"text": "before"})) == "echo: before"
            # A restarted backend knows no sessions: the gateway opens a new one and sends the call again.
            backend.stop()
            backend = streamable_backend(port=backend.port)
            try:
                assert text_of(await session.call_tool("echo", {"text": "after"})) == "echo: after"
            finally:
                backend.stop()


def initialize_body(version: str, msg_id=1) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}


async def test_2025_03_26_batch_and_2025_06_18_client_in_front_of_an_sse_backend(demo_server, api, backends):
    server = make_proxy(api, backends["sse"], "sse")
    url = demo_server.url + server["endpoints"]["streamable_http"]
    async with httpx.AsyncClient(timeout=30, headers={"Accept": "application/json, text/event-stream"}) as http:
        init = await http.post(url, json=initialize_body("2025-03-26"))
        assert init.json()["result"]["protocolVersion"] == "2025-03-26"
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"]}
        await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        batch = await http.post(url, headers=headers, json=[
            {"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}},
            {"jsonrpc": "2.0", "id": "b", "method": "prompts/get", "params": {"name": "forecast",
                                                                               "arguments": {"city": "Kyiv"}}}])
        answers = {item["id"]: item for item in batch.json()}
        assert answers["a"]["result"]["content"][0]["text"] == "3"
        assert "Kyiv" in answers["b"]["result"]["messages"][0]["content"]["text"]

        init = await http.post(url, json=initialize_body("2025-06-18"))
        assert init.json()["result"]["protocolVersion"] == "2025-06-18"
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
        listed = await http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "resources/list"})
        assert listed.json()["result"]["resources"][0]["uri"] == "weather://today"
        # The backend's own request ids never leak into the client's namespace, and unknown answers go nowhere.
        stray = await http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 99, "result": {}})
        assert stray.status_code == 202


async def test_cancellation_reaches_the_backend(demo_server, api, backends):
    for transport in ("streamable_http", "sse"):
        server = make_proxy(api, backends[transport], transport)
        url = demo_server.url + server["endpoints"]["streamable_http"]
        async with httpx.AsyncClient(timeout=30, headers={"Accept": "application/json, text/event-stream"}) as http:
            init = await http.post(url, json=initialize_body("2025-11-25"))
            headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
            await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            seconds = 20 + len(seen["cancelled"])
            call = asyncio.ensure_future(http.post(url, headers=headers, json={
                "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "sleepy", "arguments": {"seconds": seconds}}}))
            for _ in range(100):
                await asyncio.sleep(0.05)
                cancelled = await http.post(url, headers=headers, json={
                    "jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7,
                                                                                      "reason": "changed my mind"}})
                assert cancelled.status_code == 202
                if seconds in seen["cancelled"]:
                    break
            assert seconds in seen["cancelled"]
            call.cancel()


class RawBackend:
    """A misbehaving backend on 127.0.0.1: answers initialize like an MCP server, then `misbehave` on tools/call."""

    def __init__(self, misbehave: str, port: int = 0):
        import socket
        import threading

        self.misbehave = misbehave
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.path = "/mcp"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import json as json_
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn, json_), daemon=True).start()

    def _one(self, conn, json_):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), b"0"))
            while len(body) < length:
                body += conn.recv(65536)
            message = json_.loads(body) if body else {}
            if self.misbehave == "forget":  # knows no session and opens none
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 9\r\n\r\nNot Found")
            elif message.get("method") == "initialize":
                answer = json_.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {
                    "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "raw", "version": "1"}}}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(answer)).encode() + b"\r\n\r\n" + answer)
            elif "id" not in message:
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            elif message.get("method") == "tools/list":
                answer = json_.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": [
                    {"name": "anything", "inputSchema": {"type": "object"}}]}}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(answer)).encode() + b"\r\n\r\n" + answer)
            elif self.misbehave == "reset":
                return  # the connection closes without a word
            elif self.misbehave == "garbage":
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\n"
                             b"event: message\ndata: {not json\n\n")
            elif self.misbehave == "huge":
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\ndata: ")
                try:
                    for _ in range(64):
                        conn.sendall(b"x" * (1 << 20))  # past the gateway's 10 MiB limit, never a line end
                except OSError:
                    return

    def stop(self):
        self.sock.close()


@pytest.mark.parametrize("misbehave, expected", [
    ("reset", "closed the connection without answering"),
    ("garbage", "not acceptable JSON"),
    ("huge", "larger than the gateway's limit"),
])
async def test_a_misbehaving_backend_is_a_clear_tool_error(demo_server, api, misbehave, expected):
    backend = RawBackend(misbehave)
    try:
        server = make_proxy(api, backend, "streamable_http")
        async with streamable_http_client(demo_server.url + server["endpoints"]["streamable_http"]) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("anything", {})
                assert result.is_error is True
                assert expected in text_of(result)
                assert backend.url in text_of(result)
    finally:
        backend.stop()


async def test_an_sse_backend_link_goes_with_its_expired_session(monkeypatch, settings):
    """In-process: the link to an SSE backend is closed once its client session is gone from the shared state."""
    from gateway.executors import direct_proxy, upstream
    from gateway.readmodel import ServerConfig
    from gateway.sessions import session_create, session_end

    backend = sse_backend()
    try:
        monkeypatch.setattr(upstream, "LISTEN_CHECK_SECONDS", 0.05)
        server = ServerConfig(id=990, instance="default", name="watched", description="", type="direct_proxy",
                              enabled=True, config={}, timeout=10, tools={}, tool_order=(), backend_url=backend.url,
                              backend_transport="sse", backend_path=backend.path, version=1)
        executor = direct_proxy.DirectProxyExecutor()
        session = await session_create(server=server.key, version="2025-11-25", transport="streamable")
        await executor._open(server, {}, {}, session.id)
        link = executor._links[session.id]
        assert link.open_
        await session_end(session.id)
        for _ in range(100):
            if not link.open_:
                break
            await asyncio.sleep(0.05)
        assert not link.open_
        assert session.id not in executor._links
    finally:
        from gateway.backends import close_http_sessions

        await close_http_sessions()
        backend.stop()


async def test_a_backend_gone_for_good_ends_the_session_and_the_client_reinitializes(demo_server, api):
    backend = streamable_backend()
    server = make_proxy(api, backend, "streamable_http")
    url = demo_server.url + server["endpoints"]["streamable_http"]
    async with httpx.AsyncClient(timeout=30, headers={"Accept": "application/json, text/event-stream"}) as http:
        init = await http.post(url, json=initialize_body("2025-11-25"))
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo",
                                                                              "arguments": {"text": "x"}}}
        assert (await http.post(url, headers=headers, json=call)).json()["result"]["isError"] is False
        backend.stop()
        # Down for a moment: a tool error, and the session stays for when the backend is back.
        down = (await http.post(url, headers=headers, json=call)).json()["result"]
        assert down["isError"] is True and "refused the connection" in down["content"][0]["text"]
        # Back as a server that knows no session and opens none: the session ends with the backend's.
        forgetful = RawBackend("forget", port=backend.port)
        try:
            failed = (await http.post(url, headers=headers, json=call)).json()["result"]
            assert failed["isError"] is True
            assert "initialize again" in failed["content"][0]["text"]
            assert (await http.post(url, headers=headers, json={**call, "id": 3})).status_code == 404
        finally:
            forgetful.stop()
