"""The public endpoints of an MCP server and ready-to-paste client configurations for them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..models import McpServer


@dataclass(frozen=True)
class Endpoint:
    label: str
    hint: str
    streamable_http: str
    sse: str


def server_path(server: McpServer) -> str:
    return f"/mcp-servers/{server.name}"


def no_dns_path(server: McpServer) -> str:
    return f"/instances/{server.instance.name}/mcp-servers/{server.name}"


def endpoints(server: McpServer, base_url: str) -> list[Endpoint]:
    """One entry per domain, then the no-DNS path form, then (default instance only) the bare path."""
    scheme = urlsplit(base_url).scheme or "http"
    result = [
        Endpoint(label=domain.host, hint="Point this domain's DNS at the gateway.",
                 streamable_http=f"{scheme}://{domain.host}{server_path(server)}",
                 sse=f"{scheme}://{domain.host}{server_path(server)}/sse")
        for domain in server.domains.all()
    ]
    result.append(Endpoint(label="Without DNS", hint="Names the instance in the path; works on any host name.",
                           streamable_http=base_url + no_dns_path(server), sse=base_url + no_dns_path(server) + "/sse"))
    if server.instance.is_default:
        result.append(Endpoint(label="Default instance", hint="This instance answers hosts that match no domain.",
                               streamable_http=base_url + server_path(server),
                               sse=base_url + server_path(server) + "/sse"))
    return result


def primary_endpoint(server: McpServer, base_url: str) -> Endpoint:
    """The endpoint the client configurations use: the first domain, else one that needs no DNS."""
    items = endpoints(server, base_url)
    if server.domains.all():
        return items[0]
    return items[-1]


def client_configs(server: McpServer, endpoint: Endpoint) -> list[dict[str, str]]:
    url = endpoint.streamable_http
    name = server.name
    claude = {"mcpServers": {name: {"command": "npx", "args": ["-y", "mcp-remote", url]}}}
    cursor = {"mcpServers": {name: {"url": url}}}
    vscode = {"servers": {name: {"type": "http", "url": url}}}
    inspector = "\n".join([
        f"npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/list",
        f"npx @modelcontextprotocol/inspector --cli {endpoint.sse} --transport sse --method tools/list",
        f"npx @modelcontextprotocol/inspector   # the web UI: choose Streamable HTTP and paste {url}",
    ])
    return [
        {"id": "claude", "label": "Claude Desktop", "file": "claude_desktop_config.json",
         "note": "Claude Desktop reaches remote servers through mcp-remote.", "text": json.dumps(claude, indent=2)},
        {"id": "cursor", "label": "Cursor", "file": "~/.cursor/mcp.json", "note": "",
         "text": json.dumps(cursor, indent=2)},
        {"id": "vscode", "label": "VS Code", "file": ".vscode/mcp.json", "note": "",
         "text": json.dumps(vscode, indent=2)},
        {"id": "inspector", "label": "MCP Inspector", "file": "command line", "note": "", "text": inspector},
    ]
