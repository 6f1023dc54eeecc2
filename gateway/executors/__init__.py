"""Executors: how an MCP server type answers tools/call (HTTP-to-MCP calls REST backends)."""
