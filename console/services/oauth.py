"""OAuth sign-in: consents (which consumer a client acts as), issued tokens' revocation, pre-registered clients."""
from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.text import slugify
from oauth2_provider.models import AccessToken, Application, RefreshToken

from ..errors import DomainError
from ..models import Consumer, ConsumerAuthorization, ConsumerOAuthToken, McpServer, OAuthConsent, Team, TeamOAuthClient
from ..permissions import MANAGE_TEAM, require_role
from .common import audit, config_changed
from .consumers import consumer_authorize, consumer_create

MAX_REDIRECT_URIS = 20
_NAME_TAIL = re.compile(r"[^a-z0-9]+$")


def _consumer_name_for(*, team: Team, client_name: str) -> str:
    """A free consumer name derived from the client's name ("Claude Code" → claude-code, then claude-code-2 …)."""
    base = _NAME_TAIL.sub("", slugify(client_name or "")[:50]) or "oauth-client"
    taken = set(Consumer.objects.filter(team=team, name__startswith=base).values_list("name", flat=True))
    if base not in taken:
        return base
    for n in range(2, 1000):
        if f"{base}-{n}" not in taken:
            return f"{base}-{n}"
    raise DomainError("Too many consumers share this client's name; choose an existing one.")


@transaction.atomic
def oauth_consent_grant(*, actor, mcp_server: McpServer, application: Application, consumer: Consumer | None,
                        scope: str) -> OAuthConsent:
    """The user approves that `application` acts on `mcp_server` as `consumer` (None: a new consumer named after the
    client, created and authorized for all tools, which takes a team admin). An existing consumer must belong to
    the server's team and be authorized on the server already: its tool set applies to the client unchanged."""
    team = mcp_server.instance.team
    role = require_role(actor=actor, team=team, at_least="member")
    if consumer is None:
        require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
        consumer = consumer_create(actor=actor, team=team,
                                   name=_consumer_name_for(team=team, client_name=application.name),
                                   description=f"OAuth client {application.name or application.client_id}"[:2000])
        consumer_authorize(actor=actor, mcp_server=mcp_server, consumer=consumer, tools=None)
    else:
        if consumer.team_id != team.pk:
            raise DomainError("No such consumer.", code="not_found")
        if not consumer.enabled:
            raise DomainError(f"Consumer {consumer.name} is disabled.", {"consumer": ["Choose an enabled consumer."]})
        if not ConsumerAuthorization.objects.filter(mcp_server=mcp_server, consumer=consumer).exists():
            raise DomainError(f"Consumer {consumer.name} is not authorized on {mcp_server.name}.",
                              {"consumer": [f"Authorize {consumer.name} on the server's Consumer Authentication tab, "
                                            "or let the client act as a new consumer."]})
    try:
        with transaction.atomic():
            consent, _ = OAuthConsent.objects.update_or_create(
                mcp_server=mcp_server, application=application, user=actor,
                defaults={"consumer": consumer, "scope": scope[:500]})
    except IntegrityError as exc:  # the same approval, twice at once
        raise DomainError("This approval was just given in another window; try again.") from exc
    audit(actor=actor, team=team, action="oauth.consent", obj=consent,
          detail={"mcp_server": mcp_server.name, "consumer": consumer.name, "client": application.client_id[:200],
                  "client_name": application.name[:200], "scope": scope[:500], "role": role})
    return consent


@transaction.atomic
def consumer_oauth_token_revoke(*, actor, token: ConsumerOAuthToken) -> None:
    """Revoke an issued access token and its refresh token: the gateway refuses it within a second everywhere."""
    team = token.consumer.team
    require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
    audit(actor=actor, team=team, action="consumer.oauth_token_revoke", obj=token,
          detail={"consumer": token.consumer.name, "mcp_server": token.mcp_server.name, "client": token.client_name})
    access = AccessToken.objects.filter(pk=token.access_token_id).first()
    if access is None:
        return
    for refresh in RefreshToken.objects.filter(access_token=access):
        refresh.revoke()  # deletes the access token too
    AccessToken.objects.filter(pk=access.pk).delete()  # the post_delete receiver drops it from the gateway cache


def _clean_redirect_uris(value) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(u, str) for u in value):
        raise DomainError("Please correct the errors below.", {"redirect_uris": ["Give one or more redirect URIs."]})
    uris = [u.strip() for u in value if u.strip()]
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        raise DomainError("Please correct the errors below.",
                          {"redirect_uris": [f"Give 1 to {MAX_REDIRECT_URIS} redirect URIs."]})
    return uris


@transaction.atomic
def oauth_client_register(*, actor, team: Team, name: str, redirect_uris, confidential: bool = False
                          ) -> tuple[TeamOAuthClient, str]:
    """Pre-register a client for the team; returns it and its secret (shown once, empty for a public client)."""
    require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise DomainError("Please correct the errors below.", {"name": ["Give the client a name (at most 255 "
                                                                        "characters)."]})
    uris = _clean_redirect_uris(redirect_uris)
    from oauth2_provider.generators import generate_client_secret

    secret = generate_client_secret() if confidential else ""
    application = Application(name=name.strip(), redirect_uris=" ".join(uris),
                              client_type=Application.CLIENT_CONFIDENTIAL if confidential
                              else Application.CLIENT_PUBLIC,
                              authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                              client_secret=secret, hash_client_secret=True)
    from django.core.exceptions import ValidationError

    try:
        application.full_clean(exclude=["client_secret", "user"])
    except ValidationError as exc:
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field": exc.messages}
        raise DomainError("Please correct the errors below.", details) from None
    application.save()
    client = TeamOAuthClient.objects.create(team=team, application=application, created_by=actor)
    audit(actor=actor, team=team, action="oauth_client.register", obj=client,
          detail={"name": application.name, "client_id": application.client_id, "redirect_uris": uris,
                  "confidential": confidential})
    return client, secret


@transaction.atomic
def oauth_client_delete(*, actor, client: TeamOAuthClient) -> None:
    """Delete a pre-registered client; its tokens go with it (and leave the gateway's cache)."""
    require_role(actor=actor, team=client.team, at_least=MANAGE_TEAM)
    audit(actor=actor, team=client.team, action="oauth_client.delete", obj=client,
          detail={"name": client.application.name, "client_id": client.application.client_id})
    client.application.delete()
    config_changed()
