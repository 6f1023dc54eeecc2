"""django-oauth-toolkit's request validator, bound to MCP servers: one resource per token, issued to a consumer."""
from __future__ import annotations

import logging

from django.db import transaction
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.models import AccessToken
from oauthlib.oauth2.rfc6749 import errors

from gateway.oauth_tokens import TokenGrant, token_cache_put, token_digest

from ..models import ConsumerOAuthToken, OAuthConsent
from .resources import scope_of, server_for_resource


log = logging.getLogger(__name__)


def _announce(digest: str, grant: TokenGrant) -> None:
    try:
        token_cache_put(digest=digest, grant=grant)
    except Exception:
        # Redis away: the token is issued all the same; the gateway finds it in the database on first use.
        log.exception("Could not put an issued access token in the gateway cache")


def _invalid_target(request, description: str):
    return errors.CustomOAuth2Error(error="invalid_target", description=description, request=request)


class McpOAuth2Validator(OAuth2Validator):
    """What the library does not know: a token names exactly one MCP server with OAuth sign-in (RFC 8707), carries
    that server's scope, and acts as the consumer the user chose on the consent page; once stored, its
    introspection goes to the gateway's cache (gateway/oauth_tokens.py) when the transaction commits."""

    def _save_bearer_token(self, token, request, *args, **kwargs):
        super()._save_bearer_token(token, request, *args, **kwargs)  # normalizes request.resource (a list)
        resources = list(getattr(request, "resource", None) or [])
        if len(resources) != 1:
            raise _invalid_target(request, "Name exactly one MCP server endpoint as the resource (RFC 8707).")
        server = server_for_resource(resources[0])
        if server is None:
            raise _invalid_target(request, f"{resources[0]} is not an MCP server with OAuth sign-in.")
        scope = scope_of(server)
        if scope not in token["scope"].split():
            raise errors.InvalidScopeError(description=f"The token would lack the scope {scope} of {server.name}.",
                                           request=request)
        consent = (OAuthConsent.objects.select_related("consumer")
                   .filter(mcp_server=server, application=request.client, user=request.user).first())
        if consent is None or not consent.consumer.enabled:
            raise errors.InvalidGrantError(description="No consent for this client on this MCP server; sign in "
                                                       "again.", request=request)
        digest = token_digest(token["access_token"])
        access = AccessToken.objects.get(token_checksum=digest)
        ConsumerOAuthToken.objects.create(access_token=access, consumer=consent.consumer, mcp_server=server,
                                          client_name=(request.client.name or request.client.client_id)[:255])
        grant = TokenGrant(consumer_id=consent.consumer_id, server_id=server.pk, resource=resources[0],
                           scopes=frozenset(token["scope"].split()), expires_at=access.expires.timestamp())
        transaction.on_commit(lambda: _announce(digest, grant))
