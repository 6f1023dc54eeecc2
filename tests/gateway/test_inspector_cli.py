"""The official MCP Inspector CLI against a live gateway, run as a user would run it, over both transports.

Exit codes and the one-line JSON error envelope on stderr are the CLI's documented contract:
0 ok, 1 error, 3 auth required, 4 unreachable, 5 the tool returned isError: true.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..live import free_port
from ..node_tools import NodeTools, require_node_tools
from .consumer_setup import guarded_petstore_api

pytestmark = pytest.mark.live

CLI_TIMEOUT = 60  # seconds for one CLI run; each takes well under one
PETSTORE = "/mcp-servers/petstore"
PATHS = {"http": PETSTORE, "sse": PETSTORE + "/sse"}
PETSTORE_TOOLS = {"listPets", "getPet", "createPet", "updatePet", "deletePet", "getPetJson"}

# (transport, --protocol-era): the CLI's ad-hoc default is the legacy initialize handshake; "modern" speaks
# stateless 2026-07-28 and "auto" probes with server/discover first.
CONNECTIONS = [
    pytest.param("http", None, id="http"),
    pytest.param("http", "modern", id="http-modern"),
    pytest.param("http", "auto", id="http-auto"),
    pytest.param("sse", None, id="sse"),
]


@dataclass
class Outcome:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"mcp-inspector {' '.join(self.args)}\nexit {self.returncode}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}")

    @property
    def result(self) -> dict:
        """The `result` of the `--format json` envelope on stdout."""
        try:
            return json.loads(self.stdout)["result"]
        except (ValueError, KeyError) as exc:
            raise AssertionError(f"no JSON result on stdout ({exc}):\n{self.describe()}") from None

    @property
    def error(self) -> dict:
        """The `error` of the last JSON envelope on stderr."""
        for line in reversed(self.stderr.strip().splitlines()):
            try:
                return json.loads(line)["error"]
            except (ValueError, KeyError, TypeError):
                continue
        raise AssertionError(f"no JSON error envelope on stderr:\n{self.describe()}")


@dataclass
class Inspector:
    tools: NodeTools
    home: Path

    def __call__(self, url: str, transport: str, *args: str, era: str | None = None) -> Outcome:
        argv = ["--cli", url, "--transport", transport, "--format", "json", *args]
        if era:
            argv += ["--protocol-era", era]
        try:
            done = self.tools.run(self.tools.inspector, *argv, home=self.home, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"mcp-inspector {' '.join(argv)} did not finish within {CLI_TIMEOUT}s\n"
                        f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}")
        return Outcome(argv, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def inspector(tmp_path_factory) -> Inspector:
    """Listed before demo_server in the tests, so a machine without the tools skips before starting Daphne."""
    return Inspector(require_node_tools(), tmp_path_factory.mktemp("inspector-home"))


def text_of(result: dict) -> str:
    return "\n".join(block["text"] for block in result["content"] if block.get("type") == "text")


@pytest.mark.parametrize(("transport", "era"), CONNECTIONS)
def test_tools_list(inspector, demo_server, transport, era):
    run = inspector(demo_server.url + PATHS[transport], transport, "--method", "tools/list", era=era)
    assert run.returncode == 0, run.describe()
    tools = {tool["name"]: tool for tool in run.result["tools"]}
    assert PETSTORE_TOOLS <= set(tools), run.describe()
    get_pet = tools["getPet"]["inputSchema"]
    assert get_pet["properties"]["petId"]["type"] == "integer"
    assert get_pet["required"] == ["petId"]
    assert "outputSchema" in tools["getPetJson"]


@pytest.mark.parametrize(("transport", "era"), CONNECTIONS)
def test_get_pet(inspector, demo_server, transport, era):
    run = inspector(demo_server.url + PATHS[transport], transport, "--method", "tools/call",
                    "--tool-name", "getPet", "--tool-arg", "petId=1", era=era)
    assert run.returncode == 0, run.describe()
    assert run.result["isError"] is False, run.describe()
    assert "Rex" in text_of(run.result)


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_missing_pet_is_a_tool_error(inspector, demo_server, transport):
    run = inspector(demo_server.url + PATHS[transport], transport, "--method", "tools/call",
                    "--tool-name", "getPet", "--tool-arg", "petId=99999")
    assert run.returncode == 5, run.describe()
    assert run.result["isError"] is True  # the result is still printed in full
    text = text_of(run.result)
    assert "not found" in text.lower() or "404" in text, run.describe()
    assert run.error["code"] == "tool_is_error"


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_unknown_server(inspector, demo_server, transport):
    url = demo_server.url + "/mcp-servers/no-such-server" + ("/sse" if transport == "sse" else "")
    run = inspector(url, transport, "--method", "tools/list")
    assert run.returncode == 1, run.describe()
    assert run.stdout.strip() == ""
    assert run.error["code"] == "error"
    assert run.error["status"] == 404


def test_unreachable_gateway(inspector):
    run = inspector(f"http://127.0.0.1:{free_port()}{PETSTORE}", "http", "--method", "tools/list")
    assert run.returncode == 4, run.describe()
    assert run.error["code"] == "unreachable"


def test_auto_era_over_sse(inspector, demo_server):
    run = inspector(demo_server.url + PATHS["sse"], "sse", "--method", "tools/list", era="auto")
    assert run.returncode == 0, run.describe()
    assert PETSTORE_TOOLS <= {tool["name"] for tool in run.result["tools"]}


# ------------------------------------------------------------ Consumer Authentication

@pytest.fixture(scope="module")
def guarded_key(demo_server, api_token) -> str:
    """A copy of petstore with API-key authentication on; its one consumer's key."""
    return guarded_petstore_api(demo_server, api_token, "guarded-cli")["consumers"]["agent"]["key"]


# How the CLI words the gateway's 401 on each connection: the JSON-RPC body itself where it shows it.
REFUSAL_SAYS = {
    ("http", None): "This MCP server requires an API key: send it as Authorization: Bearer <key>.",
    ("http", "modern"): "the server requires authorization (HTTP 401)",
    ("http", "auto"): "the server requires authorization (HTTP 401)",
    ("sse", None): "Non-200 status code (401)",
}
GUARDED_PATHS = {"http": "/mcp-servers/guarded-cli", "sse": "/mcp-servers/guarded-cli/sse"}


@pytest.mark.parametrize(("transport", "era"), CONNECTIONS)
def test_with_an_api_key_in_the_header(inspector, demo_server, guarded_key, transport, era):
    url = demo_server.url + GUARDED_PATHS[transport]
    run = inspector(url, transport, "--method", "tools/call", "--tool-name", "getPet", "--tool-arg", "petId=1",
                    "--header", f"Authorization: Bearer {guarded_key}", era=era)
    assert run.returncode == 0, run.describe()
    assert run.result["isError"] is False, run.describe()
    assert "Rex" in text_of(run.result)
    assert guarded_key not in run.stdout + run.stderr


@pytest.mark.parametrize(("transport", "era"), CONNECTIONS)
def test_without_a_key_auth_is_required(inspector, demo_server, guarded_key, transport, era):
    url = demo_server.url + GUARDED_PATHS[transport]
    run = inspector(url, transport, "--method", "tools/list", era=era)
    assert run.returncode == 3, run.describe()
    assert run.stdout.strip() == ""
    assert run.error["code"] == "auth_required", run.describe()
    # Told not to start an OAuth flow, the CLI reports what the gateway answered.
    for args in ([], ["--header", "Authorization: Bearer mck_not-a-key"]):
        refused = inspector(url, transport, "--method", "tools/list", "--stored-auth-only", *args, era=era)
        assert refused.returncode == 3, refused.describe()
        assert refused.error["code"] == "auth_required", refused.describe()
        assert REFUSAL_SAYS[(transport, era)] in refused.error["message"], refused.describe()
