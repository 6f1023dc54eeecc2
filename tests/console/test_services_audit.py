"""Every write function console.services exports records an audit row inside the transaction of its change."""
from __future__ import annotations

import inspect

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from console import services
from console.models import AuditEvent, Team

pytestmark = pytest.mark.django_db

TOOLS_YAML = """\
tools:
  - name: listPets
    description: List pets.
    requestTemplate: {url: "http://127.0.0.1:9/pets", method: GET}
"""
ONE_TOOL_YAML = """\
tools:
  - name: listPets
    description: List every pet.
    requestTemplate: {url: "http://127.0.0.1:9/pets", method: GET}
"""


class World:
    """One team with an instance, a backend service, an MCP server and a tool, owned by `owner`."""

    def __init__(self):
        User = get_user_model()
        self.owner = User.objects.create_user("owner", password="pw-123456")
        self.other = User.objects.create_user("other", password="pw-123456")
        self.team = services.team_create(name="Audited", owner=self.owner)
        self.instance = services.instance_create(actor=self.owner, team=self.team, name="audited")
        self.service = services.service_create(actor=self.owner, instance=self.instance, name="api",
                                               base_url="http://127.0.0.1:9/api")
        self.server = services.mcp_server_create(actor=self.owner, instance=self.instance, name="srv",
                                                 backend_service=self.service)
        services.tools_apply_yaml(actor=self.owner, mcp_server=self.server, text=TOOLS_YAML)
        self.tool = self.server.tools.get()


# One realistic call per exported write function; a function exported without one fails the test below.
SCENARIOS = {
    "api_token_create": lambda w: services.api_token_create(user=w.owner, name="ci"),
    "instance_create": lambda w: services.instance_create(actor=w.owner, team=w.team, name="second"),
    "instance_update": lambda w: services.instance_update(actor=w.owner, instance=w.instance, region="eu-west"),
    "instance_delete": lambda w: services.instance_delete(actor=w.owner, instance=w.instance),
    "mcp_server_create": lambda w: services.mcp_server_create(actor=w.owner, instance=w.instance, name="two",
                                                              domains=["two.example.com"]),
    "mcp_server_update": lambda w: services.mcp_server_update(actor=w.owner, mcp_server=w.server,
                                                              description="changed"),
    "mcp_server_delete": lambda w: services.mcp_server_delete(actor=w.owner, mcp_server=w.server),
    "mcp_server_set_backend_auth": lambda w: services.mcp_server_set_backend_auth(
        actor=w.owner, mcp_server=w.server, kind="api_key", location="header", param_name="X-API-Key",
        credential="a-long-enough-secret-key"),
    "service_create": lambda w: services.service_create(actor=w.owner, instance=w.instance, name="api2",
                                                        base_url="http://127.0.0.1:9/v2"),
    "service_update": lambda w: services.service_update(actor=w.owner, service=w.service, description="main"),
    "service_set_circuit_breaker": lambda w: services.service_set_circuit_breaker(actor=w.owner, service=w.service,
                                                                                  enabled=True),
    "service_delete": lambda w: (services.mcp_server_delete(actor=w.owner, mcp_server=w.server),
                                 services.service_delete(actor=w.owner, service=w.service)),
    "team_create": lambda w: services.team_create(name="Another", owner=w.owner),
    "team_member_add": lambda w: services.team_member_add(team=w.team, user=w.other, role="viewer"),
    "tool_delete": lambda w: services.tool_delete(actor=w.owner, tool=w.tool),
    "tool_set_enabled": lambda w: services.tool_set_enabled(actor=w.owner, tool=w.tool, enabled=False),
    "tool_update_yaml": lambda w: services.tool_update_yaml(actor=w.owner, tool=w.tool, text=ONE_TOOL_YAML),
    "tools_apply_yaml": lambda w: services.tools_apply_yaml(actor=w.owner, mcp_server=w.server,
                                                            text=ONE_TOOL_YAML),
    "team_rename": lambda w: services.team_rename(actor=w.owner, team=w.team, name="Renamed"),
    "team_delete": lambda w: services.team_delete(actor=w.owner, team=w.team),
    "team_transfer_ownership": lambda w: (services.team_member_add(team=w.team, user=w.other, role="admin"),
                                          services.team_transfer_ownership(actor=w.owner, team=w.team, user=w.other)),
    "team_member_set_role": lambda w: services.team_member_set_role(
        actor=w.owner, membership=services.team_member_add(team=w.team, user=w.other, role="viewer"), role="member"),
    "team_member_remove": lambda w: services.team_member_remove(
        actor=w.owner, membership=services.team_member_add(team=w.team, user=w.other, role="viewer")),
    "team_leave": lambda w: (services.team_member_add(team=w.team, user=w.other, role="viewer"),
                             services.team_leave(actor=w.other, team=w.team)),
    "invitation_create": lambda w: services.invitation_create(actor=w.owner, team=w.team, role="viewer"),
    "invitation_revoke": lambda w: services.invitation_revoke(
        actor=w.owner, invitation=services.invitation_create(actor=w.owner, team=w.team)[0]),
    "invitation_accept": lambda w: services.invitation_accept(
        user=w.other, invitation=services.invitation_create(actor=w.owner, team=w.team)[0]),
    "invitation_accept_new_user": lambda w: services.invitation_accept_new_user(
        invitation=services.invitation_create(actor=w.owner, team=w.team)[0], username="invited",
        password="violet-harbour-42"),
    "api_token_revoke": lambda w: services.api_token_revoke(
        actor=w.owner, token=services.api_token_create(user=w.owner, name="old")[0]),
    "user_signup": lambda w: services.user_signup(username="newcomer", password="violet-harbour-42"),
    "consumer_create": lambda w: services.consumer_create(actor=w.owner, team=w.team, name="agent"),
    "consumer_update": lambda w: services.consumer_update(
        actor=w.owner, consumer=services.consumer_create(actor=w.owner, team=w.team, name="agent"), enabled=False),
    "consumer_delete": lambda w: services.consumer_delete(
        actor=w.owner, consumer=services.consumer_create(actor=w.owner, team=w.team, name="agent")),
    "consumer_api_key_issue": lambda w: services.consumer_api_key_issue(
        actor=w.owner, consumer=services.consumer_create(actor=w.owner, team=w.team, name="agent"), name="laptop"),
    "consumer_api_key_revoke": lambda w: services.consumer_api_key_revoke(
        actor=w.owner, api_key=services.consumer_api_key_issue(
            actor=w.owner, consumer=services.consumer_create(actor=w.owner, team=w.team, name="agent"))[0]),
    "jwt_credential_create": lambda w: services.jwt_credential_create(
        actor=w.owner, consumer=services.consumer_create(actor=w.owner, team=w.team, name="agent"),
        algorithm="HS256", secret="k" * 32),
    "jwt_credential_delete": lambda w: services.jwt_credential_delete(
        actor=w.owner, credential=services.jwt_credential_create(
            actor=w.owner, consumer=services.consumer_create(actor=w.owner, team=w.team, name="agent"),
            algorithm="HS256", secret="k" * 32)),
    "mcp_server_set_consumer_auth": lambda w: services.mcp_server_set_consumer_auth(
        actor=w.owner, mcp_server=w.server, enabled=True, method="api_key"),
    "consumer_authorize": lambda w: services.consumer_authorize(
        actor=w.owner, mcp_server=w.server, consumer=services.consumer_create(actor=w.owner, team=w.team, name="a"),
        tools=["listPets"]),
    "consumer_authorization_revoke": lambda w: (
        c := services.consumer_create(actor=w.owner, team=w.team, name="agent"),
        services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=c),
        services.consumer_authorization_revoke(actor=w.owner, mcp_server=w.server, consumer=c)),
    "consumer_debug_credential_issue": lambda w: (
        c := services.consumer_create(actor=w.owner, team=w.team, name="agent"),
        services.consumer_debug_credential_issue(actor=w.owner, mcp_server=w.server, consumer=c)),
    "rate_limit_create": lambda w: services.rate_limit_create(actor=w.owner, mcp_server=w.server, requests=60,
                                                              window="minute"),
    "rate_limit_update": lambda w: services.rate_limit_update(
        actor=w.owner, policy=services.rate_limit_create(actor=w.owner, mcp_server=w.server, requests=60,
                                                         window="minute"), requests=10),
    "rate_limit_delete": lambda w: services.rate_limit_delete(
        actor=w.owner, policy=services.rate_limit_create(actor=w.owner, mcp_server=w.server, requests=60,
                                                         window="minute")),
    "call_record_settings_set": lambda w: services.call_record_settings_set(
        actor=w.owner, mcp_server=w.server, record_arguments=True, redact_fields=["card"]),
}

# The market's provisioning (console/services/subscriptions.py).
SCENARIOS.update({
    "market_endpoint_provision": lambda w: services.market_endpoint_provision(
        actor=w.owner, instance=w.instance, name="market-pets", tool_yaml=TOOLS_YAML, consumer_name="market-a"),
    "market_endpoint_retool": lambda w: services.market_endpoint_retool(
        actor=w.owner, mcp_server=w.server, tool_yaml=ONE_TOOL_YAML),
    "market_endpoint_rotate_key": lambda w: (
        e := services.market_endpoint_provision(actor=w.owner, instance=w.instance, name="market-pets",
                                                tool_yaml=TOOLS_YAML, consumer_name="market-a"),
        services.market_endpoint_rotate_key(actor=w.owner, consumer=e.consumer, api_key=e.api_key)),
    "market_endpoint_remove": lambda w: (
        e := services.market_endpoint_provision(actor=w.owner, instance=w.instance, name="market-pets",
                                                tool_yaml=TOOLS_YAML, consumer_name="market-a"),
        services.market_endpoint_remove(actor=w.owner, team=w.team, mcp_server=e.mcp_server, consumer=e.consumer)),
})



def _oauth_client(w):
    from oauth2_provider.models import Application

    return Application.objects.create(name="Inspector", client_type=Application.CLIENT_PUBLIC,
                                      authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                                      redirect_uris="http://127.0.0.1:6274/oauth/callback")


def _oauth_token(w):
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from console.models import ConsumerOAuthToken

    consent = services.oauth_consent_grant(actor=w.owner, mcp_server=w.server, application=_oauth_client(w),
                                           consumer=None, scope="mcp:audited/srv")
    access = AccessToken.objects.create(user=w.owner, application=consent.application, token="at-audit",
                                        expires=timezone.now() + timedelta(hours=1), scope=consent.scope)
    return ConsumerOAuthToken.objects.create(access_token=access, consumer=consent.consumer, mcp_server=w.server,
                                             client_name="Inspector")


# OAuth sign-in (console/services/oauth.py).
SCENARIOS.update({
    "oauth_consent_grant": lambda w: services.oauth_consent_grant(
        actor=w.owner, mcp_server=w.server, application=_oauth_client(w), consumer=None, scope="mcp:audited/srv"),
    "consumer_oauth_token_revoke": lambda w: services.consumer_oauth_token_revoke(actor=w.owner,
                                                                                   token=_oauth_token(w)),
    "oauth_client_register": lambda w: services.oauth_client_register(
        actor=w.owner, team=w.team, name="Web app", redirect_uris=["https://app.example.com/callback"],
        confidential=True),
    "oauth_client_delete": lambda w: services.oauth_client_delete(
        actor=w.owner, client=services.oauth_client_register(
            actor=w.owner, team=w.team, name="Web app", redirect_uris=["https://app.example.com/callback"])[0]),
})

# Writes whose row has no team: tokens belong to a user, and a deleted team's row keeps its id in `detail`.
USER_LEVEL = {"api_token_create", "api_token_revoke", "team_delete"}


def write_functions() -> list[str]:
    return sorted(name for name in services.__all__ if inspect.isfunction(getattr(services, name)))


def test_every_exported_write_function_has_a_scenario():
    missing = [name for name in write_functions() if name not in SCENARIOS]
    assert not missing, f"add an audit scenario to SCENARIOS for: {', '.join(missing)}"
    stale = sorted(set(SCENARIOS) - set(write_functions()))
    assert not stale, f"SCENARIOS names functions console.services no longer exports: {', '.join(stale)}"


class _Rollback(Exception):
    pass


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_write_records_an_audit_row_in_its_own_transaction(name):
    world = World()
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    teams_before = Team.objects.count()
    try:
        with transaction.atomic():
            SCENARIOS[name](world)
            new = AuditEvent.objects.exclude(pk__in=before)
            # Present before the commit: written in the transaction, not afterwards (on_commit, another connection).
            assert new.exists(), f"{name} wrote no audit row"
            for event in new:
                assert event.action and event.object_type and event.object_id
                if name not in USER_LEVEL:
                    assert event.team_id is not None, f"{name} wrote an audit row without a team"
            raise _Rollback
    except _Rollback:
        pass
    # Rolled back together with the change it records.
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == before
    assert Team.objects.count() == teams_before
