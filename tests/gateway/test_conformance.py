"""The MCP conformance suite's server scenarios through a Direct Proxy: whatever passes against a reference server
directly passes through the gateway too (`make conformance`). The references: npm's server-everything, and an MCP SDK
server with the suite's own fixture tools (tests/gateway/conformance_fixture.py)."""
from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from ..live import free_port
from ..node_tools import require_conformance_tools
from .conformance_fixture import build as build_fixture
from .mcp_backends import Backend

pytestmark = pytest.mark.live

SUITE_TIMEOUT = 600
# Scenarios the gateway answers by a policy of its own, whatever the backend does (none today: the gateway refuses a
# rebound Host with a matching Origin itself, as dns-rebinding-protection asks).
GATEWAY_POLICY: set[str] = set()
_RESULT = re.compile(r"^[✓✗]\s+(?P<name>[\w.-]+):\s+(?P<passed>\d+) passed,\s+(?P<failed>\d+) failed", re.MULTILINE)


def suite(tools, url: str, home) -> dict[str, bool]:
    """Scenario name -> passed, as the suite's summary reports them."""
    done = tools.run(tools.bin_dir / "conformance", "server", "--url", url, "-o", str(home / "results"),
                     home=home, timeout=SUITE_TIMEOUT)
    results = {m["name"]: int(m["failed"]) == 0 for m in _RESULT.finditer(done.stdout)}
    assert results, f"no scenario results from the conformance suite:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return results


@pytest.fixture(scope="module")
def reference_server(tmp_path_factory):
    """npm @modelcontextprotocol/server-everything in Streamable HTTP mode on 127.0.0.1."""
    tools = require_conformance_tools()
    home = tmp_path_factory.mktemp("everything")
    port = free_port()
    env = {**tools.env(home), "PORT": str(port)}
    proc = subprocess.Popen([str(tools.bin_dir / "mcp-server-everything"), "streamableHttp"], env=env, cwd=home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the reference MCP server did not start")
            time.sleep(0.2)
    yield tools, f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def same_through_the_proxy(api, demo_server, tools, backend_url: str, name: str, tmp_path_factory) -> list[str]:
    """The scenarios passing directly; fails if any of them fails through a Direct Proxy in front of the server."""
    instance = api.get("/instances/").json()["results"][0]["id"]
    service = api.post("/services/", json={"instance": instance, "name": name, "protocol": "mcp",
                                           "base_url": backend_url})
    assert service.status_code == 201, service.text
    created = api.post("/mcp-servers/", json={"instance": instance, "name": name, "server_type": "direct_proxy",
                                              "backend_service": service.json()["id"],
                                              "backend_transport": "streamable_http", "backend_path": "/mcp"})
    assert created.status_code == 201, created.text

    direct = suite(tools, backend_url + "/mcp", tmp_path_factory.mktemp("direct"))
    proxied = suite(tools, demo_server.url + created.json()["endpoints"]["streamable_http"],
                    tmp_path_factory.mktemp("proxied"))
    passing = sorted(scenario for scenario, ok in direct.items() if ok and scenario not in GATEWAY_POLICY)
    assert passing, f"nothing passed against the reference server directly: {direct}"
    lost = [scenario for scenario in passing if not proxied.get(scenario)]
    assert lost == [], f"passed directly but not through the gateway: {lost}"
    return passing


def test_every_scenario_passing_against_server_everything_passes_through_the_proxy(demo_server, api, reference_server,
                                                                                    tmp_path_factory):
    tools, backend_url = reference_server
    same_through_the_proxy(api, demo_server, tools, backend_url, "everything", tmp_path_factory)


def test_every_scenario_passing_against_the_sdk_fixture_passes_through_the_proxy(demo_server, api, tmp_path_factory):
    tools = require_conformance_tools()
    fixture = Backend(build_fixture().streamable_http_app(streamable_http_path="/mcp"), "/mcp").start()
    try:
        passing = same_through_the_proxy(api, demo_server, tools, fixture.url, "conformance-fixture",
                                         tmp_path_factory)
    finally:
        fixture.stop()
    # The fixture answers the scenarios that need the backend's requests and notifications to cross the gateway.
    assert {"tools-call-sampling", "tools-call-elicitation", "tools-call-with-progress", "tools-call-with-logging",
            "resources-read-binary", "prompts-get-with-image", "completion-complete"} <= set(passing)
