"""Hosted stdio servers through a live gateway: npm's server-everything installed from the catalogue by the install job,
run as a child per session, with SDK clients on both transports."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import time

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..live import start_live
from ..node_tools import EVERYTHING_VERSION, require_conformance_tools
from .test_direct_proxy import text_of

pytestmark = pytest.mark.live

INSTALL_WAIT_SECONDS = 600  # a cold npm cache downloads the package and its dependencies
_names = itertools.count(1)


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """A gateway whose catalogue holds server-everything, installed into a cache of this test run: by a Celery
    worker of its own under the production profile (REDIS_URL), in-process in the embedded one."""
    tools = require_conformance_tools()  # the Node 22 the reference server needs (fails under CI=true)
    cache = tmp_path_factory.mktemp("hosted-cache")
    live = start_live(extra_env={"HOSTED_CACHE_DIR": str(cache), "HOSTED_NODE_DIR": str(tools.bin_dir),
                                 "HOSTED_CRASH_LOOP_COUNT": "3"})
    worker = celery_worker(live, tmp_path_factory.mktemp("hosted-worker")) if os.environ.get("REDIS_URL") else None
    token = live.manage("create_api_token", "admin").stdout.strip()
    api = httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    entry = create_entry(api, "everything", max_processes=4, idle_timeout_seconds=600)
    assert wait_installed(api, entry["id"])["state"] == "installed"
    live.api = api
    live.entry = entry
    yield live
    api.close()
    live.stop()
    if worker is not None:
        worker.terminate()
        worker.wait(20)


def celery_worker(live, logs):
    """A Celery worker on the live server's database and broker: the install job runs where production runs it."""
    import subprocess
    import sys
    from pathlib import Path

    from ..live import ROOT

    log = open(logs / "worker.log", "w")
    return subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "console", "worker", "--pool", "solo",
                             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                            cwd=ROOT, env={**live.env, "CELERY_TASK_ALWAYS_EAGER": "false"}, stdout=log,
                            stderr=subprocess.STDOUT)


def create_entry(api, slug: str, **extra) -> dict:
    body = {"slug": slug, "title": "Everything", "runtime": "npm", "package": "@modelcontextprotocol/server-everything",
            "version": EVERYTHING_VERSION, "command": "mcp-server-everything", "args": ["stdio"],
            "variables": [{"name": "GREETING", "description": "shown by get-env", "default": "hello"},
                          {"name": "API_TOKEN", "secret": True, "required": True}], **extra}
    created = api.post("/hosted-entries/", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def wait_installed(api, entry_id: int) -> dict:
    deadline = time.monotonic() + INSTALL_WAIT_SECONDS
    while True:
        entry = api.get(f"/hosted-entries/{entry_id}/").json()
        if entry["state"] in ("installed", "failed") or time.monotonic() > deadline:
            return entry
        time.sleep(0.5)


def make_server(live, entry: dict | None = None, **variables) -> dict:
    api = live.api
    instance = api.get("/instances/").json()["results"][0]["id"]
    created = api.post("/mcp-servers/", json={
        "instance": instance, "name": f"hosted-{next(_names)}", "server_type": "hosted_stdio",
        "hosted_entry": (entry or live.entry)["id"], "hosted_variables": {"API_TOKEN": "s3cret-token", **variables}})
    assert created.status_code == 201, created.text
    return created.json()


class Client:
    def __init__(self) -> None:
        self.sampled: list[str] = []

    async def sampling(self, context, params: types.CreateMessageRequestParams):
        self.sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(role="assistant", model="test-model",
                                         content=types.TextContent(type="text", text="a sampled answer"))

    async def elicitation(self, context, params):
        return types.ElicitResult(action="accept", content={"color": "blue", "name": "Ada"})

    def session(self, read, write) -> ClientSession:
        return ClientSession(read, write, sampling_callback=self.sampling, elicitation_callback=self.elicitation)


def processes(live, server: dict) -> dict:
    return live.api.get(f"/mcp-servers/{server['id']}/processes/").json()


async def exercise(session: ClientSession, client: Client) -> None:
    init = await session.initialize()
    assert init.server_info.name.startswith("mcp-servers/everything")
    tools = {tool.name for tool in (await session.list_tools()).tools}
    assert {"echo", "get-sum", "get-env", "trigger-sampling-request", "trigger-elicitation-request"} <= tools
    assert text_of(await session.call_tool("echo", {"message": "hi"})) == "Echo: hi"
    assert "42" in text_of(await session.call_tool("get-sum", {"a": 40, "b": 2}))
    env = text_of(await session.call_tool("get-env", {}))
    # A clean environment: the declared variables and the cache's PATH and HOME, nothing of the gateway's own.
    assert '"GREETING": "hello"' in env and '"API_TOKEN": "s3cret-token"' in env
    assert "DATABASE_URL" not in env and "SECRET_KEY" not in env and "DJANGO_SETTINGS_MODULE" not in env
    sampled = await session.call_tool("trigger-sampling-request", {"prompt": "say something", "maxTokens": 20})
    assert "a sampled answer" in text_of(sampled)
    assert client.sampled and "say something" in client.sampled[0]
    elicited = await session.call_tool("trigger-elicitation-request", {})
    assert "Ada" in text_of(elicited)
    resources = await session.list_resources()
    uris = [str(r.uri) for r in resources.resources]
    assert "demo://resource/static/document/architecture.md" in uris
    read = await session.read_resource("demo://resource/static/document/architecture.md")
    assert read.contents[0].text
    prompts = {p.name for p in (await session.list_prompts()).prompts}
    assert {"simple-prompt", "args-prompt"} <= prompts
    prompt = await session.get_prompt("args-prompt", {"city": "Lima", "state": "Lima"})
    assert "Lima" in prompt.messages[0].content.text


async def test_streamable_http_client_gets_everything_from_the_child(hosted):
    server = make_server(hosted)
    client = Client()
    async with streamable_http_client(hosted.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with client.session(read, write) as session:
            await exercise(session, client)
            running = processes(hosted, server)["processes"]
            assert len(running) == 1 and running[0]["pid"] and running[0]["memory_kb"] > 0


async def test_sse_client_gets_everything_from_the_child(hosted):
    server = make_server(hosted)
    client = Client()
    async with sse_client(hosted.url + server["endpoints"]["sse"]) as (read, write):
        async with client.session(read, write) as session:
            await exercise(session, client)
            assert len(processes(hosted, server)["processes"]) == 1
    # The stream is gone: so is the session, and its child with it.
    await asyncio.to_thread(wait_for, lambda: processes(hosted, server)["processes"] == [])


async def test_two_sessions_two_processes_and_a_killed_child_fails_only_its_own_client(hosted):
    server = make_server(hosted)
    url = hosted.url + server["endpoints"]["streamable_http"]
    async with streamable_http_client(url) as (r1, w1), streamable_http_client(url) as (r2, w2):
        async with ClientSession(r1, w1) as first, ClientSession(r2, w2) as second:
            await first.initialize()
            await second.initialize()
            running = processes(hosted, server)["processes"]
            pids = {p["pid"] for p in running}
            assert len(running) == 2 and len(pids) == 2
            # The first client's call is under way when its child dies.
            call = asyncio.ensure_future(first.call_tool("trigger-long-running-operation", {"duration": 30, "steps": 30}))
            await asyncio.sleep(1.0)
            # The first client initialized first: its child is the older one.
            victim = sorted(running, key=lambda p: p["started_at"])[0]["pid"]
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(MCPError, match="was ended by SIGKILL"):
                await call
            # The other session and its child carry on.
            assert text_of(await second.call_tool("echo", {"message": "still here"})) == "Echo: still here"
            status = processes(hosted, server)
            assert [p["pid"] for p in status["processes"]] == [next(iter(pids - {victim}))]
            assert "SIGKILL" in status["last_exit"]["reason"]
            # The dead child's session has ended: its client's next request is refused (the SDK sees a 404).
            with pytest.raises(MCPError):
                await first.call_tool("echo", {"message": "x"})



async def initialize_error(url: str) -> str:
    """What a client that tries to initialize is told (empty when it initialized)."""
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            try:
                await session.initialize()
            except MCPError as exc:
                return str(exc)
    return ""


def installed_entry(live, slug: str, **extra) -> dict:
    entry = create_entry(live.api, slug, **extra)
    done = wait_installed(live.api, entry["id"])
    assert done["state"] == "installed", done
    return done


def wait_for(check, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.2)


async def test_an_idle_child_stops_and_ends_its_session(hosted):
    server = make_server(hosted, installed_entry(hosted, "everything-idle", idle_timeout_seconds=1))
    url = hosted.url + server["endpoints"]["streamable_http"]
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert len(processes(hosted, server)["processes"]) == 1
            await asyncio.to_thread(wait_for, lambda: processes(hosted, server)["processes"] == [])
            assert "after 1 seconds without a message" in processes(hosted, server)["last_exit"]["reason"]
            with pytest.raises(MCPError):
                await session.call_tool("echo", {"message": "anyone?"})
    # A client that initializes again gets a child of its own again.
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert text_of(await session.call_tool("echo", {"message": "back"})) == "Echo: back"


async def test_too_little_memory_is_a_clear_start_up_error_and_a_crash_loop_is_refused(hosted):
    server = make_server(hosted, installed_entry(hosted, "everything-tiny", memory_mb=64,
                                                 startup_timeout_seconds=10))
    url = hosted.url + server["endpoints"]["streamable_http"]
    for _ in range(3):  # HOSTED_CRASH_LOOP_COUNT of the fixture
        error = await initialize_error(url)
        assert "everything-tiny" in error and "starting under a memory limit of 64 MB" in error, error
    error = await initialize_error(url)
    assert "crash loop (3 crashes within 60 seconds)" in error, error
    status = processes(hosted, server)
    assert status["crash_loop"] is True and status["recent_crashes"] == 3 and status["processes"] == []
    assert "everything-tiny" in status["last_exit"]["reason"]


async def test_the_entrys_process_limit_refuses_one_more_session(hosted):
    server = make_server(hosted, installed_entry(hosted, "everything-one", max_processes=1))
    url = hosted.url + server["endpoints"]["streamable_http"]
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            error = await initialize_error(url)
            assert "runs its maximum of 1 processes" in error, error
            assert text_of(await session.call_tool("echo", {"message": "unaffected"})) == "Echo: unaffected"
    # The first session ended (DELETE): its child is stopped and the next client gets one.
    await asyncio.to_thread(wait_for, lambda: processes(hosted, server)["processes"] == [])
    assert await initialize_error(url) == ""


async def test_a_shareable_entry_serves_sessions_from_one_child_without_mixing_answers(hosted):
    # A pool of one child: both sessions meet in it.
    server = make_server(hosted, installed_entry(hosted, "everything-shared", shareable=True, max_processes=1))
    url = hosted.url + server["endpoints"]["streamable_http"]
    async with streamable_http_client(url) as (r1, w1), streamable_http_client(url) as (r2, w2):
        async with ClientSession(r1, w1) as first, ClientSession(r2, w2) as second:
            await first.initialize()
            await second.initialize()
            calls = [session.call_tool("echo", {"message": f"{n}-{i}"})
                     for i in range(10) for n, session in (("a", first), ("b", second))]
            answers = [text_of(result) for result in await asyncio.gather(*calls)]
            assert answers == [f"Echo: {n}-{i}" for i in range(10) for n in ("a", "b")]
            running = processes(hosted, server)["processes"]
            assert len(running) == 1 and running[0]["session"] == "shared"


async def test_an_entry_whose_reinstall_failed_answers_a_clear_error(hosted):
    entry = installed_entry(hosted, "everything-broken")
    server = make_server(hosted, entry)
    changed = hosted.api.patch(f"/hosted-entries/{entry['id']}/", json={"version": "0.0.1-does-not-exist"})
    assert changed.status_code == 200, changed.text
    failed = wait_installed(hosted.api, entry["id"])
    assert failed["state"] == "failed" and "0.0.1-does-not-exist" in failed["error"]
    error = await initialize_error(hosted.url + server["endpoints"]["streamable_http"])
    assert "everything-broken" in error and "is not installed (state: failed" in error, error


async def test_consumer_authentication_and_per_consumer_tools_apply_to_a_hosted_server(hosted):
    import httpx2

    api = hosted.api
    server = make_server(hosted)
    consumer = api.post("/consumers/", json={"name": f"hosted-user-{server['id']}"}).json()
    key = api.post(f"/consumers/{consumer['id']}/api-keys/", json={"name": "k"}).json()["key"]
    assert api.put(f"/mcp-servers/{server['id']}/consumer-auth",
                   json={"enabled": True, "method": "api_key", "source": "bearer"}).status_code == 200
    assert api.post(f"/mcp-servers/{server['id']}/authorizations/",
                    json={"consumer": consumer["id"], "tools": ["echo"]}).status_code in (200, 201)
    url = hosted.url + server["endpoints"]["streamable_http"]
    # Without a key: refused at the edge, and no child is started.
    async with httpx.AsyncClient() as http:
        refused = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}},
            headers={"Accept": "application/json, text/event-stream"})
    assert refused.status_code == 401
    assert processes(hosted, server)["processes"] == []
    async with streamable_http_client(url, http_client=httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {key}"}, timeout=30)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert [t.name for t in (await session.list_tools()).tools] == ["echo"]
            with pytest.raises(MCPError, match="Unknown tool: get-env"):
                await session.call_tool("get-env", {})
            assert text_of(await session.call_tool("echo", {"message": "ok"})) == "Echo: ok"


async def test_a_handshake_free_2026_client_and_the_catalogue_tab(hosted):
    server = make_server(hosted)
    async with streamable_http_client(hosted.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            discovered = await session.discover()
            assert "2026-07-28" in discovered.supported_versions
            assert discovered.capabilities.prompts is not None
            calls = await asyncio.gather(*(session.call_tool("echo", {"message": str(i)}) for i in range(5)))
            assert [text_of(c) for c in calls] == [f"Echo: {i}" for i in range(5)]
    catalog = hosted.api.get(f"/mcp-servers/{server['id']}/backend-catalog", params={"refresh": "1"}).json()
    assert catalog["error"] == ""
    assert {"echo", "get-sum"} <= {tool["name"] for tool in catalog["tools"]}
    assert {"simple-prompt"} <= {prompt["name"] for prompt in catalog["prompts"]}


async def test_a_pypi_entry_runs_from_a_venv_of_its_own(hosted):
    api = hosted.api
    created = api.post("/hosted-entries/", json={
        "slug": "time", "title": "Time", "runtime": "pypi", "package": "mcp-server-time", "version": "2026.10.19",
        "command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "memory_mb": 1024})
    assert created.status_code == 201, created.text
    entry = wait_installed(api, created.json()["id"])
    assert entry["state"] == "installed", entry["error"]
    assert "pip install" in entry["log"] and "--only-binary=:all:" in entry["log"]
    instance = api.get("/instances/").json()["results"][0]["id"]
    server = api.post("/mcp-servers/", json={"instance": instance, "name": "time", "server_type": "hosted_stdio",
                                             "hosted_entry": entry["id"]}).json()
    async with streamable_http_client(hosted.url + server["endpoints"]["streamable_http"]) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert "get_current_time" in {tool.name for tool in (await session.list_tools()).tools}
            now = await session.call_tool("get_current_time", {"timezone": "Europe/Oslo"})
            assert "Europe/Oslo" in text_of(now)


def test_sigterm_stops_the_children_with_the_gateway(tmp_path_factory):
    tools = require_conformance_tools()
    live = start_live(extra_env={"HOSTED_CACHE_DIR": str(tmp_path_factory.mktemp("hosted-drain")),
                                 "HOSTED_NODE_DIR": str(tools.bin_dir), "GATEWAY_DRAIN_SECONDS": "2",
                                 "CELERY_TASK_ALWAYS_EAGER": "1"})  # the install in-process: no worker here
    try:
        token = live.manage("create_api_token", "admin").stdout.strip()
        live.api = httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                                timeout=30)
        live.entry = installed_entry(live, "everything")
        server = make_server(live)
        with httpx.Client(timeout=30, headers={"Accept": "application/json, text/event-stream"}) as http:
            init = http.post(live.url + server["endpoints"]["streamable_http"], json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
            assert init.status_code == 200, init.text
        pid = processes(live, server)["processes"][0]["pid"]
        live.api.close()
        live.procs[0].send_signal(signal.SIGTERM)
        live.procs[0].wait(30)

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split()[2] == "Z"  # exited, waiting for its parent's reaping

        wait_for(gone, 10)
    finally:
        live.stop()


def test_a_2025_03_26_client_sends_a_batch_and_a_2024_11_05_client_uses_sse(hosted):
    server = make_server(hosted)
    url = hosted.url + server["endpoints"]["streamable_http"]
    accept = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=30, headers=accept) as http:
        init = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}})
        assert init.json()["result"]["protocolVersion"] == "2025-03-26"
        headers = {"Mcp-Session-Id": init.headers["mcp-session-id"]}
        http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        batch = http.post(url, headers=headers, json=[
            {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": m}}}
            for i, m in ((2, "first"), (3, "second"))])
        answers = {a["id"]: a["result"]["content"][0]["text"] for a in batch.json()}
        assert answers == {2: "Echo: first", 3: "Echo: second"}
        http.delete(url, headers=headers)
    # 2024-11-05: the stream names the endpoint; answers arrive on the stream.
    with httpx.Client(timeout=30) as http:
        with http.stream("GET", hosted.url + server["endpoints"]["sse"], headers={"Accept": "text/event-stream"}) as s:
            lines = s.iter_lines()
            assert next(lines) == "event: endpoint"
            endpoint = hosted.url + next(lines)[len("data: "):]
            assert http.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "old", "version": "1"}}}).status_code == 202

            def until(msg_id: int) -> dict:
                for line in lines:
                    if line.startswith("data: "):
                        message = json.loads(line[len("data: "):])
                        if message.get("id") == msg_id:
                            return message
                raise AssertionError(f"the stream ended before the answer to {msg_id}")

            # As the protocol asks, nothing but the initialized notification before initialize is answered.
            assert until(1)["result"]["protocolVersion"] == "2024-11-05"
            http.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            http.post(endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                      "params": {"name": "echo", "arguments": {"message": "sse"}}})
            assert until(2)["result"]["content"][0]["text"] == "Echo: sse"


async def test_a_shareable_entrys_pool_grows_to_its_process_limit_and_no_further(hosted):
    server = make_server(hosted, installed_entry(hosted, "everything-pool", shareable=True, max_processes=2))
    url = hosted.url + server["endpoints"]["streamable_http"]
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for _ in range(16):  # sessions spread by their id: with 16, both places are taken but 1 time in 32,768
            read, write = await stack.enter_async_context(streamable_http_client(url))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            sessions.append(session)
        answers = await asyncio.gather(*(s.call_tool("echo", {"message": f"s{n}"}) for n, s in enumerate(sessions)))
        assert [text_of(a) for a in answers] == [f"Echo: s{n}" for n in range(16)]
        running = processes(hosted, server)["processes"]
        assert len(running) == 2 and {p["session"] for p in running} == {"shared"}
