"""The MCP Inspector CLI command shown on Get endpoint, run as shown against a market endpoint: list, then call."""
from __future__ import annotations

import json
import shlex

import pytest

from ..node_tools import require_node_tools

pytestmark = pytest.mark.live

CLI_TIMEOUT = 60  # seconds for one CLI run


@pytest.fixture(scope="module")
def inspector(tmp_path_factory):
    """Listed before demo_server, so a machine without the tools skips (or, under CI, fails) before Daphne starts."""
    tools = require_node_tools()
    home = tmp_path_factory.mktemp("market-inspector-home")

    def run(argv: list[str]):
        done = tools.run(tools.inspector, *argv, "--format", "json", home=home, timeout=CLI_TIMEOUT)
        assert done.returncode == 0, f"mcp-inspector {' '.join(argv)}\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)["result"]
    return run


def shown_commands(answer: dict) -> list[list[str]]:
    """The Inspector CLI lines of the shown configuration, as argument lists after `npx <package>`."""
    text = next(c for c in answer["client_configs"] if c["id"] == "inspector")["text"]
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if "--cli" in words:
            assert words[:2] == ["npx", "@modelcontextprotocol/inspector"], line
            commands.append(words[2:])
    return commands


def with_call(argv: list[str], *call: str) -> list[str]:
    at = argv.index("--method")
    return argv[:at] + ["--method", "tools/call", *call] + argv[at + 2:]


def test_the_shown_inspector_commands_list_and_call_tools(inspector, demo_server, api):
    instance = next(i["id"] for i in api.get("/instances/").json()["results"] if i["name"] == "default")
    for subscription in api.get("/market/subscriptions/").json()["results"]:
        if subscription["listing"] == "petstore":  # another test of the run may hold it: start afresh
            api.delete(f"/market/subscriptions/{subscription['id']}/")
    response = api.post("/market/listings/petstore/subscribe", json={"instance": instance,
                                                                     "config": {"api_key": "demo-key"}})
    assert response.status_code == 201, response.text
    answer = response.json()
    commands = shown_commands(answer)
    assert [c[c.index("--transport") + 1] for c in commands] == ["http", "sse"]
    assert commands[0][1] == answer["endpoints"]["streamable_http"] and commands[1][1] == answer["endpoints"]["sse"]
    assert f"Authorization: Bearer {answer['api_key']}" in commands[0]

    for argv in commands:
        listed = inspector(argv)
        assert {"listPets", "getPet", "createPet"} <= {t["name"] for t in listed["tools"]}
        called = inspector(with_call(argv, "--tool-name", "getPet", "--tool-arg", "petId=1"))
        assert called["isError"] is False
        assert "Rex" in "".join(b.get("text", "") for b in called["content"])
    api.delete(f"/market/subscriptions/{answer['subscription']['id']}/")
