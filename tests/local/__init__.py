"""Tests of the local stdio bridge (gateway/local/): `mcp-gateway connect` and `mcp-gateway router`."""
