"""Small synchronous HTTP helpers: MCP requests for setup and probes, and the console's REST API."""
from __future__ import annotations

import http.client
import json
from typing import Any

STATELESS = "2026-07-28"
SESSION = "2025-11-25"
META = {"io.modelcontextprotocol/protocolVersion": STATELESS, "io.modelcontextprotocol/clientCapabilities": {}}


class Http:
    """One keep-alive connection to host:port."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if isinstance(body, str):
            body = body.encode()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def initialize(http: Http, path: str, headers: dict[str, str] | None = None) -> str:
    """A 2025-11-25 session, initialized and ready for tools/call; returns its Mcp-Session-Id.
    `headers` are sent with every request (a consumer's credential)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               **(headers or {})}
    status, h, data = http.request("POST", path, json.dumps({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": SESSION, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
    }), headers)
    sid = h.get("mcp-session-id")
    if status != 200 or not sid:
        raise RuntimeError(f"initialize on {path} -> {status} {data[:300]!r}")
    headers.update({"Mcp-Session-Id": sid, "MCP-Protocol-Version": SESSION})
    status, _, data = http.request("POST", path, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                                   headers)
    if status not in (200, 202):
        raise RuntimeError(f"notifications/initialized on {path} -> {status} {data[:300]!r}")
    return sid


def stateless(http: Http, path: str, method: str, params: dict | None = None, *,
              name: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One 2026-07-28 request (headers and _meta as the revision requires; `headers` added, e.g. a credential)."""
    params = dict(params or {})
    params["_meta"] = META
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": STATELESS, "Mcp-Method": method, **(headers or {})}
    if name is not None:
        headers["Mcp-Name"] = name
    status, _, data = http.request("POST", path, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                                             "params": params}), headers)
    return status, _json(data)


def call_ok(status: int, message: Any, expect: str = "Rex") -> bool:
    result = message.get("result") if isinstance(message, dict) else None
    return status == 200 and isinstance(result, dict) and not result.get("isError") and expect in json.dumps(result)


class Api:
    """The console's REST API with a Bearer token."""

    def __init__(self, port: int, token: str):
        self.http = Http(port)
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
        status, _, data = self.http.request(method, path, body, headers)
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:2000].decode('utf-8', 'replace')}")
        return _json(data)
