"""Rate limits, call-record settings and call records through the REST API and the console: shapes, hostile input
answered with a field map, filters, CSV export, audit rows, and the charts' figures."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from console import services
from console.models import AuditEvent, CallRecord, RateLimitPolicy
from console.views.governance import traffic
from gateway.governance.records import redact

from .consumer_data import TOOLS_YAML

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


def api_for(user) -> APIClient:
    _, secret = services.api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def world():
    User = get_user_model()
    olga, vic = User.objects.create_user("olga"), User.objects.create_user("vic")
    team = services.team_create(name="Ops", owner=olga)
    services.team_member_add(team=team, user=vic, role="viewer")
    other = services.team_create(name="Zed's", owner=User.objects.create_user("zed"))
    instance = services.instance_create(actor=None, team=team, name="ops")
    server = services.mcp_server_create(actor=None, instance=instance, name="pets")
    services.tools_apply_yaml(actor=None, mcp_server=server, text=TOOLS_YAML)
    agent = services.consumer_create(actor=None, team=team, name="agent")
    stranger = services.consumer_create(actor=None, team=other, name="stranger")
    return {"olga": olga, "vic": vic, "server": server, "agent": agent, "stranger": stranger,
            "api": api_for(olga), "viewer_api": api_for(vic)}


def field_errors(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.content)
    return response.json()["errors"]


def test_rate_limit_crud_shapes_and_audit(world):
    api, server = world["api"], world["server"]
    base = f"/api/v1/mcp-servers/{server.pk}/rate-limits/"
    made = api.post(base, {"requests": 60, "window": "minute", "consumer": world["agent"].pk, "tool": "getPet",
                           "burst": 10}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert set(body) == {"id", "mcp_server", "consumer", "consumer_name", "tool", "requests", "window", "burst",
                         "applies_to", "enabled", "created_at", "updated_at"}
    assert (body["consumer_name"], body["tool"], body["requests"], body["burst"], body["applies_to"]) == (
        "agent", "getPet", 60, 10, "tool_calls")
    assert api.get(base).json()["count"] == 1
    url = f"/api/v1/rate-limits/{body['id']}/"
    assert api.patch(url, {"requests": 5, "window": "second"}, format="json").json()["requests"] == 5
    assert world["viewer_api"].patch(url, {"requests": 1}, format="json").status_code == 403
    assert api.delete(url).status_code == 204
    assert list(AuditEvent.objects.filter(object_type="ratelimitpolicy").order_by("pk")
                .values_list("action", flat=True)) == ["rate_limit.create", "rate_limit.update", "rate_limit.delete"]


def test_hostile_rate_limits_get_a_field_map(world):
    api, server = world["api"], world["server"]
    base = f"/api/v1/mcp-servers/{server.pk}/rate-limits/"
    assert set(field_errors(api.post(base, {"requests": 0, "window": "fortnight"}, format="json"))) == {
        "requests", "window"}
    assert "tool" in field_errors(api.post(base, {"requests": 1, "window": "day", "tool": "a b"}, format="json"))
    assert "applies_to" in field_errors(api.post(base, {"requests": 1, "window": "day", "tool": "getPet",
                                                        "applies_to": "all"}, format="json"))
    # Another team's consumer is not there for this server.
    assert field_errors(api.post(base, {"requests": 1, "window": "day", "consumer": world["stranger"].pk},
                                 format="json")) == {"consumer": ["No such consumer."]}
    assert api.post(base, {"requests": 1, "window": "day"}, format="json").status_code == 201
    duplicate = api.post(base, {"requests": 2, "window": "hour"}, format="json")
    assert "non_field" in field_errors(duplicate)
    assert RateLimitPolicy.objects.count() == 1


def test_record_settings_validate_field_names(world):
    api, server = world["api"], world["server"]
    url = f"/api/v1/mcp-servers/{server.pk}/call-record-settings"
    assert api.get(url).json() == {"record_arguments": False, "redact_fields": []}
    saved = api.put(url, {"record_arguments": True, "redact_fields": ["card", "card", " ssn "]}, format="json")
    assert saved.json() == {"record_arguments": True, "redact_fields": ["card", "ssn"]}
    assert "redact_fields" in field_errors(api.put(url, {"record_arguments": True, "redact_fields": ["a b"]},
                                                   format="json"))


def _records(world):
    server, agent = world["server"], world["agent"]
    rows = [("getPet", "ok", agent, 0, 10.0), ("getPet", "backend_error", agent, 5, 30.0),
            ("listPets", "limited", None, 30, 1.0), ("listPets", "ok", agent, 120, 20.0)]
    for tool, outcome, consumer, minutes_ago, latency in rows:
        CallRecord.objects.create(at=NOW - dt.timedelta(minutes=minutes_ago), mcp_server=server, instance="ops",
                                  tool=tool, outcome=outcome, consumer=consumer,
                                  consumer_name=consumer.name if consumer else "", latency_ms=latency,
                                  error="=HYPERLINK(\"x\")" if outcome == "backend_error" else "")


def test_call_lists_filter_by_time_tool_consumer_and_outcome(world):
    _records(world)
    api, server = world["api"], world["server"]
    base = f"/api/v1/mcp-servers/{server.pk}/calls/"
    everything = api.get(base).json()
    assert [r["tool"] for r in everything["results"]] == ["getPet", "getPet", "listPets", "listPets"]  # newest first
    assert api.get(base, {"tool": "listPets"}).json()["count"] == 2
    assert api.get(base, {"outcome": "limited"}).json()["results"][0]["consumer"] is None
    assert api.get(base, {"consumer": "agent"}).json()["count"] == 3
    since = (NOW - dt.timedelta(minutes=10)).isoformat()
    assert api.get(base, {"since": since}).json()["count"] == 2
    assert "since" in field_errors(api.get(base, {"since": "yesterday"}))
    assert "outcome" in field_errors(api.get(base, {"outcome": "great"}))
    mine = api.get(f"/api/v1/consumers/{world['agent'].pk}/calls/", {"outcome": "ok"}).json()
    assert mine["count"] == 2
    one = api.get(f"/api/v1/calls/{everything['results'][1]['id']}/").json()
    assert (one["outcome"], one["mcp_server_name"], one["latency_ms"]) == ("backend_error", "pets", 30.0)
    # Another team's consumer and records are not there.
    assert api.get(f"/api/v1/consumers/{world['stranger'].pk}/calls/").status_code == 404


def test_csv_export_is_the_filtered_list_and_never_a_formula(world):
    _records(world)
    client = Client()
    client.force_login(world["vic"])
    response = client.get(f"/console/mcp/{world['server'].pk}/calls/", {"tool": "getPet", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="calls-ops-pets.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:6] == ["at", "instance", "mcp_server", "tool", "consumer", "outcome"]
    assert [(r[3], r[5]) for r in rows[1:]] == [("getPet", "ok"), ("getPet", "backend_error")]
    assert rows[2][-1] == "'=HYPERLINK(\"x\")"
    page = client.get(f"/console/mcp/{world['server'].pk}/calls/", {"outcome": "limited"})
    assert page.status_code == 200
    assert page.content.decode().count('data-outcome="limited"') == 1


def test_traffic_buckets_percentiles_and_top_lists(world):
    _records(world)
    figures = traffic(CallRecord.objects.filter(mcp_server=world["server"]), hours=1, now=NOW)
    assert (figures["total"], figures["error_total"], figures["step"]) == (3, 2, 60)  # the 2-hour-old one is out
    assert sum(figures["calls"]) == 3 and sum(figures["errors"]) == 2
    assert figures["top_tools"] == [("getPet", 2), ("listPets", 1)]
    assert figures["top_consumers"] == [("agent", 2), ("(anonymous)", 1)]
    assert [v for v in figures["p99"] if v is not None] == [1.0, 30.0, 10.0]


def test_redaction_of_nested_secrets_and_bounds():
    value = {"query": "x", "auth": {"api_key": "k", "Password": "p", "inner": [{"token": "t", "ok": 1}]},
             "card": "4111", "long": "y" * 5000}
    kept = redact(value, frozenset({"card"}))
    assert kept["auth"] == {"api_key": "[redacted]", "Password": "[redacted]",
                            "inner": [{"token": "[redacted]", "ok": 1}]}
    assert kept["card"] == "[redacted]" and kept["query"] == "x"
    assert len(kept["long"]) == 2001
    deep: dict = {}
    cursor = deep
    for _ in range(20):
        cursor["n"] = {}
        cursor = cursor["n"]
    flat = redact(deep, frozenset())
    depth = 0
    while isinstance(flat, dict):
        flat, depth = flat["n"], depth + 1
    assert (flat, depth) == ("…", 8)


def test_the_consumer_authentication_tab_shows_and_edits_each_authorization_rate_limit(world):
    from django.urls import reverse

    server, agent = world["server"], world["agent"]
    services.consumer_authorize(actor=None, mcp_server=server, consumer=agent, tools=None)
    client = Client()
    client.force_login(world["olga"])
    tab = reverse("mcp_server_consumer_auth", args=[server.pk])
    page = client.get(tab).content.decode()
    assert "<th scope=\"col\">Rate limit</th>" in page and "The server's policy" in page
    add = reverse("rate_limit_add", args=[server.pk]) + f"?consumer={agent.pk}&from=consumer-auth"
    assert add.replace("&", "&amp;") in page
    drawer = client.get(add).content.decode()
    assert f'<option value="{agent.pk}" selected>agent</option>' in drawer
    made = client.post(add, {"consumer": agent.pk, "tool": "", "requests": 30, "window": "minute",
                             "applies_to": "tool_calls", "enabled": "on"})
    assert (made.status_code, made["Location"]) == (302, tab)  # back where it was opened
    policy = RateLimitPolicy.objects.get(mcp_server=server, consumer=agent)
    page = client.get(tab).content.decode()
    assert f'data-rate-limit="{policy.pk}">30 per minute' in page
    edit = reverse("rate_limit_edit", args=[server.pk, policy.pk]) + "?from=consumer-auth"
    saved = client.post(edit, {"tool": "getPet", "requests": 5, "window": "second", "burst": 2,
                               "applies_to": "tool_calls", "enabled": "on"})
    assert (saved.status_code, saved["Location"]) == (302, tab)
    page = client.get(tab).content.decode()
    assert f'data-rate-limit="{policy.pk}">5 per second (burst 2) on <code>getPet</code>' in page
    # Opened from the Rate limits tab, the form still returns there; a viewer sees the limit, not the buttons.
    plain = client.post(reverse("rate_limit_edit", args=[server.pk, policy.pk]),
                        {"tool": "getPet", "requests": 6, "window": "second", "applies_to": "tool_calls"})
    assert plain["Location"] == reverse("mcp_server_rate_limits", args=[server.pk])
    viewer = Client()
    viewer.force_login(world["vic"])
    seen = viewer.get(tab).content.decode()
    assert f'data-rate-limit="{policy.pk}">6 per second' in seen and "Add limit" not in seen


def test_a_proxied_request_shows_its_method_and_counts_as_a_call_but_not_as_a_tool(world):
    server = world["server"]
    _records(world)
    CallRecord.objects.create(at=NOW - dt.timedelta(minutes=1), mcp_server=server, instance="ops", tool="",
                              method="resources/read", outcome="ok", latency_ms=2.0, backend_status=200)
    figures = traffic(CallRecord.objects.filter(mcp_server=server), hours=1, now=NOW)
    assert figures["total"] == 4 and figures["top_tools"] == [("getPet", 2), ("listPets", 1)]
    client = Client()
    client.force_login(world["vic"])
    page = client.get(f"/console/mcp/{server.pk}/calls/").content.decode()
    assert "<td><code>resources/read</code></td>" in page
    response = client.get(f"/console/mcp/{server.pk}/calls/", {"outcome": "ok", "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    method = rows[0].index("method")
    assert sorted(r[method] for r in rows[1:]) == ["resources/read", "tools/call", "tools/call"]
    listed = world["api"].get(f"/api/v1/mcp-servers/{server.pk}/calls/", {"outcome": "ok"}).json()["results"]
    assert [(r["method"], r["tool"]) for r in listed] == [("tools/call", "getPet"), ("resources/read", ""),
                                                          ("tools/call", "listPets")]  # newest first
