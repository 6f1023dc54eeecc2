"""The public endpoints of an MCP server and ready-to-paste client configurations for them."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..models import McpServer


@dataclass(frozen=True)
class Endpoint:
    label: str
    hint: str
    streamable_http: str
    sse: str
    # A Direct Proxy also answers at its backend's path, in its backend's transport (/mcp-servers/weather/test/sse).
    backend_path: str = ""


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
    if server.server_type == McpServer.Type.DIRECT_PROXY and server.backend_path:
        result = [replace(e, backend_path=e.streamable_http + server.backend_path) for e in result]
    return result


def primary_endpoint(server: McpServer, base_url: str) -> Endpoint:
    """The endpoint the client configurations use: the first domain, else one that needs no DNS."""
    items = endpoints(server, base_url)
    if server.domains.all():
        return items[0]
    return items[-1]


def credential_placeholder(server: McpServer) -> str:
    return "<YOUR_JWT>" if server.consumer_auth_method == "jwt" else "<YOUR_API_KEY>"


def credential_header(server: McpServer) -> tuple[str, str] | None:
    """The header a client sends its credential in when Consumer Authentication is on (None: none, or a query)."""
    if not server.consumer_auth_enabled or server.consumer_auth_source == "query":
        return None
    if server.consumer_auth_method == "oauth":
        return None  # the client signs in itself: only the URL goes into its configuration
    placeholder = credential_placeholder(server)
    if server.consumer_auth_source == "header":
        return server.consumer_auth_name, placeholder
    return "Authorization", f"Bearer {placeholder}"


def with_credential_query(server: McpServer, url: str) -> str:
    if not server.consumer_auth_enabled or server.consumer_auth_source != "query":
        return url
    return f"{url}{'&' if '?' in url else '?'}{server.consumer_auth_name}={credential_placeholder(server)}"


# Shown next to every configuration that launches the local stdio bridge (gateway/local/).
BRIDGE_INSTALL = ("Install the mcp-gateway command once: pip install mcp-gateway-console (this gateway's Python "
                  "package; Python 3.11+). It relays stdio to the endpoint; the key stays in the client's env.")


def bridge_config(server: McpServer, endpoint: Endpoint) -> dict:
    """The mcpServers entry that launches `mcp-gateway connect`: for clients that only start stdio servers."""
    args = ["connect", endpoint.streamable_http]
    entry: dict = {"command": "mcp-gateway", "args": args}
    if server.consumer_auth_enabled:
        # The key goes in env, never in the URL or the arguments (both show in process lists and logs).
        if server.consumer_auth_source == "header":
            args += ["--header", server.consumer_auth_name]
        elif server.consumer_auth_source == "query":
            args += ["--query", server.consumer_auth_name]
        entry["env"] = {"MCP_GATEWAY_KEY": credential_placeholder(server)}
    return {"mcpServers": {server.name: entry}}


def client_configs(server: McpServer, endpoint: Endpoint) -> list[dict[str, str]]:
    """Ready-to-paste configurations; with Consumer Authentication on they carry the credential's header (or query
    parameter) with a placeholder for the key."""
    url = with_credential_query(server, endpoint.streamable_http)
    sse = with_credential_query(server, endpoint.sse)
    name = server.name
    header = credential_header(server)
    remote_args = ["-y", "mcp-remote", url]
    cursor_entry: dict = {"url": url}
    vscode_entry: dict = {"type": "http", "url": url}
    cli_header = ""
    if header is not None:
        header_name, header_value = header
        remote_args += ["--header", f"{header_name}: {header_value}"]
        cursor_entry["headers"] = {header_name: header_value}
        vscode_entry["headers"] = {header_name: header_value}
        cli_header = f' --header "{header_name}: {header_value}"'
    claude = {"mcpServers": {name: {"command": "npx", "args": remote_args}}}
    cursor = {"mcpServers": {name: cursor_entry}}
    vscode = {"servers": {name: vscode_entry}}
    ui_hint = ""
    if header is not None:
        ui_hint = f", and add the header {header[0]}: {header[1]}"
    def shell(u: str) -> str:
        return f"'{u}'" if "?" in u else u  # a query string's & and ? mean something to the shell

    inspector = "\n".join([
        f"npx @modelcontextprotocol/inspector --cli {shell(url)} --transport http{cli_header} --method tools/list",
        f"npx @modelcontextprotocol/inspector --cli {shell(sse)} --transport sse{cli_header} --method tools/list",
        f"npx @modelcontextprotocol/inspector   # the web UI: choose Streamable HTTP and paste {url}{ui_hint}",
    ])
    secret_note = ""
    if server.consumer_auth_enabled and server.consumer_auth_method == "oauth":
        secret_note = ("OAuth sign-in: the client opens the console's sign-in page in a browser the first time it "
                       "connects; no key goes into this file.")
    elif server.consumer_auth_enabled:
        secret_note = f"Replace {credential_placeholder(server)} with a consumer's key."
    bridge_note = secret_note
    if server.consumer_auth_enabled and server.consumer_auth_method == "oauth":
        # The bridge runs unattended, with no browser to sign in with: it sends a consumer's API key, which an
        # OAuth server accepts beside the tokens it issues.
        bridge_note = (f"The bridge does not sign in with OAuth: replace {credential_placeholder(server)} with an "
                       "API key of a consumer authorized on this server.")
    return [
        {"id": "claude", "label": "Claude Desktop", "file": "claude_desktop_config.json",
         "note": " ".join(filter(None, ["Claude Desktop reaches remote servers through mcp-remote.", secret_note])),
         "text": json.dumps(claude, indent=2)},
        {"id": "cursor", "label": "Cursor", "file": "~/.cursor/mcp.json", "note": secret_note,
         "text": json.dumps(cursor, indent=2)},
        {"id": "vscode", "label": "VS Code", "file": ".vscode/mcp.json", "note": secret_note,
         "text": json.dumps(vscode, indent=2)},
        {"id": "inspector", "label": "MCP Inspector", "file": "command line", "note": secret_note, "text": inspector},
        {"id": "stdio", "label": "Local stdio bridge", "file": "mcpServers of any client that launches stdio servers",
         "note": bridge_note, "install": BRIDGE_INSTALL, "text": json.dumps(bridge_config(server, endpoint), indent=2)},
    ]
