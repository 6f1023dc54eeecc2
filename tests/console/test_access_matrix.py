"""Every console page and API endpoint × every role × own or other team: 404 for another team's objects, 403 for
a role that may not act (and nothing changes), success for a role that may, the sign-in page for nobody.

The URLs come from the URL conf: a URL name without an entry in ENTRIES (or in PUBLIC) fails the test, so a
new page cannot be forgotten."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.http import urlencode

from console import services
from console.models import (
    ApiToken, AuditEvent, BackendService, CallRecord, CallRecordSettings, CircuitBreaker, Consumer, ConsumerApiKey,
    ConsumerAuthorization, ImportJob, Instance, Invitation, JwtCredential, McpServer, RateLimitPolicy, Team,
    TeamMembership, Tool,
)
from console.permissions import ROLE_RANK
from console.toolyaml import tool_to_yaml

ROLES = ["owner", "admin", "member", "viewer"]
OTHER_MARK = "zeta"  # every name in the other team carries it, so a leak shows in any answer

# Anyone may open these (or they are the gateway's own, not a tenant's).
PUBLIC = {
    "login", "logout", "signup", "invitation_accept", "healthz", "readyz", "api_schema",
    "demo_api_openapi", "demo_pet_list", "demo_pet",
    "metrics",  # loopback, METRICS_ALLOW or METRICS_TOKEN, never a team's
    # The market's demo APIs; its router endpoint authenticates with its own key; the MCP Registry API answers
    # 401 itself unless MARKET_ANONYMOUS_BROWSING opens it.
    "market_demo_weather", "market_demo_forecast", "market_demo_cat_image", "market_demo_cat_fact",
    "market_router_mcp", "registry_server_list", "registry_server_versions", "registry_server_version",
    # OAuth sign-in's discovery documents (RFC 8414, RFC 9728): public by definition.
    "oauth_server_metadata", "oauth_resource_metadata",
}
# Django's admin site is for staff (superusers), not for team roles.
EXCLUDED_NAMESPACES = {"admin"}
# The OAuth authorization server's endpoints authenticate clients and sign people in themselves (client ids, PKCE,
# the sign-in page); what they allow is tested in tests/gateway/test_oauth_spec.py.
EXCLUDED_NAMESPACES |= {"oauth2_provider"}

TOOL_YAML = """\
tools:
  - name: getPet
    description: Fetch one pet.
    args:
      - {name: petId, type: integer, required: true, position: path}
    requestTemplate:
      url: "{{.config.baseUrl}}/pets/{petId}"
      method: GET
"""
NEW_TOOL_YAML = TOOL_YAML.replace("getPet", "listPets").replace("/pets/{petId}", "/pets").replace(
    "    args:\n      - {name: petId, type: integer, required: true, position: path}\n", "")


# ---------------------------------------------------------------- the world every case acts in

@dataclass
class Side:
    """One team and one of each object, for the own team or the other."""

    team: Team
    owner: Any
    extra: Any  # a viewer to change or remove
    instance: Instance
    service: BackendService  # in use by the server
    spare: BackendService  # unused, so it can be deleted
    server: McpServer
    tool: Tool
    invitation: Invitation
    consumer: Consumer  # authorized on the server, with an API key and a JWT credential
    api_key: ConsumerApiKey
    jwt_credential: JwtCredential
    rate_limit: Any = None  # the server's policy for every consumer
    call: Any = None  # one call record of the server by the consumer
    import_job: Any = None  # a finished OpenAPI import into the server, not applied yet (ImportJob)
    oauth_token: Any = None  # an access token issued to an OAuth client acting as the consumer (ConsumerOAuthToken)
    oauth_client: Any = None  # a client the team pre-registered (TeamOAuthClient)


def _oauth_token(server, consumer, application, user):
    """A token as the authorization server stores one after a consent (the flow itself: tests/gateway/test_oauth_*)."""
    from datetime import timedelta

    from oauth2_provider.models import AccessToken

    from console.models import ConsumerOAuthToken

    access = AccessToken.objects.create(user=user, application=application, token="", expires=timezone.now() +
                                        timedelta(hours=1), scope=f"mcp:{server.instance.name}/{server.name}",
                                        token_checksum=f"{server.pk:064d}")
    return ConsumerOAuthToken.objects.create(access_token=access, consumer=consumer, mcp_server=server,
                                             client_name=application.name)


def _side(prefix: str, users: dict[str, Any]) -> Side:
    owner = users["owner"]
    team = services.team_create(name=f"{prefix.title()} Team", owner=owner)
    for role in ("admin", "member", "viewer"):
        if role in users:
            services.team_member_add(team=team, user=users[role], role=role)
    extra = get_user_model().objects.create_user(f"{prefix}-extra")
    services.team_member_add(team=team, user=extra, role="viewer")
    instance = services.instance_create(actor=None, team=team, name=f"{prefix}-inst")
    service = services.service_create(actor=None, instance=instance, name=f"{prefix}-api",
                                      base_url="http://127.0.0.1:9")
    spare = services.service_create(actor=None, instance=instance, name=f"{prefix}-spare",
                                    base_url="http://127.0.0.1:9/spare")
    server = services.mcp_server_create(actor=None, instance=instance, name=f"{prefix}-pets", backend_service=service,
                                        config={"baseUrl": service.base_url})
    services.tools_apply_yaml(actor=None, mcp_server=server, text=TOOL_YAML)
    invitation, _ = services.invitation_create(actor=None, team=team, role="viewer")
    consumer = services.consumer_create(actor=None, team=team, name=f"{prefix}-agent")
    api_key, _ = services.consumer_api_key_issue(actor=None, consumer=consumer, name=f"{prefix}-key")
    jwt_credential = services.jwt_credential_create(actor=None, consumer=consumer, algorithm="HS256",
                                                    secret="s" * 40)
    services.consumer_authorize(actor=None, mcp_server=server, consumer=consumer)
    rate_limit = services.rate_limit_create(actor=None, mcp_server=server, requests=60, window="minute")
    call = CallRecord.objects.create(at=timezone.now(), mcp_server=server, instance=instance.name, consumer=consumer,
                                     consumer_name=consumer.name, tool="getPet", outcome="ok", latency_ms=3.5)
    from console.services.imports import _pack, import_job_run

    job = ImportJob.objects.create(mcp_server=server, source_kind="text", source_name="pasted text",
                                   source=_pack([("pasted.json", IMPORT_SPEC.encode())]))
    import_job_run(job_id=job.pk)  # the task's own call, here in the foreground
    oauth_client, _ = services.oauth_client_register(actor=None, team=team, name=f"{prefix} portal",
                                                     redirect_uris=["https://portal.example.test/cb"])
    oauth_token = _oauth_token(server, consumer, oauth_client.application, owner)
    return Side(oauth_token=oauth_token, oauth_client=oauth_client, team=team, owner=owner, extra=extra, instance=instance, service=service, spare=spare, server=server,
                tool=server.tools.get(), invitation=invitation, consumer=consumer, api_key=api_key,
                jwt_credential=jwt_credential, rate_limit=rate_limit, call=call,
                import_job=ImportJob.objects.get(pk=job.pk))


@dataclass
class World:
    own: Side
    other: Side
    users: dict[str, Any]
    tokens: dict[str, str]  # role → secret of the own team's user with that role
    token_rows: dict[str, ApiToken]  # role → that token; "other" → a token of the other team's owner


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module; each case runs in a transaction that is rolled back, deletes included."""
    with django_db_blocker.unblock():
        first_event = (AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)
        user_model = get_user_model()
        users = {role: user_model.objects.create_user(f"own-{role}") for role in ROLES}
        own = _side("own", users)
        other = _side(OTHER_MARK, {"owner": user_model.objects.create_user(f"{OTHER_MARK}-owner")})
        created = {role: services.api_token_create(user=user) for role, user in users.items()}
        created["other"] = services.api_token_create(user=other.owner)
        yield World(own=own, other=other, users=users, tokens={role: secret for role, (_, secret) in created.items()},
                    token_rows={role: token for role, (token, _) in created.items()})
        for side in (own, other):
            services.team_delete(actor=None, team=side.team)
        user_model.objects.filter(username__startswith="own-").delete()
        user_model.objects.filter(username__startswith=f"{OTHER_MARK}-").delete()
        AuditEvent.objects.filter(pk__gt=first_event).delete()


# ---------------------------------------------------------------- the table

Build = Callable[[World, Side], Any]


def row(model, pk_of: Callable[[Side], int]) -> Build:
    """A snapshot of one row (None once deleted), to prove a refused request changed nothing."""
    return lambda w, s: model.objects.filter(pk=pk_of(s)).values().first()


def memberships(w: World, s: Side):
    return sorted(TeamMembership.objects.filter(team=s.team).values_list("user_id", "role"))


@dataclass
class Check:
    method: str
    at_least: str  # the least role that may; "viewer" for anything a member of the team may
    data: Build | None = None
    other: bool = True  # whether the other team's variant exists (URLs without objects have none)
    snapshot: Build | bool | None = None  # True on per-user entries: the acting user's (or other's) token row
    overrides: dict[str, int] = field(default_factory=dict)  # role → status, where a rule other than roles applies


@dataclass
class Entry:
    args: Build = lambda w, s: {}
    checks: list[Check] = field(default_factory=list)
    # A user's own object rather than a team's (API tokens): "own" is the acting user's, "other" someone else's.
    per_user: bool = False


def GET(at_least="viewer", **kw) -> Check:
    return Check("get", at_least, **kw)


def POST(at_least, data=None, **kw) -> Check:
    return Check("post", at_least, data, **kw)


def PATCH(at_least, data, **kw) -> Check:
    return Check("patch", at_least, data, **kw)


def PUT(at_least, data, **kw) -> Check:
    return Check("put", at_least, data, **kw)


def DELETE(at_least, **kw) -> Check:
    return Check("delete", at_least, **kw)


def team_pk(w, s):
    return {"pk": s.team.pk}


def instance_pk(w, s):
    return {"pk": s.instance.pk}


def spare_pk(w, s):
    return {"pk": s.spare.pk}


def server_pk(w, s):
    return {"pk": s.server.pk}


def tool_pk(w, s):
    return {"pk": s.tool.pk}


def import_job_pk(w, s):
    return {"pk": s.import_job.pk}


IMPORT_SPEC = json.dumps({"openapi": "3.0.3", "info": {"title": "Things", "version": "1"}, "paths": {"/things": {
    "get": {"operationId": "listThings", "responses": {"200": {"description": "ok"}}}}}})


def import_jobs(w, s):
    return ImportJob.objects.filter(mcp_server=s.server).count()


IMPORT_JOB_ROW = row(ImportJob, lambda s: s.import_job.pk)


def extra_member(w, s):
    return {"pk": s.team.pk, "user_id": s.extra.pk}


def invitation_pk(w, s):
    return {"pk": s.invitation.pk}


def consumer_args(w, s):
    return {"pk": s.instance.pk, "consumer_id": s.consumer.pk}


def api_key_args(w, s):
    return {**consumer_args(w, s), "key_id": s.api_key.pk}


def jwt_args(w, s):
    return {**consumer_args(w, s), "credential_id": s.jwt_credential.pk}


def authorization_args(w, s):
    return {"pk": s.server.pk, "consumer_id": s.consumer.pk}


def consumer_pk(w, s):
    return {"pk": s.consumer.pk}


CONSUMER_ROW = row(Consumer, lambda s: s.consumer.pk)
API_KEY_ROW = row(ConsumerApiKey, lambda s: s.api_key.pk)
JWT_ROW = row(JwtCredential, lambda s: s.jwt_credential.pk)


def OAUTH_TOKEN_ROW(w, s):
    from console.models import ConsumerOAuthToken

    return ConsumerOAuthToken.objects.filter(pk=s.oauth_token.pk).values().first()


def OAUTH_CLIENT_ROW(w, s):
    from console.models import TeamOAuthClient

    return TeamOAuthClient.objects.filter(pk=s.oauth_client.pk).values().first()


def authorization_row(w, s):
    return ConsumerAuthorization.objects.filter(mcp_server=s.server, consumer=s.consumer).values().first()


INSTANCE_ROW = row(Instance, lambda s: s.instance.pk)
SPARE_ROW = row(BackendService, lambda s: s.spare.pk)
CIRCUIT_ROW = lambda w, s: CircuitBreaker.objects.filter(service_id=s.spare.pk).values().first()  # noqa: E731
SERVER_ROW = row(McpServer, lambda s: s.server.pk)
TOOL_ROW = row(Tool, lambda s: s.tool.pk)
TEAM_ROW = row(Team, lambda s: s.team.pk)
INVITATION_ROW = row(Invitation, lambda s: s.invitation.pk)


RATE_LIMIT_ROW = row(RateLimitPolicy, lambda s: s.rate_limit.pk)


def record_settings_row(w, s):
    return CallRecordSettings.objects.filter(mcp_server=s.server).values().first()


def rate_limit_args(w, s):
    return {"pk": s.server.pk, "policy_id": s.rate_limit.pk}


def edited_tool_yaml(w, s):
    return {"yaml": tool_to_yaml(s.tool).replace("Fetch one pet.", "Fetch one pet, edited.")}


ENTRIES: dict[str, Entry] = {
    # ---- pages: the user's own things
    "home": Entry(checks=[GET(other=False)]),
    # The switch names a team in the form; a team the user is not in gets a message, not a 404.
    "team_switch": Entry(checks=[POST("viewer", lambda w, s: {"team": s.team.pk}, other=False)]),
    "region_switch": Entry(checks=[POST("viewer", lambda w, s: {"region": "eu"}, other=False)]),
    "api_reference": Entry(checks=[GET(other=False), POST("viewer", lambda w, s: {"name": "t"}, other=False)]),
    "instance_list": Entry(checks=[GET(other=False)]),
    "instance_add": Entry(checks=[GET("admin", other=False),
                                  POST("admin", lambda w, s: {"name": "made-here", "region": "local"}, other=False)]),
    "team_list": Entry(checks=[GET(other=False)]),
    "team_add": Entry(checks=[GET(other=False), POST("viewer", lambda w, s: {"name": "Brand new"}, other=False)]),
    # ---- pages: instances and what they hold
    "instance": Entry(instance_pk, [GET()]),
    "instance_edit": Entry(instance_pk, [GET("admin"), POST("admin", lambda w, s: {
        "name": s.instance.name, "region": "eu-central", "description": "edited"}, snapshot=INSTANCE_ROW)]),
    "instance_delete": Entry(instance_pk, [GET("admin"), POST("admin", snapshot=INSTANCE_ROW)]),
    "consumer_list": Entry(instance_pk, [GET()]),
    "consumer_add": Entry(instance_pk, [GET("admin"), POST("admin", lambda w, s: {"name": "made-here",
                                                                                  "enabled": "on"})]),
    "consumer": Entry(consumer_args, [GET()]),
    "consumer_edit": Entry(consumer_args, [GET("admin"), POST("admin", lambda w, s: {
        "name": s.consumer.name, "description": "edited", "enabled": "on"}, snapshot=CONSUMER_ROW)]),
    "consumer_toggle": Entry(consumer_args, [POST("admin", lambda w, s: {"enabled": "0"}, snapshot=CONSUMER_ROW)]),
    "consumer_delete": Entry(consumer_args, [GET("admin"), POST("admin", snapshot=CONSUMER_ROW)]),
    "consumer_api_key_add": Entry(consumer_args, [GET("admin"), POST("admin", lambda w, s: {"name": "made-here"})]),
    "consumer_api_key_delete": Entry(api_key_args, [GET("admin"), POST("admin", snapshot=API_KEY_ROW)]),
    "consumer_oauth_token_delete": Entry(lambda w, s: {**consumer_args(w, s), "token_id": s.oauth_token.pk},
                                         [GET("admin"), POST("admin", snapshot=OAUTH_TOKEN_ROW)]),
    "oauth_client_list": Entry(instance_pk, [GET()]),
    "oauth_client_add": Entry(instance_pk, [GET("admin"), POST("admin", lambda w, s: {
        "name": "made-here", "redirect_uris": "https://made.example.test/cb"})]),
    "oauth_client_delete": Entry(lambda w, s: {"pk": s.instance.pk, "client_id": s.oauth_client.pk},
                                 [GET("admin"), POST("admin", snapshot=OAUTH_CLIENT_ROW)]),
    "api_consumer_oauth_token_list": Entry(consumer_pk, [GET()]),
    "api_oauth_token": Entry(lambda w, s: {"pk": s.oauth_token.pk}, [DELETE("admin", snapshot=OAUTH_TOKEN_ROW)]),
    "api_oauth_client_list": Entry(checks=[GET(other=False), POST("admin", lambda w, s: {
        "team": s.team.pk, "name": "made-by-api", "redirect_uris": ["https://made.example.test/cb"]}, other=False)]),
    "api_oauth_client": Entry(lambda w, s: {"pk": s.oauth_client.pk},
                              [GET(), DELETE("admin", snapshot=OAUTH_CLIENT_ROW)]),
    "jwt_credential_add": Entry(consumer_args, [GET("admin"), POST("admin", lambda w, s: {
        "algorithm": "HS512", "secret": "t" * 64, "consumer_claim": "sub"})]),
    "jwt_credential_delete": Entry(jwt_args, [GET("admin"), POST("admin", snapshot=JWT_ROW)]),
    "service_list": Entry(instance_pk, [GET()]),
    "service_add": Entry(instance_pk, [GET("member"), POST("member", lambda w, s: {
        "name": "made-here", "protocol": "http", "base_url": "http://127.0.0.1:9/new"})]),
    "service_edit": Entry(spare_pk, [GET("member"), POST("member", lambda w, s: {
        "name": s.spare.name, "protocol": "http", "base_url": "http://127.0.0.1:9/edited"}, snapshot=SPARE_ROW)]),
    "service_delete": Entry(spare_pk, [GET("member"), POST("member", snapshot=SPARE_ROW)]),
    "service_reachability": Entry(spare_pk, [GET()]),
    "service_circuit_breaker": Entry(spare_pk, [GET("member"), POST("member", lambda w, s: {
        "enabled": "on", "failure_threshold": "3", "open_seconds": "20"}, snapshot=CIRCUIT_ROW)]),
    "mcp_server_list": Entry(instance_pk, [GET()]),
    "mcp_server_add": Entry(instance_pk, [GET("member"), POST("member", lambda w, s: {
        "name": "made-here", "server_type": "http_to_mcp", "backend_service": s.service.pk})]),
    "mcp_server": Entry(server_pk, [GET()]),
    "mcp_server_edit": Entry(server_pk, [GET("member"), POST("member", lambda w, s: {
        "name": s.server.name, "description": "edited", "backend_service": s.service.pk, "timeout_seconds": 20},
        snapshot=SERVER_ROW)]),
    "mcp_server_toggle": Entry(server_pk, [POST("member", lambda w, s: {"enabled": "0"}, snapshot=SERVER_ROW)]),
    "mcp_server_delete": Entry(server_pk, [GET("member"), POST("member", snapshot=SERVER_ROW)]),
    "mcp_server_backend_auth": Entry(server_pk, [GET("member"), POST("member", lambda w, s: {
        "kind": "bearer", "credential": "token-0123456789abcdef"}, snapshot=SERVER_ROW)]),
    "mcp_server_debug": Entry(server_pk, [GET()]),
    "mcp_server_debug_credential": Entry(server_pk, [POST("admin", lambda w, s: {"consumer": s.consumer.pk})]),
    "mcp_server_consumer_auth": Entry(server_pk, [GET()]),
    "mcp_server_consumer_auth_edit": Entry(server_pk, [GET("admin"), POST("admin", lambda w, s: {
        "enabled": "on", "method": "api_key", "source": "header", "name": "X-API-Key"}, snapshot=SERVER_ROW)]),
    "authorization_add": Entry(server_pk, [GET("admin"), POST("admin", lambda w, s: {
        "consumer": "new", "new_name": "made-here", "all_tools": "on"})]),
    "authorization_edit": Entry(authorization_args, [GET("admin"), POST("admin", lambda w, s: {
        "consumer": s.consumer.pk, "tools": "getPet"}, snapshot=authorization_row)]),
    "authorization_delete": Entry(authorization_args, [GET("admin"), POST("admin", snapshot=authorization_row)]),
    "tool_list": Entry(server_pk, [GET()]),
    "import_list": Entry(server_pk, [GET()]),
    "import_add": Entry(server_pk, [POST("member", lambda w, s: {"text": IMPORT_SPEC}, snapshot=import_jobs)]),
    "import_job": Entry(import_job_pk, [GET()]),
    "import_confirm": Entry(import_job_pk, [POST("member", lambda w, s: {"tool": "listThings"},
                                                 snapshot=IMPORT_JOB_ROW)]),
    "tool_add": Entry(server_pk, [GET("member"), POST("member", lambda w, s: {"yaml": NEW_TOOL_YAML})]),
    "tool": Entry(tool_pk, [GET()]),
    "tool_edit": Entry(tool_pk, [GET("member"), POST("member", edited_tool_yaml, snapshot=TOOL_ROW)]),
    "tool_toggle": Entry(tool_pk, [POST("member", lambda w, s: {"enabled": "0"}, snapshot=TOOL_ROW)]),
    "tool_delete": Entry(tool_pk, [GET("member"), POST("member", snapshot=TOOL_ROW)]),
    # ---- pages: the team itself
    "team": Entry(team_pk, [GET()]),
    "team_edit": Entry(team_pk, [GET("owner"), POST("owner", lambda w, s: {"name": "Renamed"}, snapshot=TEAM_ROW)]),
    "team_delete": Entry(team_pk, [GET("owner"), POST("owner", snapshot=TEAM_ROW)]),
    "team_transfer": Entry(team_pk, [GET("owner"), POST("owner", lambda w, s: {"user": s.extra.pk},
                                                        snapshot=memberships)]),
    # Anyone may leave, except the last owner.
    "team_leave": Entry(team_pk, [GET(), POST("viewer", snapshot=memberships, overrides={"owner": 400})]),
    "team_member_edit": Entry(extra_member, [GET("admin"), POST("admin", lambda w, s: {"role": "member"},
                                                                snapshot=memberships)]),
    "team_member_delete": Entry(extra_member, [GET("admin"), POST("admin", snapshot=memberships)]),
    "invitation_add": Entry(team_pk, [GET("admin"), POST("admin", lambda w, s: {"role": "viewer",
                                                                                "expires_in_days": 7})]),
    "invitation_delete": Entry(invitation_pk, [GET("admin"), POST("admin", snapshot=INVITATION_ROW)]),
    "audit_event_list": Entry(team_pk, [GET()]),
    # ---- REST API
    "api_instance_list": Entry(checks=[GET(other=False), POST("admin", lambda w, s: {
        "team": s.team.pk, "name": "made-by-api"})]),
    "api_instance": Entry(instance_pk, [GET(), PATCH("admin", lambda w, s: {"description": "edited"},
                                                     snapshot=INSTANCE_ROW), DELETE("admin", snapshot=INSTANCE_ROW)]),
    "api_service_list": Entry(checks=[GET(other=False), POST("member", lambda w, s: {
        "instance": s.instance.pk, "name": "made-by-api", "base_url": "http://127.0.0.1:9/api"})]),
    "api_service": Entry(spare_pk, [GET(), PATCH("member", lambda w, s: {"description": "edited"}, snapshot=SPARE_ROW),
                                    DELETE("member", snapshot=SPARE_ROW)]),
    "api_service_reachability": Entry(spare_pk, [GET()]),
    "api_circuit_breaker": Entry(spare_pk, [GET(), PUT("member", lambda w, s: {
        "enabled": True, "failure_threshold": 3, "open_seconds": 20}, snapshot=CIRCUIT_ROW)]),
    "api_mcp_server_list": Entry(checks=[GET(other=False), POST("member", lambda w, s: {
        "instance": s.instance.pk, "name": "made-by-api"})]),
    "api_mcp_server": Entry(server_pk, [GET(), PATCH("member", lambda w, s: {"description": "edited"},
                                                     snapshot=SERVER_ROW), DELETE("member", snapshot=SERVER_ROW)]),
    "api_backend_auth": Entry(server_pk, [GET(), PUT("member", lambda w, s: {
        "kind": "bearer", "credential": "token-0123456789abcdef"}, snapshot=SERVER_ROW)]),
    "api_tool_list": Entry(server_pk, [GET()]),
    "api_backend_catalog": Entry(server_pk, [GET()]),
    "api_import_list": Entry(server_pk, [GET(), POST("member", lambda w, s: {"text": IMPORT_SPEC},
                                                     snapshot=import_jobs)]),
    "api_import": Entry(import_job_pk, [GET()]),
    "api_import_confirm": Entry(import_job_pk, [POST("member", lambda w, s: {"tools": ["listThings"]},
                                                     snapshot=IMPORT_JOB_ROW)]),
    "api_tools_yaml": Entry(server_pk, [GET(), PUT("member", lambda w, s: (NEW_TOOL_YAML, "application/yaml"))]),
    "api_tool": Entry(tool_pk, [GET(), PATCH("member", lambda w, s: {"enabled": False}, snapshot=TOOL_ROW),
                                DELETE("member", snapshot=TOOL_ROW)]),
    "api_tool_yaml": Entry(tool_pk, [GET(), PUT("member", lambda w, s: (edited_tool_yaml(w, s)["yaml"],
                                                                        "application/yaml"), snapshot=TOOL_ROW)]),
    "api_team_list": Entry(checks=[GET(other=False), POST("viewer", lambda w, s: {"name": "Made by API"},
                                                          other=False)]),
    "api_team": Entry(team_pk, [GET(), PATCH("owner", lambda w, s: {"name": "Renamed"}, snapshot=TEAM_ROW),
                                DELETE("owner", snapshot=TEAM_ROW)]),
    "api_team_transfer": Entry(team_pk, [POST("owner", lambda w, s: {"user": s.extra.pk}, snapshot=memberships)]),
    "api_team_member_list": Entry(team_pk, [GET()]),
    "api_team_member": Entry(extra_member, [PATCH("admin", lambda w, s: {"role": "member"}, snapshot=memberships),
                                            DELETE("admin", snapshot=memberships)]),
    "api_team_invitation_list": Entry(team_pk, [GET(), POST("admin", lambda w, s: {"role": "viewer"})]),
    "api_invitation": Entry(invitation_pk, [GET(), DELETE("admin", snapshot=INVITATION_ROW)]),
    "api_audit_event_list": Entry(checks=[GET(other=False)]),
    "api_consumer_list": Entry(checks=[GET(other=False), POST("admin", lambda w, s: {
        "team": s.team.pk, "name": "made-by-api"})]),
    "api_consumer": Entry(consumer_pk, [GET(), PATCH("admin", lambda w, s: {"description": "edited"},
                                                     snapshot=CONSUMER_ROW), DELETE("admin", snapshot=CONSUMER_ROW)]),
    "api_consumer_api_key_list": Entry(consumer_pk, [GET(), POST("admin", lambda w, s: {"name": "made-by-api"})]),
    "api_consumer_api_key": Entry(lambda w, s: {"pk": s.api_key.pk}, [DELETE("admin", snapshot=API_KEY_ROW)]),
    "api_jwt_credential_list": Entry(consumer_pk, [GET(), POST("admin", lambda w, s: {
        "algorithm": "HS256", "secret": "u" * 32})]),
    "api_jwt_credential": Entry(lambda w, s: {"pk": s.jwt_credential.pk}, [DELETE("admin", snapshot=JWT_ROW)]),
    "api_consumer_auth": Entry(server_pk, [GET(), PUT("admin", lambda w, s: {
        "enabled": True, "method": "jwt", "source": "bearer"}, snapshot=SERVER_ROW)]),
    "api_authorization_list": Entry(server_pk, [GET(), POST("admin", lambda w, s: {
        "consumer": s.consumer.pk, "tools": ["getPet"]}, snapshot=authorization_row)]),
    "api_authorization": Entry(authorization_args, [DELETE("admin", snapshot=authorization_row)]),
    "api_token_list": Entry(checks=[GET(other=False)]),
    # ---- governance: rate limits, call records, traffic
    "mcp_server_rate_limits": Entry(server_pk, [GET()]),
    "rate_limit_add": Entry(server_pk, [GET("member"), POST("member", lambda w, s: {
        "tool": "getPet", "requests": 5, "window": "minute", "applies_to": "tool_calls", "enabled": "on"})]),
    "rate_limit_edit": Entry(rate_limit_args, [GET("member"), POST("member", lambda w, s: {
        "requests": 7, "window": "hour", "applies_to": "tool_calls", "enabled": "on"}, snapshot=RATE_LIMIT_ROW)]),
    "rate_limit_delete": Entry(rate_limit_args, [GET("member"), POST("member", snapshot=RATE_LIMIT_ROW)]),
    "call_record_settings_edit": Entry(server_pk, [GET("member"), POST("member", lambda w, s: {
        "record_arguments": "on", "redact_fields": "card"}, snapshot=record_settings_row)]),
    "mcp_server_calls": Entry(server_pk, [GET()]),
    "mcp_server_traffic": Entry(server_pk, [GET()]),
    "call_record": Entry(lambda w, s: {"pk": s.call.pk}, [GET()]),
    "consumer_calls": Entry(consumer_args, [GET()]),
    "instance_traffic": Entry(instance_pk, [GET()]),
    "api_rate_limit_list": Entry(server_pk, [GET(), POST("member", lambda w, s: {
        "tool": "getPet", "requests": 5, "window": "minute"})]),
    "api_rate_limit": Entry(lambda w, s: {"pk": s.rate_limit.pk}, [
        GET(), PATCH("member", lambda w, s: {"requests": 9}, snapshot=RATE_LIMIT_ROW),
        DELETE("member", snapshot=RATE_LIMIT_ROW)]),
    "api_call_record_settings": Entry(server_pk, [GET(), PUT("member", lambda w, s: {
        "record_arguments": True, "redact_fields": ["card"]}, snapshot=record_settings_row)]),
    "api_mcp_server_calls": Entry(server_pk, [GET()]),
    "api_consumer_calls": Entry(consumer_pk, [GET()]),
    "api_call_record": Entry(lambda w, s: {"pk": s.call.pk}, [GET()]),
    # ---- the acting user's own API tokens
    "token_delete": Entry(checks=[GET(), POST("viewer", snapshot=True)], per_user=True),
    "api_token": Entry(checks=[DELETE("viewer", snapshot=True)], per_user=True),
}


# ---------------------------------------------------------------- the market (made on demand inside each case)

MARKET_TOOL_YAML = """\
tools:
  - name: note
    description: A note.
    requestTemplate: {url: "http://127.0.0.1:9/note", method: GET}
"""


def market_listing(w=None, s=None):
    from marketplace.models import Category, Listing
    from marketplace.services import version_add

    listing = Listing.objects.filter(slug="matrix-notes").first()
    if listing is None:
        category, _ = Category.objects.get_or_create(slug="matrix", defaults={"name": "Matrix"})
        listing = Listing.objects.create(slug="matrix-notes", registry_name="io.test.matrix/notes",
                                         title="Matrix notes", publisher="Tests", category=category,
                                         summary="For the access matrix.")
        version_add(listing=listing, version="1.0.0", tool_yaml=MARKET_TOOL_YAML, approved=True)
    return listing


def market_subscription(s: Side):
    from marketplace.models import Subscription
    from marketplace.services import listing_subscribe

    subscription = Subscription.objects.filter(team=s.team).first()
    if subscription is None:
        subscription = listing_subscribe(actor=s.owner, listing=market_listing(), team=s.team,
                                         instance=s.instance).subscription
    return subscription


def market_submission(s: Side):
    from marketplace.models import Submission
    from marketplace.services import submission_create

    submission = Submission.objects.filter(team=s.team).first()
    if submission is None:
        market_listing()
        submission = submission_create(actor=s.owner, team=s.team, source="tool_yaml", data={
            "slug": f"{s.team.slug}-notes", "title": "Team notes", "summary": "Notes.", "category": "matrix",
            "tool_yaml": MARKET_TOOL_YAML})
    return submission


def subscription_pk(w, s):
    return {"pk": market_subscription(s).pk}


def submission_pk(w, s):
    return {"pk": market_submission(s).pk}


def listing_slug(w, s):
    return {"slug": market_listing().slug}


def subscription_row(w, s):
    from marketplace.models import Subscription

    return Subscription.objects.filter(team=s.team).values().first()


def subscription_count(w, s):
    from marketplace.models import Subscription

    return Subscription.objects.filter(team=s.team).count()


def submission_count(w, s):
    from marketplace.models import Submission

    return Submission.objects.filter(team=s.team).count()


def submission_row(w, s):
    from marketplace.models import Submission

    return Submission.objects.filter(team=s.team).values().first()


def subscribe_data(w, s):
    return {"team": s.team.pk, "instance": s.instance.pk}


def submit_data(w, s):
    market_listing()
    return {"team": s.team.pk, "source": "tool_yaml", "slug": "made-by-matrix", "title": "Made", "summary": "Made.",
            "category": "matrix", "tool_yaml": MARKET_TOOL_YAML}


NOT_STAFF = {role: 404 for role in ROLES}  # the review queue is staff's; a team role does not see it
NOT_STAFF_API = {role: 403 for role in ROLES}
NO_NEWER_VERSION = {"owner": 400, "admin": 400}  # allowed, but there is nothing to upgrade to

ENTRIES.update({
    "market": Entry(checks=[GET(other=False)]),
    "market_listing": Entry(listing_slug, [GET(other=False)]),
    "market_subscribe": Entry(listing_slug, [POST("admin", subscribe_data, snapshot=subscription_count)]),
    "market_subscriptions": Entry(checks=[GET(other=False)]),
    "market_subscription": Entry(subscription_pk, [GET()]),
    "market_subscription_rotate": Entry(subscription_pk, [POST("admin", snapshot=subscription_row)]),
    "market_subscription_upgrade": Entry(subscription_pk, [POST("admin")]),
    "market_subscription_delete": Entry(subscription_pk, [GET("admin"), POST("admin", snapshot=subscription_row)]),
    "market_submissions": Entry(checks=[GET(other=False)]),
    "market_submissions_add": Entry(checks=[GET("member", other=False),
                                            POST("member", submit_data, other=False, snapshot=submission_count)]),
    "market_review": Entry(checks=[GET(other=False, overrides=NOT_STAFF)]),
    "market_review_decide": Entry(lambda w, s: {**submission_pk(w, s), "decision": "approve"}, [
        POST("viewer", overrides=NOT_STAFF, snapshot=submission_row)]),
    "market_router": Entry(checks=[GET(other=False)]),
    "market_router_key": Entry(checks=[POST("admin", other=False)]),
    "api_market_listing_list": Entry(checks=[GET(other=False)]),
    "api_market_listing": Entry(listing_slug, [GET(other=False)]),
    "api_market_subscribe": Entry(listing_slug, [POST("admin", subscribe_data, snapshot=subscription_count)]),
    "api_market_subscription_list": Entry(checks=[GET(other=False)]),
    "api_market_subscription": Entry(subscription_pk, [GET(), DELETE("admin", snapshot=subscription_row)]),
    "api_market_rotate_key": Entry(subscription_pk, [POST("admin", snapshot=subscription_row)]),
    "api_market_upgrade": Entry(subscription_pk, [POST("admin", overrides=NO_NEWER_VERSION)]),
    "api_market_submission_list": Entry(checks=[GET(other=False), POST("member", submit_data,
                                                                       snapshot=submission_count)]),
    "api_market_submission": Entry(submission_pk, [GET()]),
    "api_market_approve": Entry(submission_pk, [POST("viewer", overrides=NOT_STAFF_API, snapshot=submission_row)]),
    "api_market_reject": Entry(submission_pk, [POST("viewer", lambda w, s: {"reason": "No."},
                                                    overrides=NOT_STAFF_API, snapshot=submission_row)]),
    "api_market_router_key": Entry(checks=[POST("admin", other=False)]),
})


# ---- the catalogue of hosted stdio servers: installation-wide, staff write it, no team role does
def hosted_entry():
    from console.models import HostedStdioEntry

    entry, _ = HostedStdioEntry.objects.get_or_create(slug="matrix-entry", defaults=dict(
        title="Matrix", package="matrix-server", version="1.0.0", command="matrix-server", state="installed",
        installed_spec="npm:matrix-server@1.0.0"))
    return entry


def hosted_entry_pk(w, s):
    return {"pk": hosted_entry().pk}


def hosted_entry_row(w, s):
    from console.models import HostedStdioEntry

    return HostedStdioEntry.objects.filter(slug="matrix-entry").values().first()


def hosted_entries(w, s):
    from console.models import HostedStdioEntry

    return sorted(HostedStdioEntry.objects.values_list("slug", "state"))


HOSTED_FORM = {"slug": "made-here", "title": "Made", "runtime": "npm", "package": "made-here", "version": "1.0.0",
               "command": "made-here", "max_processes": 1, "memory_mb": 256, "cpu_seconds": 10, "open_files": 64,
               "startup_timeout_seconds": 10, "idle_timeout_seconds": 60}
STAFF_ONLY_PAGE = {role: 403 for role in ROLES}

ENTRIES.update({
    "hosted_entry_list": Entry(checks=[GET(other=False, overrides=STAFF_ONLY_PAGE)]),
    "hosted_entry_add": Entry(checks=[GET(other=False, overrides=STAFF_ONLY_PAGE), POST(
        "viewer", lambda w, s: HOSTED_FORM, other=False, overrides=STAFF_ONLY_PAGE, snapshot=hosted_entries)]),
    "hosted_entry": Entry(hosted_entry_pk, [GET(other=False, overrides=STAFF_ONLY_PAGE)]),
    "hosted_entry_edit": Entry(hosted_entry_pk, [GET(other=False, overrides=STAFF_ONLY_PAGE), POST(
        "viewer", lambda w, s: {**HOSTED_FORM, "slug": "matrix-entry"}, other=False, overrides=STAFF_ONLY_PAGE,
        snapshot=hosted_entry_row)]),
    "hosted_entry_install": Entry(hosted_entry_pk, [POST("viewer", other=False, overrides=STAFF_ONLY_PAGE,
                                                         snapshot=hosted_entry_row)]),
    # Every signed-in user lists the installed entries (the choices of a Hosted stdio server); only staff write.
    "api_hosted_entry_list": Entry(checks=[GET(other=False), POST("viewer", lambda w, s: HOSTED_FORM, other=False,
                                                                  overrides=NOT_STAFF_API, snapshot=hosted_entries)]),
    "api_hosted_entry": Entry(hosted_entry_pk, [
        GET(other=False),
        PATCH("viewer", lambda w, s: {"memory_mb": 128}, other=False, overrides=NOT_STAFF_API,
              snapshot=hosted_entry_row),
        DELETE("viewer", other=False, overrides=NOT_STAFF_API, snapshot=hosted_entry_row)]),
    "api_hosted_entry_install": Entry(hosted_entry_pk, [POST("viewer", other=False, overrides=NOT_STAFF_API,
                                                             snapshot=hosted_entry_row)]),
    "api_hosted_processes": Entry(server_pk, [GET()]),
})


# ---------------------------------------------------------------- the URL conf

def url_names(patterns=None, prefix: str = "") -> dict[str, str]:
    """Every named route of the project (name → pattern), outside the excluded namespaces."""
    found: dict[str, str] = {}
    for item in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(item, URLResolver):
            if item.namespace in EXCLUDED_NAMESPACES:
                continue
            found.update(url_names(item.url_patterns, prefix + str(item.pattern)))
        elif isinstance(item, URLPattern):
            found[item.name or f"<unnamed {prefix}{item.pattern}>"] = prefix + str(item.pattern)
    return found


URL_NAMES = url_names()


def test_every_url_has_an_entry():
    missing = sorted(name for name in URL_NAMES if name not in ENTRIES and name not in PUBLIC)
    assert not missing, (
        "These URLs are in the URL conf but not in the access matrix: "
        + ", ".join(f"{name} (/{URL_NAMES[name]})" for name in missing)
        + ". Add an entry to ENTRIES in tests/console/test_access_matrix.py (how to build its arguments, the "
          "methods to try and the least role allowed), or put it in PUBLIC if anyone may open it; give unnamed "
          "routes a name."
    )
    assert not PUBLIC & set(ENTRIES), "A URL is either public or in the matrix, not both."


PUBLIC_ARGS = {"demo_pet": {"pet_id": "1"}, "invitation_accept": {"secret": "mgi_no-such-link"},
               "registry_server_versions": {"name": "io.example/none"},
               "registry_server_version": {"name": "io.example/none", "version": "latest"},
               "oauth_resource_metadata": {"resource_path": "mcp-servers/none"}}


@pytest.mark.django_db
def test_public_urls_need_no_sign_in(client):
    for name in sorted(PUBLIC & set(URL_NAMES)):
        if name == "logout":
            continue  # POST only; signing out needs nobody signed in
        url = reverse(name, kwargs=PUBLIC_ARGS.get(name, {}))
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        assert not response.get("Location", "").startswith(reverse("login")), f"{url} asks to sign in"
        if name == "invitation_accept":
            assert response.status_code == 404 and b"no invitation at this link" in response.content


# ---------------------------------------------------------------- the cases

def _cases():
    for name, entry in ENTRIES.items():
        if name not in URL_NAMES:
            continue  # built on another branch; exercised once it is in the URL conf
        for check in entry.checks:
            for role in ROLES:
                yield pytest.param(name, check, role, "own", id=f"{name}-{check.method}-{role}-own")
                if check.other:
                    yield pytest.param(name, check, role, "other", id=f"{name}-{check.method}-{role}-other")
            yield pytest.param(name, check, None, "own", id=f"{name}-{check.method}-anonymous")


def _is_api(url: str) -> bool:
    return url.startswith("/api/")


def _send(client: Client, check: Check, url: str, data: Any, api: bool):
    method = getattr(client, check.method)
    if check.method == "get":
        return method(url)
    if isinstance(data, tuple):
        body, content_type = data
        return method(url, body, content_type=content_type)
    if api:
        return method(url, json.dumps(data or {}), content_type="application/json")
    if check.method == "post":
        return method(url, data or {})
    return method(url, urlencode(data or {}), content_type="application/x-www-form-urlencoded")


def expected_status(check: Check, role: str | None, side: str) -> str:
    if side == "other":
        return "404"
    if role in check.overrides:
        return str(check.overrides[role])
    return "success" if ROLE_RANK[role] >= ROLE_RANK[check.at_least] else "403"


@pytest.mark.django_db
@pytest.mark.parametrize("name, check, role, side", list(_cases()))
def test_access(world: World, name: str, check: Check, role: str | None, side: str):
    entry = ENTRIES[name]
    target = world.own if side == "own" else world.other
    snapshot = check.snapshot
    if entry.per_user:
        token = world.token_rows["other" if side == "other" else role or "viewer"]
        url = reverse(name, kwargs={"pk": token.pk})
        snapshot = row(ApiToken, lambda s: token.pk) if check.snapshot else None
    else:
        url = reverse(name, kwargs=entry.args(world, target))
    api = _is_api(url)
    data = check.data(world, target) if check.data else None
    before = snapshot(world, target) if snapshot else None
    client = Client()
    if role is not None:
        if api:
            client = Client(headers={"Authorization": f"Bearer {world.tokens[role]}"})
        else:
            client.force_login(world.users[role])

    response = _send(client, check, url, data, api)

    if role is None:
        if api:
            assert response.status_code == 401, (url, response.status_code)
        else:
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (
                url, response.status_code, response.get("Location"))
        expect = "refused"
    else:
        expect = expected_status(check, role, side)
        if expect == "success":
            assert 200 <= response.status_code < 400, (url, role, response.status_code, response.content[:600])
            if snapshot is not None:
                # The write really happened: a success page that changed nothing would hide a refusal.
                assert snapshot(world, target) != before, f"{check.method.upper()} {url} as {role} did nothing"
            if check.method == "get" and side == "own":
                # Nothing of the other team shows in the own team's pages and answers.
                assert OTHER_MARK not in response.content.decode(errors="replace").lower(), (url, role)
        else:
            assert response.status_code == int(expect), (url, role, side, response.status_code,
                                                         response.content[:600])
    if expect != "success" and snapshot is not None:
        assert snapshot(world, target) == before, f"{check.method.upper()} {url} as {role} changed data"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_pages_offer_only_what_the_role_may_do(world: World, role: str):
    """No page links, posts or opens a panel to a URL the role would get a 403 from."""
    own = world.own
    forbidden: dict[str, str] = {}
    readable: list[str] = []
    for name, entry in ENTRIES.items():
        if name not in URL_NAMES or entry.per_user:
            continue
        url = reverse(name, kwargs=entry.args(world, own))
        if _is_api(url):
            continue
        for check in entry.checks:
            if ROLE_RANK[role] < ROLE_RANK[check.at_least]:
                forbidden[url] = name
            elif check.method == "get":
                readable.append(url)
    client = Client()
    client.force_login(world.users[role])
    for page in readable:
        html = client.get(page).content.decode()
        for url, name in forbidden.items():
            pattern = rf'(href|action|hx-get|hx-post)="{re.escape(url)}[?"]'
            assert not re.search(pattern, html), f"{page} offers {name} ({url}) to a {role}"
