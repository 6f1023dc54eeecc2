"""Issued access tokens as the gateway sees them: the introspection it caches, and dropping it when a token goes."""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from oauth2_provider.models import AccessToken

from gateway.oauth_tokens import TokenGrant, token_cache_drop

log = logging.getLogger(__name__)


def token_grant_of(*, digest: str) -> TokenGrant | None:
    """The grant of a stored, unexpired access token issued to a consumer (None otherwise)."""
    token = (AccessToken.objects.select_related("mcp_grant").filter(token_checksum=digest,
                                                                     expires__gt=timezone.now()).first())
    if token is None:
        return None
    try:
        link = token.mcp_grant
    except AccessToken.mcp_grant.RelatedObjectDoesNotExist:
        return None
    return TokenGrant(consumer_id=link.consumer_id, server_id=link.mcp_server_id,
                      resource=(token.resource or [""])[0], scopes=frozenset(token.scope.split()),
                      expires_at=token.expires.timestamp())


def _drop(digest: str) -> None:
    try:
        token_cache_drop(digests=[digest])
    except Exception:
        # Redis away: its entries' TTLs still end the token, and the gateway refuses with Redis down anyway.
        log.exception("Could not drop a revoked access token from the gateway cache")


# django-oauth-toolkit deletes access tokens from several places (the revocation endpoint, refresh rotation,
# clearing expired tokens, a deleted user or client): one receiver covers them all. The drop waits for the commit,
# so a rolled-back revocation leaves the token working.
@receiver(post_delete, sender=AccessToken, dispatch_uid="mcp_access_token_dropped")
def _access_token_deleted(sender, instance: AccessToken, **kwargs) -> None:
    digest = instance.token_checksum
    if digest:
        transaction.on_commit(lambda: _drop(digest))
