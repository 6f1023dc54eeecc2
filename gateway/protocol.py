"""MCP protocol revisions served at one access point, and the JSON-RPC error codes the gateway uses."""
from __future__ import annotations

V2024_11_05 = "2024-11-05"
V2025_03_26 = "2025-03-26"
V2025_06_18 = "2025-06-18"
V2025_11_25 = "2025-11-25"
V2026_07_28 = "2026-07-28"

# Revisions that open with initialize and keep a session, oldest first.
HANDSHAKE_VERSIONS = (V2024_11_05, V2025_03_26, V2025_06_18, V2025_11_25)
# Revisions without a handshake: every request carries its version.
STATELESS_VERSIONS = (V2026_07_28,)
SUPPORTED_VERSIONS = HANDSHAKE_VERSIONS + STATELESS_VERSIONS
LATEST_HANDSHAKE = HANDSHAKE_VERSIONS[-1]
# What a Streamable HTTP request without MCP-Protocol-Version is taken to speak (per 2025-06-18).
DEFAULT_HEADERLESS_VERSION = V2025_03_26

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
# Consumer Authentication refusals (HTTP 401 and 403), in the implementation-defined server-error range.
UNAUTHORIZED = -32001
FORBIDDEN = -32003

SERVER_NAME = "mcp-gateway"
SERVER_VERSION = "0.1.0"


def negotiate(requested: object) -> str:
    """initialize: echo a supported handshake revision, else answer the latest one (not an error)."""
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE


def allows_batches(version: str) -> bool:
    return version == V2025_03_26


def tool_errors_in_result(version: str) -> bool:
    """From 2025-11-25 a tool's input-validation failure is an isError result, not a protocol error."""
    return version >= V2025_11_25
