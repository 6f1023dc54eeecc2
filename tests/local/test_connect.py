"""`mcp-gateway connect` started by the official SDK's stdio client in front of a live gateway: consumer keys, every
kind of message relayed through a Direct Proxy, a session ended on the gateway renewed unseen, HTTP+SSE fallback,
and clear errors with their exit status for a bad key, a closed port, a refused backend and a URL that is no MCP
endpoint."""
from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from ..gateway.consumer_setup import guarded_petstore_api
from ..gateway.mcp_backends import Backend, build_backend, seen, sse_backend, streamable_backend
from ..gateway.test_direct_proxy import Client, exercise, make_proxy
from ..gateway.test_sdk_clients import exercise_petstore, text_of
from ..live import free_port
from .bridge import Raw, initialize_line, run, stderr_of, stdio_session

pytestmark = pytest.mark.live

_names = itertools.count(1)


@pytest.fixture(scope="module")
def backends():
    started = {"streamable_http": streamable_backend("weather"), "sse": sse_backend("weather")}
    yield started
    for backend in started.values():
        backend.stop()


@pytest.fixture
def guarded(demo_server, api_token) -> dict:
    """A copy of the demo petstore with API-key Consumer Authentication on and one authorized consumer."""
    name = f"bridge-petstore-{next(_names)}"
    out = guarded_petstore_api(demo_server, api_token, name)
    out["url"] = demo_server.url + f"/mcp-servers/{name}"
    out["key"] = out["consumers"]["agent"]["key"]
    return out


async def test_sdk_stdio_client_lists_and_calls_tools_with_the_key_from_env(guarded, api):
    async with stdio_session("connect", guarded["url"], env={"MCP_GATEWAY_KEY": guarded["key"]}) as (session, err):
        init = await session.initialize()
        assert init.server_info.name.startswith("bridge-petstore")
        assert init.protocol_version == "2025-11-25"
        await exercise_petstore(session)
    assert stderr_of(err) == ""
    # Closing the client ended the remote session too (DELETE), rather than leaving it to expire.
    session_id = session_of_calls(api, guarded["server_id"], 3)[0]
    ping = httpx.post(guarded["url"], json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={
        "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25", "Authorization": f"Bearer {guarded['key']}",
        "Accept": "application/json, text/event-stream"})
    assert ping.status_code == 404


async def test_the_key_in_a_named_header_or_query_parameter(guarded, api):
    for source, flag, name in (("header", "--header", "X-Gw-Key"), ("query", "--query", "gw_key")):
        changed = api.put(f"/mcp-servers/{guarded['server_id']}/consumer-auth",
                          json={"enabled": True, "method": "api_key", "source": source, "name": name})
        assert changed.status_code == 200, changed.text
        for url in (guarded["url"], guarded["url"] + "/sse"):  # both transports carry it
            async with stdio_session("connect", url, flag, name,
                                     env={"MCP_GATEWAY_KEY": guarded["key"]}) as (session, err):
                await session.initialize()
                found = await session.call_tool("getPet", {"petId": 1})
                assert found.is_error is False and "Rex" in text_of(found)
            assert err.text() == ""


async def test_everything_is_relayed_through_a_direct_proxy(demo_server, api, backends):
    """Tools, resources, prompts, completion, progress; the backend's sampling, elicitation and roots requests reach
    the stdio client's callbacks and their answers reach the backend; logging, list_changed and resource updates
    (the backend sends list_changed outside any request: it comes on the GET stream the bridge keeps open)."""
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    client = Client()
    async with stdio_session("connect", demo_server.url + server["endpoints"]["streamable_http"],
                             sampling_callback=client.sampling, elicitation_callback=client.elicitation,
                             list_roots_callback=client.roots, logging_callback=client.logging,
                             message_handler=client.message) as (session, err):
        init = await session.initialize()
        assert init.server_info.name == "weather" and init.instructions == "The weather backend."
        await exercise(session, client)

        await session.set_logging_level("debug")
        assert seen["levels"][-1] == "debug"
        await session.subscribe_resource("weather://today")
        assert "weather://today" in seen["subscribed"]
        assert text_of(await session.call_tool("announce", {})) == "announced"
        for _ in range(200):
            if {"notifications/tools/list_changed", "notifications/resources/updated"} <= set(client.notifications):
                break
            await asyncio.sleep(0.05)
        assert "notifications/tools/list_changed" in client.notifications
        assert "notifications/resources/updated" in client.notifications
        assert client.logs == ["announcing"]
        await session.unsubscribe_resource("weather://today")
        assert "weather://today" not in seen["subscribed"]
    assert stderr_of(err) == ""


async def test_cancellation_reaches_the_backend(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    bridge = await Raw.start("connect", demo_server.url + server["endpoints"]["streamable_http"])
    await bridge.send(initialize_line(0))
    assert (await bridge.answer_to(0))["result"]["serverInfo"]["name"] == "weather"
    await bridge.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    seconds = 30 + len(seen["cancelled"])
    await bridge.send({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "sleepy", "arguments": {"seconds": seconds}}})
    for _ in range(200):
        await asyncio.sleep(0.05)
        await bridge.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": 7, "reason": "changed my mind"}})
        if seconds in seen["cancelled"]:
            break
    assert seconds in seen["cancelled"]
    status, _ = await bridge.close()
    assert status == 0


async def test_an_answer_larger_than_the_bound_is_an_error_not_a_cut_line(demo_server, api, backends):
    server = make_proxy(api, backends["streamable_http"], "streamable_http")
    bridge = await Raw.start("connect", demo_server.url + server["endpoints"]["streamable_http"],
                             "--max-message-bytes", "2048")
    await bridge.send(initialize_line(0))
    await bridge.answer_to(0)
    await bridge.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    await bridge.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "y" * 1500}}})
    too_big = await bridge.answer_to(1)
    assert "larger than the bridge passes on (2048 bytes" in too_big["error"]["message"]
    await bridge.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "small"}}})
    assert (await bridge.answer_to(2))["result"]["content"][0]["text"] == "echo: small"
    status, _ = await bridge.close()
    assert status == 0


def session_of_calls(api, server_id: int, count: int) -> list[str]:
    """The sessions of the server's call records, oldest first, once `count` of them are written."""
    for _ in range(200):
        calls = api.get(f"/mcp-servers/{server_id}/calls/").json()["results"]
        if len(calls) >= count:
            return [c["session_id"] for c in sorted(calls, key=lambda c: c["id"])]
        time.sleep(0.1)
    raise AssertionError(f"{count} call records were not written")


async def test_a_session_ended_on_the_gateway_is_renewed_unseen(guarded, api):
    async with stdio_session("connect", guarded["url"], "-v", env={"MCP_GATEWAY_KEY": guarded["key"]}) \
            as (session, err):
        await session.initialize()
        assert (await session.call_tool("getPet", {"petId": 1})).is_error is False
        [first] = session_of_calls(api, guarded["server_id"], 1)
        assert first
        ended = httpx.delete(guarded["url"], headers={"Mcp-Session-Id": first, "MCP-Protocol-Version": "2025-11-25",
                                                      "Authorization": f"Bearer {guarded['key']}"})
        assert ended.status_code == 204
        again = await session.call_tool("getPet", {"petId": 2})
        assert again.is_error is False and "Tom" in text_of(again)
        assert {t.name for t in (await session.list_tools()).tools} >= {"getPet", "listPets"}
        sessions = session_of_calls(api, guarded["server_id"], 2)
        assert sessions[0] == first and sessions[1] != first
        assert "a new one is open (renewal 1)" in stderr_of(err)


async def test_a_bad_key_is_a_clear_error_on_stderr_and_exit_status_3(guarded):
    wrong = "mck_" + "x" * 39 + "Zq9w"
    status, out, err = run("connect", guarded["url"], lines=[initialize_line(0)], env={"MCP_GATEWAY_KEY": wrong})
    assert status == 3
    assert "refused the consumer credential (API key mck_…Zq9w) sent as Authorization: Bearer" in err
    assert guarded["url"] in err and "HTTP 401" in err and wrong not in err
    assert [m["id"] for m in out] == [0] and "refused the consumer credential" in out[0]["error"]["message"]

    status, out, err = run("connect", guarded["url"], lines=[initialize_line(0)])
    assert status == 3
    assert "asks for a consumer credential" in err and "MCP_GATEWAY_KEY" in err

    # The SDK's client sees the same sentence as the answer to initialize.
    async with stdio_session("connect", guarded["url"], env={"MCP_GATEWAY_KEY": wrong}) as (session, errlog):
        with pytest.raises(MCPError, match="refused the consumer credential"):
            await session.initialize()


async def test_a_key_revoked_mid_session_ends_the_bridge_with_exit_status_3(guarded, api):
    bridge = await Raw.start("connect", guarded["url"], env={"MCP_GATEWAY_KEY": guarded["key"]})
    await bridge.send(initialize_line(0))
    assert "result" in await bridge.answer_to(0)
    await bridge.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert api.delete(f"/api-keys/{guarded['consumers']['agent']['key_id']}/").status_code == 204
    await bridge.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "getPet", "arguments": {"petId": 1}}})
    refused = await bridge.answer_to(1)
    assert "refused the consumer credential" in refused["error"]["message"]
    status, err = await bridge.close()
    assert status == 3 and "HTTP 401" in err and "revoked" in err


def test_a_key_with_a_line_break_or_a_bad_header_name_is_a_command_line_error():
    done = subprocess.run([sys.executable, "-m", "gateway.local", "connect", "http://127.0.0.1:9/mcp-servers/x"],
                          capture_output=True, text=True, env={"MCP_GATEWAY_KEY": "mck_abc\nX-Injected: 1"})
    assert done.returncode == 2 and "control characters" in done.stderr and done.stdout == ""
    done = subprocess.run([sys.executable, "-m", "gateway.local", "connect", "http://127.0.0.1:9/mcp-servers/x",
                           "--header", "X Key"], capture_output=True, text=True)
    assert done.returncode == 2 and "is not a header name" in done.stderr


def test_a_consumer_not_authorized_on_the_server_is_told_so(guarded, api):
    instance = api.get(f"/mcp-servers/{guarded['server_id']}/").json()["instance"]
    team = api.get(f"/instances/{instance}/").json()["team"]
    other = api.post("/consumers/", json={"team": team, "name": f"outsider-{next(_names)}"}).json()
    key = api.post(f"/consumers/{other['id']}/api-keys/", json={}).json()["key"]
    status, out, err = run("connect", guarded["url"], lines=[initialize_line(0)], env={"MCP_GATEWAY_KEY": key})
    assert status == 3 and "HTTP 403" in err and f"API key mck_…{key[-4:]}" in err


def test_an_unreachable_endpoint_is_a_clear_error_and_exit_status_4():
    port = free_port()
    status, out, err = run("connect", f"http://127.0.0.1:{port}/mcp-servers/petstore", lines=[initialize_line(3)])
    assert status == 4
    assert f"Cannot reach the gateway at http://127.0.0.1:{port}: connection refused" in err
    assert [m["id"] for m in out] == [3] and "Cannot reach the gateway" in out[0]["error"]["message"]


def test_a_backend_refused_by_the_egress_policy_is_exit_status_5(demo_server, api):
    instance = api.get("/instances/").json()["results"][0]["id"]
    n = next(_names)
    service = api.post("/services/", json={"instance": instance, "name": f"bridge-denied-{n}", "protocol": "mcp",
                                           "base_url": f"http://127.0.0.2:{free_port()}"})
    assert service.status_code == 201, service.text
    server = api.post("/mcp-servers/", json={"instance": instance, "name": f"bridge-denied-{n}",
                                             "server_type": "direct_proxy", "backend_service": service.json()["id"],
                                             "backend_transport": "streamable_http", "backend_path": "/mcp"}).json()
    status, out, err = run("connect", demo_server.url + server["endpoints"]["streamable_http"],
                           lines=[initialize_line(0)])
    assert status == 5
    assert "egress policy refused" in err and "127.0.0.2" in err and "GATEWAY_EGRESS_ALLOW" in err
    assert "127.0.0.2" in out[0]["error"]["message"]


def test_a_url_that_is_no_mcp_endpoint_is_exit_status_6(demo_server):
    status, out, err = run("connect", demo_server.url + "/mcp-servers/no-such-server", lines=[initialize_line(0)])
    assert status == 6
    assert "is not an MCP endpoint" in err and "No MCP server named no-such-server" in err
    assert "HTTP+SSE at" in err  # the fallback was tried too
    status, _, err = run("connect", demo_server.url + "/healthz", lines=[initialize_line(0)])
    assert status == 6 and "is not an MCP endpoint" in err


async def test_falls_back_to_http_sse_where_only_that_is_served(backends):
    """An MCP SDK server that serves only HTTP+SSE (at <base>/sse): the bridge's POST is refused, it uses the SSE
    transport, and everything still works, the backend's requests to the client included."""
    client = Client()
    async with stdio_session("connect", backends["sse"].url + "/test", "-v", sampling_callback=client.sampling,
                             elicitation_callback=client.elicitation, list_roots_callback=client.roots,
                             logging_callback=client.logging, message_handler=client.message) as (session, err):
        init = await session.initialize()
        assert init.server_info.name == "weather"
        await exercise(session, client)
        assert "using HTTP+SSE at" in stderr_of(err)


async def test_an_sse_endpoint_url_of_the_gateway(demo_server):
    async with stdio_session("connect", demo_server.url + "/mcp-servers/petstore/sse") as (session, _):
        await session.initialize()
        await exercise_petstore(session)


async def test_stateless_2026_client_over_stdio(demo_server):
    """A client that discovers instead of initializing: the bridge sends its requests sessionless, with the
    revision, method and name headers 2026-07-28 asks for."""
    async with stdio_session("connect", demo_server.url + "/mcp-servers/petstore") as (session, err):
        discovered = await session.discover()
        assert "2026-07-28" in discovered.supported_versions
        await exercise_petstore(session)
    assert err.text() == ""


async def test_an_sse_session_that_ends_with_its_stream_is_renewed():
    """HTTP+SSE has no session header: the session is the stream. The server restarts (stream gone, session
    unknown), and the next call still succeeds on a new stream, initialized as the client initialized."""
    first = Backend(build_backend("weather").sse_app(sse_path="/test/sse", message_path="/test/messages/"),
                    "/test/sse").start()
    port = first.port
    try:
        async with stdio_session("connect", first.url + "/test/sse", "-v") as (session, err):
            await session.initialize()
            assert text_of(await session.call_tool("echo", {"text": "one"})) == "echo: one"
            first.stop()
            first = Backend(build_backend("weather").sse_app(sse_path="/test/sse", message_path="/test/messages/"),
                            "/test/sse", port=port).start()
            assert text_of(await session.call_tool("echo", {"text": "two"})) == "echo: two"
            assert "a new one is open (renewal 1)" in err.text()
    finally:
        first.stop()


def test_bounded_lines_and_garbage_get_json_rpc_errors_and_nothing_else_reaches_stdout():
    big = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "x" * 5000}}})
    status, out, err = run("connect", f"http://127.0.0.1:{free_port()}/mcp-servers/x", "--max-message-bytes", "2048",
                           lines=["this is not json", big, "[]", '{"jsonrpc": "2.0", "id": 8}'])
    assert status == 0
    assert [(m["id"], m["error"]["code"]) for m in out] == [(None, -32700), (7, -32600), (None, -32600),
                                                             (8, -32600)]
    assert "larger than the bridge passes on (2048 bytes)" in out[1]["error"]["message"]
    assert "Dropped a message of" in err


def test_help_documents_the_commands():
    helped = subprocess.run([sys.executable, "-m", "gateway.local", "connect", "--help"], capture_output=True,
                            text=True)
    for word in ("--key", "MCP_GATEWAY_KEY", "--header", "--query", "--transport", "HTTP+SSE", "exit status",
                 "sampling", "notifications/initialized"):
        assert word in helped.stdout
    routed = subprocess.run([sys.executable, "-m", "gateway.local", "router", "--help"], capture_output=True, text=True)
    assert "MCP_GATEWAY_ROUTER_KEY" in routed.stdout and "search_mcp_server" in routed.stdout
    missing = subprocess.run([sys.executable, "-m", "gateway.local", "router"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin"})
    assert missing.returncode == 2 and "MCP_GATEWAY_URL" in missing.stderr


def test_the_bridge_runs_without_django():
    """It runs on laptops: stdlib and aiohttp only, no settings to find."""
    code = ("import sys\nfrom gateway.local import cli, relay, stdio\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'rest_framework', 'channels', "
            "'console', 'marketplace', 'celery', 'redis'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_connection_goes_through_http_proxy_when_set():
    """Company laptops reach the gateway through a proxy: the bridge sends its requests to HTTP_PROXY. The proxy
    here is a fake at the transport level that records the request and answers 502."""
    import socket
    import threading

    seen_lines: list[str] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            seen_lines.extend(head.decode("latin-1").split("\r\n"))
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    target = f"http://127.0.0.1:{free_port()}/mcp-servers/petstore"
    try:
        status, out, err = run("connect", target, lines=[initialize_line(0)], env={
            "HTTP_PROXY": f"http://127.0.0.1:{listener.getsockname()[1]}", "MCP_GATEWAY_KEY": "mck_" + "p" * 43})
    finally:
        listener.close()
    assert seen_lines[0] == f"POST {target} HTTP/1.1"
    assert "Authorization: Bearer mck_" + "p" * 43 in seen_lines
    assert status == 4 and f"The gateway answered HTTP 502 at {target}" in err
    assert out[0]["id"] == 0 and "HTTP 502" in out[0]["error"]["message"]
