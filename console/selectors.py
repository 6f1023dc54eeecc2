"""Reads of tenant data, always scoped to the acting user's teams (the one place scoping happens)."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from .crypto import mask

from .errors import NotFound
from .models import (
    ApiToken, AuditEvent, BackendService, Consumer, ConsumerApiKey, ConsumerAuthorization, HostedStdioEntry, Instance,
    Invitation, JwtCredential, McpServer, SecurityScheme, Team, TeamMembership, Tool,
)
from .permissions import ROLE_RANK, role_of


def team_list(*, user) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).distinct()


def team_get(*, user, pk: int) -> Team:
    team = team_list(user=user).filter(pk=pk).first()
    if team is None:
        raise NotFound("No such team.")
    return team


def team_role(*, user, team: Team) -> str | None:
    return role_of(user=user, team=team)


def member_list(*, user, team: Team) -> QuerySet[TeamMembership]:
    """The members of one of the user's teams, owners first."""
    team_get(user=user, pk=team.pk)
    # Owners first: the order of ROLE_RANK, highest first.
    rank = Case(*[When(role=r, then=Value(-n)) for r, n in ROLE_RANK.items()], output_field=IntegerField())
    return (TeamMembership.objects.filter(team=team).select_related("user")
            .annotate(role_order=rank).order_by("role_order", "user__username"))


def member_get(*, user, team: Team, user_id: int) -> TeamMembership:
    membership = member_list(user=user, team=team).filter(user_id=user_id).first()
    if membership is None:
        raise NotFound("No such member.")
    return membership


def invitation_list(*, user, team: Team) -> QuerySet[Invitation]:
    team_get(user=user, pk=team.pk)
    return Invitation.objects.filter(team=team).select_related("created_by", "accepted_by", "team")


def invitation_get(*, user, pk: int) -> Invitation:
    invitation = Invitation.objects.filter(pk=pk, team__in=team_list(user=user)).select_related("team").first()
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def invitation_by_secret(*, secret: str) -> Invitation:
    """The invitation a link names; the secret itself is the permission, so this is not scoped by team."""
    if not secret.startswith(Invitation.PREFIX) or len(secret) > 100:
        raise NotFound("No such invitation.")
    invitation = (Invitation.objects.filter(digest=Invitation.digest_of(secret))
                  .select_related("team", "created_by").first())
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def api_token_list(*, user) -> QuerySet[ApiToken]:
    """A user's own REST API tokens (a token is personal: nobody else sees it, not even their team's owner)."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


def api_token_get(*, user, pk: int) -> ApiToken:
    token = api_token_list(user=user).filter(pk=pk).first()
    if token is None:
        raise NotFound("No such API token.")
    return token


def instance_list(*, user, team: Team | None = None) -> QuerySet[Instance]:
    qs = Instance.objects.filter(team__in=team_list(user=user))
    if team is not None:
        qs = qs.filter(team=team)
    return qs.select_related("team").annotate(mcp_server_count=Count("mcp_servers", distinct=True))


def instance_get(*, user, pk: int) -> Instance:
    instance = instance_list(user=user).filter(pk=pk).first()
    if instance is None:
        raise NotFound("No such instance.")
    return instance


def service_list(*, user, instance: Instance | None = None) -> QuerySet[BackendService]:
    qs = BackendService.objects.filter(instance__team__in=team_list(user=user)).select_related("instance")
    if instance is not None:
        qs = qs.filter(instance=instance)
    return qs


def service_get(*, user, pk: int) -> BackendService:
    service = service_list(user=user).filter(pk=pk).first()
    if service is None:
        raise NotFound("No such backend service.")
    return service


def mcp_server_list(*, user, instance: Instance | None = None) -> QuerySet[McpServer]:
    qs = (
        McpServer.objects.filter(instance__team__in=team_list(user=user))
        .select_related("instance", "backend_service")
        .prefetch_related("domains")
        .annotate(tool_count=Count("tools", distinct=True))
    )
    if instance is not None:
        qs = qs.filter(instance=instance)
    return qs


def mcp_server_get(*, user, pk: int) -> McpServer:
    server = mcp_server_list(user=user).filter(pk=pk).first()
    if server is None:
        raise NotFound("No such MCP server.")
    return server


def tool_list(*, user, mcp_server: McpServer) -> QuerySet[Tool]:
    # mcp_server was itself fetched through a scoped selector; re-check so a stray object cannot leak.
    if not team_list(user=user).filter(pk=mcp_server.instance.team_id).exists():
        raise NotFound("No such MCP server.")
    return Tool.objects.filter(mcp_server=mcp_server)


def tool_get(*, user, pk: int) -> Tool:
    tool = Tool.objects.filter(pk=pk, mcp_server__instance__team__in=team_list(user=user)).select_related(
        "mcp_server__instance"
    ).first()
    if tool is None:
        raise NotFound("No such tool.")
    return tool


@dataclass(frozen=True)
class BackendAuth:
    """What the console shows of a server's backend authentication; the credential only masked."""

    kind: str  # none | basic | bearer | api_key
    scheme_id: str = ""
    location: str = ""
    param_name: str = ""
    credential_masked: str = ""

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_masked)

    def as_dict(self) -> dict[str, str | bool]:
        return {"kind": self.kind, "scheme_id": self.scheme_id, "location": self.location,
                "param_name": self.param_name, "credential": self.credential_masked,
                "has_credential": self.has_credential}


def _kind_of(scheme: SecurityScheme) -> str:
    if scheme.type == SecurityScheme.Type.API_KEY:
        return "api_key"
    return "basic" if (scheme.scheme or "").lower() == "basic" else "bearer"


def backend_auth_scheme(server: McpServer) -> tuple[SecurityScheme | None, str]:
    """The scheme `defaultUpstreamSecurity` names and the credential in force, or (None, "")."""
    scheme_id = (server.default_upstream_security or {}).get("id") or ""
    if not scheme_id:
        return None, ""
    scheme = next((s for s in server.security_schemes.all() if s.scheme_id == scheme_id), None)
    if scheme is None:
        return None, ""
    return scheme, server.default_upstream_credential or scheme.default_credential


def backend_auth_get(*, mcp_server: McpServer) -> BackendAuth:
    """The server's default backend authentication (`defaultUpstreamSecurity`), credential masked."""
    scheme, credential = backend_auth_scheme(mcp_server)
    if scheme is None:
        return BackendAuth(kind="none")
    return BackendAuth(kind=_kind_of(scheme), scheme_id=scheme.scheme_id, location=scheme.location,
                       param_name=scheme.param_name, credential_masked=mask(credential))


def audit_event_list(*, user, team: Team | None = None) -> QuerySet[AuditEvent]:
    """Audit events of the user's teams (every role may read them), newest first."""
    qs = AuditEvent.objects.filter(team__in=team_list(user=user)).select_related("actor")
    if team is not None:
        qs = qs.filter(team=team)
    return qs.order_by("-created_at", "-pk")


# ---------------------------------------------------------------- consumers and Consumer Authentication

def consumer_list(*, user, team: Team | None = None) -> QuerySet[Consumer]:
    """The consumers of the user's teams (or of one), with how many keys, credentials and servers each has."""
    qs = Consumer.objects.filter(team__in=team_list(user=user)).select_related("team")
    if team is not None:
        qs = qs.filter(team=team)
    return qs.annotate(
        api_key_count=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True),
        jwt_credential_count=Count("jwt_credentials", distinct=True),
        authorization_count=Count("authorizations", distinct=True),
    ).order_by("name")


def consumer_get(*, user, pk: int) -> Consumer:
    consumer = consumer_list(user=user).filter(pk=pk).first()
    if consumer is None:
        raise NotFound("No such consumer.")
    return consumer


def consumer_api_key_list(*, user, consumer: Consumer) -> QuerySet[ConsumerApiKey]:
    """A consumer's API keys, newest first (revoked ones too, so the list shows when)."""
    return (ConsumerApiKey.objects.filter(consumer=consumer, consumer__team__in=team_list(user=user))
            .select_related("created_by"))


def consumer_api_key_get(*, user, pk: int) -> ConsumerApiKey:
    key = (ConsumerApiKey.objects.filter(pk=pk, consumer__team__in=team_list(user=user))
           .select_related("consumer__team").first())
    if key is None:
        raise NotFound("No such API key.")
    return key


def jwt_credential_list(*, user, consumer: Consumer) -> QuerySet[JwtCredential]:
    return JwtCredential.objects.filter(consumer=consumer, consumer__team__in=team_list(user=user))


def jwt_credential_get(*, user, pk: int) -> JwtCredential:
    credential = (JwtCredential.objects.filter(pk=pk, consumer__team__in=team_list(user=user))
                  .select_related("consumer__team").first())
    if credential is None:
        raise NotFound("No such JWT credential.")
    return credential


def authorization_list(*, user, mcp_server: McpServer) -> QuerySet[ConsumerAuthorization]:
    """The consumers authorized on a server, by consumer name."""
    return (ConsumerAuthorization.objects.filter(mcp_server=mcp_server,
                                                 mcp_server__instance__team__in=team_list(user=user))
            .select_related("consumer"))


def consumer_authorization_list(*, user, consumer: Consumer) -> QuerySet[ConsumerAuthorization]:
    """The servers a consumer is authorized on."""
    return (ConsumerAuthorization.objects.filter(consumer=consumer, consumer__team__in=team_list(user=user))
            .select_related("mcp_server__instance").order_by("mcp_server__instance__name", "mcp_server__name"))


def authorization_get(*, user, mcp_server: McpServer, consumer_id: int) -> ConsumerAuthorization:
    authorization = authorization_list(user=user, mcp_server=mcp_server).filter(consumer_id=consumer_id).first()
    if authorization is None:
        raise NotFound("This consumer is not authorized on this server.")
    return authorization


@dataclass(frozen=True)
class ConsumerAuth:
    """A server's Consumer Authentication settings as the console and the API show them."""

    enabled: bool
    method: str
    source: str
    name: str

    def as_dict(self) -> dict[str, str | bool]:
        return {"enabled": self.enabled, "method": self.method, "source": self.source, "name": self.name}


def consumer_auth_get(*, mcp_server: McpServer) -> ConsumerAuth:
    return ConsumerAuth(enabled=mcp_server.consumer_auth_enabled, method=mcp_server.consumer_auth_method,
                        source=mcp_server.consumer_auth_source, name=mcp_server.consumer_auth_name)


# ---------------------------------------------------------------- governance: rate limits and call records

def rate_limit_list(*, user, mcp_server: McpServer) -> QuerySet:
    from .models import RateLimitPolicy

    return (RateLimitPolicy.objects.filter(mcp_server=mcp_server, mcp_server__instance__team__in=team_list(user=user))
            .select_related("consumer", "mcp_server"))


def rate_limit_get(*, user, pk: int):
    from .models import RateLimitPolicy

    policy = (RateLimitPolicy.objects.filter(pk=pk, mcp_server__instance__team__in=team_list(user=user))
              .select_related("consumer", "mcp_server__instance").first())
    if policy is None:
        raise NotFound("No such rate limit.")
    return policy


def call_record_list(*, user, mcp_server: McpServer | None = None, consumer: Consumer | None = None) -> QuerySet:
    """Call records of the user's teams' servers, newest first; of one server or one consumer."""
    from .models import CallRecord

    qs = CallRecord.objects.filter(mcp_server__instance__team__in=team_list(user=user)).select_related("mcp_server")
    if mcp_server is not None:
        qs = qs.filter(mcp_server=mcp_server)
    if consumer is not None:
        qs = qs.filter(consumer=consumer)
    return qs


def call_record_get(*, user, pk: int):
    record = call_record_list(user=user).filter(pk=pk).first()
    if record is None:
        raise NotFound("No such call record.")
    return record


def call_record_settings_get(*, mcp_server: McpServer):
    from .models import CallRecordSettings

    return CallRecordSettings.objects.filter(mcp_server=mcp_server).first() or CallRecordSettings(mcp_server=mcp_server)


def rate_limit_list_of_consumer(*, user, consumer: Consumer) -> QuerySet:
    from .models import RateLimitPolicy

    return (RateLimitPolicy.objects.filter(consumer=consumer, mcp_server__instance__team__in=team_list(user=user))
            .select_related("mcp_server", "mcp_server__instance"))
def circuit_breaker_get(*, service: BackendService):
    """The service's circuit breaking setting (an unsaved default, off, when never set)."""
    from .models import CircuitBreaker

    try:
        return service.circuit_breaker
    except CircuitBreaker.DoesNotExist:
        return CircuitBreaker(service=service)
def import_job_list(*, user, mcp_server: McpServer | None = None) -> QuerySet:
    from .models import ImportJob

    qs = ImportJob.objects.filter(mcp_server__instance__team__in=team_list(user=user)).select_related(
        "mcp_server__instance").defer("source", "preview_yaml", "preview")
    return qs.filter(mcp_server=mcp_server) if mcp_server is not None else qs


def import_job_get(*, user, pk: int):
    from .models import ImportJob

    job = ImportJob.objects.filter(pk=pk, mcp_server__instance__team__in=team_list(user=user)).select_related(
        "mcp_server__instance__team", "mcp_server__backend_service").first()
    if job is None:
        raise NotFound("No such import.")
    return job


# ---------------------------------------------------------------- the catalogue of hosted stdio servers

def is_staff(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and (user.is_staff or user.is_superuser))


def hosted_entry_list(*, user) -> QuerySet[HostedStdioEntry]:
    """Staff see the whole catalogue; everyone else the installed entries they may pick for a server."""
    if is_staff(user):
        return HostedStdioEntry.objects.all()
    if not getattr(user, "is_authenticated", False):
        return HostedStdioEntry.objects.none()
    return HostedStdioEntry.objects.filter(state=HostedStdioEntry.State.INSTALLED)


def hosted_entry_get(*, user, pk: int) -> HostedStdioEntry:
    entry = hosted_entry_list(user=user).filter(pk=pk).first()
    if entry is None:
        raise NotFound("No such hosted stdio entry.")
    return entry


def hosted_entry_choice(*, pk: int) -> HostedStdioEntry:
    """An entry a server may run (any team): installed ones only; the service says why another one is refused."""
    entry = HostedStdioEntry.objects.filter(pk=pk).first()
    if entry is None:
        raise NotFound("No such hosted stdio entry.")
    return entry

# ---------------------------------------------------------------- OAuth sign-in

def consumer_oauth_token_list(*, user, consumer: Consumer):
    """The access tokens issued to OAuth clients acting as a consumer, newest first (live ones: revoked tokens are
    deleted, expired ones kept until cleared)."""
    from .models import ConsumerOAuthToken

    return (ConsumerOAuthToken.objects.filter(consumer=consumer, consumer__team__in=team_list(user=user))
            .select_related("access_token", "mcp_server__instance", "consumer__team"))


def consumer_oauth_token_get(*, user, pk: int):
    from .models import ConsumerOAuthToken

    token = (ConsumerOAuthToken.objects.filter(pk=pk, consumer__team__in=team_list(user=user))
             .select_related("access_token", "mcp_server__instance", "consumer__team").first())
    if token is None:
        raise NotFound("No such OAuth token.")
    return token


def oauth_client_list(*, user, team: Team | None = None):
    """OAuth clients the team's operators registered (clients that register themselves belong to no team)."""
    from .models import TeamOAuthClient

    qs = TeamOAuthClient.objects.filter(team__in=team_list(user=user)).select_related("application", "team",
                                                                                        "created_by")
    if team is not None:
        qs = qs.filter(team=team)
    return qs


def oauth_client_get(*, user, pk: int):
    client = oauth_client_list(user=user).filter(pk=pk).first()
    if client is None:
        raise NotFound("No such OAuth client.")
    return client
