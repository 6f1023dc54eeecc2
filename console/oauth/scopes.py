"""The authorization server's scopes: one per MCP server with OAuth sign-in (`mcp:<instance>/<server>`)."""
from __future__ import annotations

from oauth2_provider.scopes import BaseScopes

from .resources import oauth_servers, scope_of


class McpServerScopes(BaseScopes):
    def get_all_scopes(self):
        return {scope_of(server): f"Use the MCP server {server.name} (instance {server.instance.name}) as a consumer "
                                  f"of team {server.instance.team.name}"
                for server in oauth_servers()}

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        return list(self.get_all_scopes())

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        # No scope asked for: the authorization view fills in the scope of the named resource before this runs.
        return []
