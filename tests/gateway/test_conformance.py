"""The MCP conformance suite's server scenarios through a Direct Proxy: whatever passes against the reference server
directly passes through the gateway too (`make conformance`)."""
from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from ..live import free_port
from ..node_tools import require_conformance_tools

pytestmark = pytest.mark.live

SUITE_TIMEOUT = 600
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


def test_every_scenario_passing_directly_passes_through_the_proxy(demo_server, api, reference_server,
                                                                   tmp_path_factory):
    tools, backend_url = reference_server
    instance = api.get("/instances/").json()["results"][0]["id"]
    service = api.post("/services/", json={"instance": instance, "name": "everything", "protocol": "mcp",
                                           "base_url": backend_url})
    assert service.status_code == 201, service.text
    created = api.post("/mcp-servers/", json={"instance": instance, "name": "everything", "server_type": "direct_proxy",
                                              "backend_service": service.json()["id"],
                                              "backend_transport": "streamable_http", "backend_path": "/mcp"})
    assert created.status_code == 201, created.text

    direct = suite(tools, backend_url + "/mcp", tmp_path_factory.mktemp("direct"))
    proxied = suite(tools, demo_server.url + created.json()["endpoints"]["streamable_http"],
                    tmp_path_factory.mktemp("proxied"))
    passing = sorted(name for name, ok in direct.items() if ok)
    assert passing, f"nothing passed against the reference server directly: {direct}"
    lost = [name for name in passing if not proxied.get(name)]
    assert lost == [], f"passed directly but not through the gateway: {lost}"
