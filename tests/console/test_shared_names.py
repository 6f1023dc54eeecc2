"""Two teams on one installation: domains, the gateway's own host names and the default instance cannot be taken."""
from __future__ import annotations

import html
import threading
import time

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db import connections as db_connections
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from console import hostnames, services
from console.errors import DomainError
from console.models import Instance, McpDomain

from ..live import in_ci

pytestmark = pytest.mark.django_db

PUBLIC = "gw.example.com"


@pytest.fixture(autouse=True)
def public_host(settings):
    settings.GATEWAY_PUBLIC_HOSTS = [PUBLIC]
    settings.PUBLIC_BASE_URL = "https://console.example.org:8443/"


def make_team(name: str, *, superuser: bool = False):
    User = get_user_model()
    user = (User.objects.create_superuser if superuser else User.objects.create_user)(name, password="pw-123456")
    team = services.team_create(name=f"Team {name}", owner=user)
    client = Client()
    client.force_login(user)
    return {"user": user, "team": team, "client": client}


@pytest.fixture
def two_teams():
    a, b = make_team("anna"), make_team("ben")
    a["instance"] = services.instance_create(actor=a["user"], team=a["team"], name="anna-prod")
    a["server"] = services.mcp_server_create(actor=a["user"], instance=a["instance"], name="orders",
                                             description="Anna's orders", domains=["api.example.com"])
    b["instance"] = services.instance_create(actor=b["user"], team=b["team"], name="ben-prod")
    b["server"] = services.mcp_server_create(actor=b["user"], instance=b["instance"], name="orders",
                                             description="Ben's orders")
    return a, b


def domain_errors(exc_info) -> list[str]:
    return exc_info.value.details["domains"]


# ---------------------------------------------------------------- domains

def test_another_team_cannot_claim_a_domain_and_is_not_told_whose_it_is(two_teams):
    a, b = two_teams
    with pytest.raises(DomainError) as exc:
        services.mcp_server_update(actor=b["user"], mcp_server=b["server"], domains=["API.example.com"])
    assert domain_errors(exc) == ["api.example.com is already used by another MCP server on this gateway."]
    assert "anna" not in str(exc.value.details).lower() and "orders" not in str(exc.value.details)
    assert list(b["server"].domains.values_list("host", flat=True)) == []

    # The same through the console form and the REST API: a field error, the other team unnamed.
    page = b["client"].post(reverse("mcp_server_edit", args=[b["server"].pk]),
                            {"name": "orders", "domains": "api.example.com", "timeout_seconds": 30})
    assert page.status_code == 400
    assert "api.example.com is already used by another MCP server on this gateway." in html.unescape(
        page.content.decode())
    api = b["client"].patch(f"/api/v1/mcp-servers/{b['server'].pk}/", {"domains": ["api.example.com"]},
                            content_type="application/json")
    assert api.status_code == 400
    assert api.json()["errors"]["domains"] == ["api.example.com is already used by another MCP server on this gateway."]


def test_within_the_own_team_the_message_names_the_server(two_teams):
    a, _ = two_teams
    other = services.instance_create(actor=a["user"], team=a["team"], name="anna-test")
    with pytest.raises(DomainError) as exc:
        services.mcp_server_create(actor=a["user"], instance=other, name="orders2", domains=["api.example.com"])
    assert domain_errors(exc) == ["api.example.com is already used by MCP server “orders” in instance anna-prod."]
    with pytest.raises(DomainError) as exc:
        services.mcp_server_create(actor=a["user"], instance=a["instance"], name="orders3",
                                   domains=["api.example.com"])
    assert domain_errors(exc) == ["api.example.com is already used by MCP server “orders” in this instance."]


@pytest.mark.parametrize("host, reason", [
    ("127.0.0.1", "it is a loopback or unspecified address"),
    ("127.8.9.10", "it is a loopback or unspecified address"),
    ("0.0.0.0", "it is a loopback or unspecified address"),
    ("127.1", "it is a loopback or unspecified address"),
    ("2130706433", "it is a loopback or unspecified address"),
    ("localhost", "it is a loopback name"),
    ("app.localhost", "it is a loopback name"),
    ("*.localhost", "it covers loopback names (localhost)"),
    (PUBLIC, "it is this gateway's own host name"),
    ("GW.Example.com.", "it is this gateway's own host name"),
    ("console.example.org", "it is this gateway's own host name"),  # the host of PUBLIC_BASE_URL
    ("*.example.com", "it would cover this gateway's own host name"),
    ("*.example.org", "it would cover this gateway's own host name"),
    ("*.0.0.1", "a wildcard cannot cover IP addresses"),
])
def test_the_gateways_own_names_cannot_be_claimed(two_teams, host, reason):
    _, b = two_teams
    with pytest.raises(DomainError) as exc:
        services.mcp_server_update(actor=b["user"], mcp_server=b["server"], domains=[host])
    normalized = host.lower().rstrip(".")
    assert domain_errors(exc) == [f"{normalized} cannot be used: {reason}."]
    assert not McpDomain.objects.filter(host=normalized).exists()


def test_ipv6_loopback_is_refused_at_every_spelling():
    for host in ("::1", "[::1]", "::", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"):
        assert hostnames.is_reserved(host), host
    for host in ("api.example.com", "*.example.net", "10.0.0.1", "192.0.2.7", "mcp.example.org"):
        assert not hostnames.is_reserved(host), host


def test_ordinary_domains_and_wildcards_are_still_accepted(two_teams):
    _, b = two_teams
    server = services.mcp_server_update(actor=b["user"], mcp_server=b["server"],
                                        domains=["ben.example.net", "*.tools.example.com", "example.com"])
    assert sorted(server.domains.values_list("host", flat=True)) == [
        "*.tools.example.com", "ben.example.net", "example.com"]


def test_the_database_refuses_a_second_row_for_a_host(two_teams):
    from django.db import IntegrityError, transaction

    a, b = two_teams
    with pytest.raises(IntegrityError), transaction.atomic():
        McpDomain.objects.create(instance=b["instance"], mcp_server=b["server"], host="api.example.com")


@pytest.mark.django_db(transaction=True)
def test_migration_stops_on_a_host_shared_by_two_instances_and_keeps_the_data():
    executor = MigrationExecutor(connection)
    executor.migrate([("console", "0001_initial")])
    try:
        old = MigrationExecutor(connection).loader.project_state([("console", "0001_initial")]).apps
        Team, Instance_, Server, Domain = (old.get_model("console", m) for m in
                                           ("Team", "Instance", "McpServer", "McpDomain"))
        team = Team.objects.create(name="t", slug="t")
        for name in ("one", "two"):
            inst = Instance_.objects.create(team=team, name=name)
            server = Server.objects.create(instance=inst, name="s")
            Domain.objects.create(instance=inst, mcp_server=server, host="shared.example.com")
        with pytest.raises(RuntimeError, match="shared.example.com is used by MCP servers in more than one instance"):
            MigrationExecutor(connection).migrate([("console", "0002_domain_global")])
        assert Domain.objects.filter(host="shared.example.com").count() == 2
        Domain.objects.filter(instance__name="two").delete()
    finally:
        # Every app: going back to console 0001 also unapplied the migrations that depend on console's later ones.
        call_command("migrate", verbosity=0)
    assert McpDomain.objects.filter(host="shared.example.com").count() == 1


# ---------------------------------------------------------------- the default instance

def test_first_instance_of_an_installation_is_the_default_and_later_ones_never(two_teams):
    a, b = two_teams
    assert Instance.objects.get(is_default=True) == a["instance"]
    assert not b["instance"].is_default
    services.instance_delete(actor=a["user"], instance=a["instance"])
    later = services.instance_create(actor=b["user"], team=b["team"], name="ben-next")
    assert not later.is_default and not Instance.objects.filter(is_default=True).exists()


def test_non_staff_cannot_take_the_default_through_the_form(two_teams):
    _, b = two_teams
    client = b["client"]
    page = client.get(reverse("instance_edit", args=[b["instance"].pk]))
    assert 'name="is_default"' not in page.content.decode()
    assert 'name="is_default"' not in client.get(reverse("instance_add")).content.decode()
    # A hand-made POST with the field is ignored: the form has no such field for this user.
    client.post(reverse("instance_edit", args=[b["instance"].pk]),
                {"name": "ben-prod", "region": "local", "description": "", "is_default": "on"})
    client.post(reverse("instance_add"), {"name": "ben-two", "region": "local", "is_default": "on"})
    assert Instance.objects.filter(name="ben-two").exists()
    assert list(Instance.objects.filter(is_default=True).values_list("name", flat=True)) == ["anna-prod"]


def test_non_staff_cannot_take_or_drop_the_default_through_the_api(two_teams):
    a, b = two_teams
    taken = b["client"].patch(f"/api/v1/instances/{b['instance'].pk}/", {"is_default": True},
                              content_type="application/json")
    assert taken.status_code == 403
    assert taken.json()["errors"] == {"is_default": ["Only staff (superusers) choose or change the default instance."]}
    created = b["client"].post("/api/v1/instances/", {"name": "ben-x", "is_default": True},
                               content_type="application/json")
    assert created.status_code == 403 and "is_default" in created.json()["errors"]
    dropped = a["client"].patch(f"/api/v1/instances/{a['instance'].pk}/", {"is_default": False},
                                content_type="application/json")
    assert dropped.status_code == 403 and "is_default" in dropped.json()["errors"]
    # Sending the value it already has changes nothing and is allowed.
    same = b["client"].patch(f"/api/v1/instances/{b['instance'].pk}/", {"is_default": False, "region": "eu"},
                             content_type="application/json")
    assert same.status_code == 200 and same.json()["region"] == "eu"
    assert list(Instance.objects.filter(is_default=True).values_list("name", flat=True)) == ["anna-prod"]


def test_staff_choose_the_default(two_teams):
    _, b = two_teams
    staff = get_user_model().objects.create_superuser("root", password="pw-123456")
    services.team_member_add(team=b["team"], user=staff, role="admin")
    client = Client()
    client.force_login(staff)
    assert 'name="is_default"' in client.get(reverse("instance_edit", args=[b["instance"].pk])).content.decode()
    moved = client.patch(f"/api/v1/instances/{b['instance'].pk}/", {"is_default": True},
                         content_type="application/json")
    assert moved.status_code == 200 and moved.json()["is_default"] is True
    assert list(Instance.objects.filter(is_default=True).values_list("name", flat=True)) == ["ben-prod"]


# ---------------------------------------------------------------- through the real gateway

async def _initialize(host: str, path: str = "/mcp-servers/orders") -> httpx.Response:
    from gateway.asgi import app

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as client:
        return await client.post(path, headers={"Accept": "application/json, text/event-stream"},
                                 json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                       "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                                  "clientInfo": {"name": "t", "version": "1"}}})


@pytest.mark.django_db(transaction=True)
async def test_the_public_host_reaches_the_default_instance_never_another_team():
    from asgiref.sync import sync_to_async

    @sync_to_async
    def setup():
        a, b = make_team("anna"), make_team("ben")
        ia = services.instance_create(actor=a["user"], team=a["team"], name="anna-prod")
        services.mcp_server_create(actor=a["user"], instance=ia, name="orders", description="Anna's orders")
        ib = services.instance_create(actor=b["user"], team=b["team"], name="ben-prod")
        sb = services.mcp_server_create(actor=b["user"], instance=ib, name="orders", description="Ben's orders",
                                        domains=["ben.example.net"])
        # Rows written before the rule existed: the routing must not let them shadow the default instance.
        for host in (PUBLIC, "127.0.0.1", "localhost"):
            McpDomain.objects.create(instance=ib, mcp_server=sb, host=host)
        from gateway.state import bump_config_version
        bump_config_version()
        connection.close()  # this worker thread outlives the test; its connection must not

    await setup()
    for host in (PUBLIC, "127.0.0.1", "localhost", "unknown.example"):
        answer = await _initialize(host)
        assert answer.status_code == 200, (host, answer.text)
        assert answer.json()["result"]["serverInfo"]["title"] == "Anna's orders", host
    ben = await _initialize("ben.example.net")
    assert ben.json()["result"]["serverInfo"]["title"] == "Ben's orders"


@pytest.mark.django_db(transaction=True)
def test_two_first_instances_created_at_once_make_one_default_and_no_error():
    """A new installation, two teams creating their first instance at the same moment: the second insert waits on
    the first's uncommitted default, then finds the default taken; it becomes an ordinary instance, not a 500."""
    if connection.vendor != "postgresql":
        if in_ci():
            pytest.fail("this test needs PostgreSQL (DATABASE_URL) under CI=true")
        pytest.skip("needs PostgreSQL: SQLite serialises writers before the race can happen")
    a, b = make_team("anna"), make_team("ben")
    created, errors = {}, []
    first_inserted, commit_first = threading.Event(), threading.Event()

    def create(who, team, hold: bool):
        try:
            with transaction.atomic():
                created[who] = services.instance_create(actor=team["user"], team=team["team"], name=f"{who}-prod")
                if hold:
                    first_inserted.set()
                    assert commit_first.wait(30)
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            db_connections.close_all()

    first = threading.Thread(target=create, args=("anna", a, True))
    first.start()
    assert first_inserted.wait(30)
    second = threading.Thread(target=create, args=("ben", b, False))
    second.start()
    # Let the first commit only once the second is blocked on the default's unique index.
    with connection.cursor() as cursor:
        for _ in range(300):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND query LIKE 'INSERT INTO \"console_instance\"%%'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second creation never waited on the first")
    commit_first.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert created["anna"].is_default and not created["ben"].is_default
    assert list(Instance.objects.filter(is_default=True).values_list("name", flat=True)) == ["anna-prod"]
    assert Instance.objects.filter(name="ben-prod", is_default=False).exists()
