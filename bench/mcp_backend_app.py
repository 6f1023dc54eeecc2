"""The backend MCP server of the `proxy` scenario: the MCP SDK's server with one tool `getPet`, stateless JSON."""
from __future__ import annotations

from mcp.server.mcpserver import MCPServer

PET = {"id": 1, "name": "Rex", "status": "available", "tag": "dog"}

mcp = MCPServer("bench-backend")


@mcp.tool(description="Fetch one pet by its id.")
def getPet(petId: int) -> dict:  # noqa: N802, N803  (the bench's tool and argument names)
    return {**PET, "id": petId}


# Stateless JSON, the cheapest shape the SDK serves: the figures measure the gateway in front of it.
app = mcp.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True)
