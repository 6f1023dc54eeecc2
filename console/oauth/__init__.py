"""OAuth sign-in for MCP clients: django-oauth-toolkit bound to MCP servers (resources), consumers and the egress policy."""
