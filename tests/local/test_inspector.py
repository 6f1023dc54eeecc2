"""The MCP Inspector's CLI (a Node client, not ours) launching `mcp-gateway connect` as its stdio server, with the
consumer key in the child's environment (`-e`), as its documentation shows for any stdio server."""
from __future__ import annotations

import json
import sys

import pytest

from ..gateway.consumer_setup import guarded_petstore_api
from ..node_tools import require_node_tools

pytestmark = pytest.mark.live


def test_inspector_cli_lists_and_calls_through_the_bridge(demo_server, api_token, tmp_path):
    tools = require_node_tools()
    guarded = guarded_petstore_api(demo_server, api_token, "bridge-inspector")
    key = guarded["consumers"]["agent"]["key"]
    bridge = [sys.executable, "-m", "gateway.local", "connect", demo_server.url + "/mcp-servers/bridge-inspector"]

    listed = tools.run(tools.inspector, "--cli", "-e", f"MCP_GATEWAY_KEY={key}", *bridge, "--method", "tools/list",
                       home=tmp_path, timeout=90)
    assert listed.returncode == 0, (listed.stdout, listed.stderr)
    assert {"getPet", "listPets"} <= {tool["name"] for tool in json.loads(listed.stdout)["tools"]}

    called = tools.run(tools.inspector, "--cli", "-e", f"MCP_GATEWAY_KEY={key}", *bridge, "--method", "tools/call",
                       "--tool-name", "getPet", "--tool-arg", "petId=1", home=tmp_path, timeout=90)
    assert called.returncode == 0, (called.stdout, called.stderr)
    assert json.loads(called.stdout)["content"][0]["text"].startswith("Pet 1: Rex")

    refused = tools.run(tools.inspector, "--cli", "-e", "MCP_GATEWAY_KEY=mck_wrong", *bridge, "--method",
                        "tools/list", home=tmp_path, timeout=90)
    assert refused.returncode != 0
    assert "refused the consumer credential" in refused.stdout + refused.stderr
