"""MCP transports over HTTP: Streamable HTTP (2025-03-26 and later) and HTTP+SSE (2024-11-05)."""
