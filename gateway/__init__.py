"""Gateway: the data plane that serves MCP endpoints to real clients."""
