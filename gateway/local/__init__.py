"""The local stdio bridge: `mcp-gateway connect|router`, a stdio MCP server on a user's machine relaying to the gateway.

Runs on laptops, so it needs neither Django nor the project's settings: the standard library and aiohttp only.
"""
