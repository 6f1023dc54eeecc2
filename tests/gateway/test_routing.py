"""Which endpoint a path names."""
from gateway.routing import is_gateway_path, match


def test_paths():
    assert match("/mcp-servers/petstore").kind == "streamable"
    assert match("/mcp-servers/petstore/").kind == "streamable"
    assert match("/mcp-servers/petstore/sse").kind == "sse"
    assert match("/mcp-servers/petstore/message").kind == "message"
    ep = match("/instances/default/mcp-servers/petstore/sse")
    assert (ep.instance, ep.name, ep.kind, ep.base) == ("default", "petstore", "sse", "/instances/default/mcp-servers/petstore")
    assert match("/mcp-servers/petstore/other").kind == "unknown"
    assert match("/mcp-servers/") is None
    assert match("/mcp-servers/UPPER") is None
    assert is_gateway_path("/mcp-servers/x") and is_gateway_path("/instances/a/mcp-servers/x")
    assert not is_gateway_path("/api/v1/mcp-servers/") and not is_gateway_path("/")
