"""The Audit log page and GET /api/v1/audit-events/: scoped to the user's teams, filtered, paginated."""
from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console import services
from console.models import AuditEvent

pytestmark = pytest.mark.django_db


def user_in(team_name: str, username: str):
    user = get_user_model().objects.create_user(username, password="pw-123456")
    team = services.team_create(name=team_name, owner=user)
    client = Client()
    client.force_login(user)
    return user, team, client


@pytest.fixture
def teams():
    anna, team_a, client_a = user_in("Team A", "anna")
    ben, team_b, client_b = user_in("Team B", "ben")
    # Start the log at the changes below: creating the teams (team.create, membership.add) is covered elsewhere.
    AuditEvent.objects.all().delete()
    inst = services.instance_create(actor=anna, team=team_a, name="a-prod")
    server = services.mcp_server_create(actor=anna, instance=inst, name="orders")
    services.mcp_server_update(actor=anna, mcp_server=server, description="changed")
    other = services.instance_create(actor=ben, team=team_b, name="b-secret-instance")
    return {"anna": anna, "team_a": team_a, "client_a": client_a, "inst": inst, "server": server,
            "ben": ben, "team_b": team_b, "client_b": client_b, "other": other}


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_the_page_shows_who_what_which_object_and_when(teams):
    page = teams["client_a"].get(reverse("audit_event_list", args=[teams["team_a"].pk]))
    assert page.status_code == 200
    body = text(page)
    rows = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("<tr>") == 3
    assert "mcp_server.update" in rows and "mcp_server.create" in rows and "instance.create" in rows
    assert "anna" in rows and "mcpserver" in rows and str(teams["server"].pk) in rows and "orders" in rows
    assert " UTC</time>" in rows
    assert "b-secret-instance" not in body
    # Newest first.
    assert rows.index("mcp_server.update") < rows.index("mcp_server.create") < rows.index("instance.create")
    # Linked from the top bar and from the instance's navigation.
    url = reverse("audit_event_list", args=[teams["team_a"].pk])
    assert f'href="{url}"' in text(teams["client_a"].get(reverse("instance_list")))
    assert f'href="{url}"' in text(teams["client_a"].get(reverse("instance", args=[teams["inst"].pk])))


def test_another_teams_audit_log_is_not_found(teams):
    assert teams["client_a"].get(reverse("audit_event_list", args=[teams["team_b"].pk])).status_code == 404
    assert teams["client_a"].get(reverse("audit_event_list", args=[999999])).status_code == 404
    assert Client().get(reverse("audit_event_list", args=[teams["team_a"].pk])).status_code == 302


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_every_role_reads_the_audit_log(teams, role):
    user = get_user_model().objects.create_user(f"r-{role}", password="pw-123456")
    services.team_member_add(team=teams["team_a"], user=user, role=role)
    client = Client()
    client.force_login(user)
    page = client.get(reverse("audit_event_list", args=[teams["team_a"].pk]))
    assert page.status_code == 200 and "mcp_server.create" in text(page)
    api = client.get("/api/v1/audit-events/")
    # The three changes plus this member's own arrival (membership.add).
    assert api.status_code == 200 and api.json()["count"] == 4


@pytest.mark.parametrize("query, expected", [
    ({"action": "mcp_server.create"}, ["mcp_server.create"]),
    ({"action": "mcp_server."}, ["mcp_server.update", "mcp_server.create"]),
    ({"actor": "ANNA"}, ["mcp_server.update", "mcp_server.create", "instance.create"]),
    ({"actor": "nobody"}, []),
    ({"object_type": "instance"}, ["instance.create"]),
    ({"object_type": "mcpserver", "object_id": "SERVER"}, ["mcp_server.update", "mcp_server.create"]),
    ({"since": "2000-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"},
     ["mcp_server.update", "mcp_server.create", "instance.create"]),
    ({"until": "2000-01-01T00:00:00Z"}, []),
])
def test_filters_are_the_same_on_page_and_api(teams, query, expected):
    query = {k: (str(teams["server"].pk) if v == "SERVER" else v) for k, v in query.items()}
    api = teams["client_a"].get("/api/v1/audit-events/", query)
    assert api.status_code == 200
    assert [e["action"] for e in api.json()["results"]] == expected
    page = text(teams["client_a"].get(reverse("audit_event_list", args=[teams["team_a"].pk]), query))
    rows = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert [line.split("<code>", 1)[1].split("</code>", 1)[0] for line in rows.split("<tr>")[1:]
            if "<code>" in line] == expected


def test_filter_by_actor_id_and_team(teams):
    services.team_member_add(team=teams["team_b"], user=teams["anna"], role="viewer")
    client = teams["client_a"]
    both = client.get("/api/v1/audit-events/").json()
    # A's three changes, B's instance and anna's arrival in B (membership.add).
    assert both["count"] == 5 and {e["team"] for e in both["results"]} == {teams["team_a"].pk, teams["team_b"].pk}
    only_b = client.get("/api/v1/audit-events/", {"team": teams["team_b"].pk}).json()
    assert [e["action"] for e in only_b["results"]] == ["membership.add", "instance.create"]
    assert only_b["results"][1]["object_name"] == "b-secret-instance"
    by_ben = client.get("/api/v1/audit-events/", {"actor": teams["ben"].pk}).json()
    assert by_ben["count"] == 1 and by_ben["results"][0]["actor_username"] == "ben"


def test_the_api_shows_only_the_users_teams(teams):
    events = teams["client_b"].get("/api/v1/audit-events/").json()
    assert events["count"] == 1 and events["results"][0]["object_name"] == "b-secret-instance"
    foreign = teams["client_b"].get("/api/v1/audit-events/", {"team": teams["team_a"].pk})
    assert foreign.status_code == 400 and list(foreign.json()["errors"]) == ["team"]


@pytest.mark.parametrize("query, field", [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-45T99:00:00Z"}, "until"),
    ({"team": "abc"}, "team"),
])
def test_bad_filter_values_are_a_field_error_never_a_500(teams, query, field):
    api = teams["client_a"].get("/api/v1/audit-events/", query)
    assert api.status_code == 400
    body = api.json()
    assert body["detail"] == "Invalid filters." and list(body["errors"]) == [field] and body["errors"][field]
    if field != "team":
        page = teams["client_a"].get(reverse("audit_event_list", args=[teams["team_a"].pk]), query)
        assert page.status_code == 400
        assert f'id="id_{field}_error"' in text(page)


def test_the_page_is_paginated_with_few_queries(teams):
    team = teams["team_a"]
    AuditEvent.objects.bulk_create([
        AuditEvent(team=team, actor=teams["anna"], action="tool.update", object_type="tool", object_id=str(i),
                   detail={"name": f"tool-{i}"}) for i in range(120)])
    client = teams["client_a"]
    url = reverse("audit_event_list", args=[team.pk])
    client.get(url)  # the session and the user are loaded once
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url)
    assert first.status_code == 200
    assert len(queries) <= 10, [q["sql"] for q in queries]
    body = text(first)
    assert body.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>") == 50
    assert "1–50 of 123" in body and "Page 1 of 3" in body
    last = text(client.get(url, {"page": 3, "action": "tool."}))
    assert "Page 3 of 3" in last and "101–120 of 120" in last
    api = client.get("/api/v1/audit-events/", {"limit": 10, "offset": 115}).json()
    assert api["count"] == 123 and len(api["results"]) == 8 and api["previous"] and api["next"] is None


def test_the_api_filters_are_documented_in_the_schema(teams):
    schema = teams["client_a"].get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/audit-events/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"team", "actor", "action", "object_type", "object_id", "since", "until", "limit", "offset"} <= names
