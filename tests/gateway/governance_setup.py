"""A team with a two-tool server behind API keys, consumers alice and bob, and an open server: for governance tests."""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from console import services
from console.models import McpServer
from gateway import protocol as p

from . import consumer_setup as cs
from .asgi_client import AsgiClient

ACCEPT = "application/json, text/event-stream"
GUARDED = "/instances/gov/mcp-servers/guarded"
OPEN = "/instances/gov/mcp-servers/open"

TOOLS_YAML = """
server:
  name: {name}
tools:
  - name: echo
    description: Echoes its text.
    args: [{{name: text, type: string, position: query}}, {{name: password, type: string, position: query}},
           {{name: card, type: string, position: query}}]
    requestTemplate: {{url: {url}/echo, method: GET}}
  - name: other
    description: Another tool.
    requestTemplate: {{url: {url}/other, method: GET}}
  - name: broken
    description: Its backend fails.
    requestTemplate: {{url: {url}/broken, method: GET}}
"""


@dataclass
class World:
    owner: object
    team: object
    guarded: McpServer
    open: McpServer
    consumers: dict
    keys: dict
    client: AsgiClient


def build_world(backend_url: str, app) -> World:
    owner = get_user_model().objects.create_user("gov-owner", password="pw-123456")
    team = services.team_create(name="Governors", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="gov")
    guarded = services.mcp_server_create(actor=owner, instance=instance, name="guarded")
    services.tools_apply_yaml(actor=owner, mcp_server=guarded, text=TOOLS_YAML.format(name="guarded", url=backend_url))
    opened = services.mcp_server_create(actor=owner, instance=instance, name="open")
    services.tools_apply_yaml(actor=owner, mcp_server=opened, text=TOOLS_YAML.format(name="open", url=backend_url))
    consumers, keys = {}, {}
    for name in ("alice", "bob"):
        consumers[name] = cs.consumer_create(team, name)
        keys[name] = cs.key_issue(consumers[name])[1]
        cs.authorize(guarded, consumers[name])
    cs.set_consumer_auth(guarded, enabled=True)
    return World(owner=owner, team=team, guarded=guarded, open=opened, consumers=consumers, keys=keys,
                 client=AsgiClient(app))


def rpc(method: str, params: dict | None = None, id: int = 1) -> dict:
    message: dict = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def call(tool: str = "echo", arguments: dict | None = None, id: int = 2) -> dict:
    return rpc("tools/call", {"name": tool, "arguments": arguments if arguments is not None else {"text": "hi"}}, id)


async def session(client: AsgiClient, path: str, key: str | None = None, version: str = p.V2025_11_25,
                  client_name: str = "gov-test") -> dict[str, str]:
    auth = {"authorization": f"Bearer {key}"} if key else {}
    init = await client.post(path, json=rpc("initialize", {"protocolVersion": version, "capabilities": {},
                                                           "clientInfo": {"name": client_name, "version": "1"}}),
                             headers={"accept": ACCEPT, **auth})
    assert init.status == 200, init.text
    return {"accept": ACCEPT, "mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": version,
            **auth}
