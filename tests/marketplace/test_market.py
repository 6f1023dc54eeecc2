"""The market through its services, pages and REST API: seed, search, listing page, Get endpoint, subscriptions,
submissions and review, team isolation."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from console import services as console_services
from console.models import AuditEvent, Consumer, ConsumerApiKey, ConsumerAuthorization, McpServer, Tool
from marketplace import selectors
from marketplace.models import Listing, Subscription

pytestmark = pytest.mark.django_db

NEW_TOOL_YAML = """\
server:
  name: notes
  config: {baseUrl: "http://127.0.0.1:8000/market-demo"}
tools:
  - name: catFact
    description: A fact about cats, numbered.
    args:
      - {name: n, type: integer, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/cats/fact", method: GET}
"""


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------- seed and browsing

def test_first_run_seeds_twelve_listings_three_offline_in_several_categories(market):
    listed = Listing.objects.filter(listed=True)
    assert listed.count() >= 12
    assert set(listed.filter(works_offline=True).values_list("slug", flat=True)) == {
        "petstore", "demo-weather", "demo-cat-pictures"}
    assert listed.values("category").distinct().count() >= 4
    assert listed.filter(kind="remote").count() == 1


def test_seeding_again_changes_nothing_but_follows_the_port(market):
    from marketplace.seed import seed_market

    assert seed_market(demo_api_base="http://127.0.0.1:9100/demo-api") == []
    weather = Listing.objects.get(slug="demo-weather").latest_version()
    assert weather.config_defaults == {"baseUrl": "http://127.0.0.1:9100/market-demo"}
    assert Listing.objects.get(slug="petstore").latest_version().config_defaults == {
        "baseUrl": "http://127.0.0.1:9100/demo-api"}


def test_search_by_task_description_ranks_the_cat_image_maker_first(market):
    results = [listing.slug for listing in selectors.listing_search(q="generate a cat image")]
    assert results[0] == "demo-cat-pictures"
    assert "cataas" in results[:3]
    assert "github" not in results


def test_search_filters_by_category_and_sorts(market):
    weather = [listing.slug for listing in selectors.listing_search(category="weather", sort="name")]
    assert weather == ["open-meteo", "openweathermap", "demo-weather"]
    titles = [listing.title for listing in selectors.listing_search(sort="name")]
    assert titles == sorted(titles)
    assert list(selectors.listing_search(q="weather", category="media")) == []


def test_market_page_shows_grid_search_and_badges(acme):
    page = signed_in(acme.user).get("/market/", {"q": "weather forecast"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Weather (demo)" in html and "Works offline" in html and "Needs internet" in html
    assert "GitHub" not in html


def test_market_pages_paginate(acme):
    first = signed_in(acme.user).get("/market/", {"sort": "name"}).content.decode()
    second = signed_in(acme.user).get("/market/", {"sort": "name", "page": 2}).content.decode()
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert "Wikipedia" in second and "Wikipedia" not in first


def test_anonymous_visitors_are_sent_to_sign_in_unless_the_operator_opens_browsing(market, settings):
    assert Client().get("/market/").status_code == 302
    assert Client().get("/api/v1/market/listings/").status_code == 401
    settings.MARKET_ANONYMOUS_BROWSING = True
    page = Client().get("/market/")
    assert page.status_code == 200 and "Sign in" in page.content.decode() and "Sign out" not in page.content.decode()
    listing = Client().get("/market/l/petstore/").content.decode()
    assert "to get an endpoint" in listing and 'action="/market/l/petstore/subscribe/"' not in listing
    assert Client().post("/market/l/petstore/subscribe/", {}).status_code == 302  # to the sign-in page
    assert Client().get("/api/v1/market/listings/").json()["count"] >= 12


def test_listing_page_renders_readme_safely_with_tools_versions_and_configuration(acme):
    listing = Listing.objects.get(slug="petstore")
    version = listing.latest_version()
    version.readme += "\n<script>alert('x')</script>\n\n[click](javascript:alert(1))\n"
    version.save()
    html = signed_in(acme.user).get("/market/l/petstore/").content.decode()
    assert "<script>alert" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html
    assert "getPet" in html and "&quot;petId&quot;" in html
    assert "Pet store API key" in html and "1.0.0" in html and "First release." in html
    assert "Streamable HTTP" in html and "HTTP+SSE" in html
    weather = signed_in(acme.user).get("/market/l/demo-weather/").content.decode()
    assert "<table>" in weather


def test_unknown_listing_is_404(acme):
    assert signed_in(acme.user).get("/market/l/nope/").status_code == 404
    assert signed_in(acme.user).get("/api/v1/market/listings/nope/").status_code == 404


# ---------------------------------------------------------------- Get endpoint

def subscribe(tenant, slug="petstore", config=None):
    return signed_in(tenant.user).post(f"/api/v1/market/listings/{slug}/subscribe", {
        "team": tenant.team.pk, "instance": tenant.instance.pk,
        "config": {"api_key": "demo-key"} if config is None else config}, content_type="application/json")


def test_subscribe_provisions_server_consumer_key_auth_and_authorization_in_the_shape_of_the_api(acme):
    response = subscribe(acme)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"subscription", "endpoints", "api_key", "client_configs"}
    assert set(body["endpoints"]) == {"streamable_http", "sse"}
    # The first instance is the default one, so the bare path serves it.
    assert body["endpoints"]["streamable_http"] == "http://testserver/mcp-servers/petstore"
    assert body["endpoints"]["sse"].endswith("/mcp-servers/petstore/sse")
    key = body["api_key"]
    assert key.startswith("mck_")
    assert {c["id"] for c in body["client_configs"]} == {"claude", "cursor", "vscode", "inspector", "stdio"}
    assert all(key in c["text"] for c in body["client_configs"])
    bridge = json.loads(next(c for c in body["client_configs"] if c["id"] == "stdio")["text"])
    assert bridge == {"mcpServers": {"petstore": {"command": "mcp-gateway", "args": [
        "connect", "http://testserver/mcp-servers/petstore"], "env": {"MCP_GATEWAY_KEY": key}}}}
    server = McpServer.objects.get(pk=body["subscription"]["mcp_server"])
    assert server.instance == acme.instance and server.consumer_auth_enabled and server.tools.count() == 6
    consumer = Consumer.objects.get(pk=body["subscription"]["consumer"])
    assert consumer.team == acme.team
    assert ConsumerApiKey.objects.get(consumer=consumer).digest == ConsumerApiKey.digest_of(key)
    assert ConsumerAuthorization.objects.get(mcp_server=server).consumer == consumer
    # The backend key is the console's, encrypted at rest, never shown back.
    scheme = server.security_schemes.get(scheme_id="DemoKey")
    assert scheme.default_credential == "demo-key"
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT default_credential FROM console_securityscheme WHERE id = %s", [scheme.pk])
        assert "demo-key" not in cursor.fetchone()[0]
    detail = signed_in(acme.user).get(f"/api/v1/market/subscriptions/{body['subscription']['id']}/").content
    assert b"demo-key" not in detail and key.encode() not in detail
    assert AuditEvent.objects.filter(action="market_subscription.create").count() == 1


def test_a_second_click_answers_the_existing_subscription_without_the_key(acme):
    first = subscribe(acme).json()
    again = subscribe(acme)
    assert again.status_code == 200
    assert again.json()["subscription"]["id"] == first["subscription"]["id"]
    assert again.json()["api_key"] is None
    assert McpServer.objects.filter(instance=acme.instance).count() == 1
    page = signed_in(acme.user).post("/market/l/petstore/subscribe/", {
        "team": acme.team.pk, "instance": acme.instance.pk, "config.api_key": "demo-key"})
    assert page.status_code == 302 and page["Location"].endswith(f"/market/subscriptions/{first['subscription']['id']}/")


def test_required_configuration_is_a_field_error_and_nothing_is_provisioned(acme):
    response = subscribe(acme, config={})
    assert response.status_code == 400
    assert "config.api_key" in response.json()["errors"]
    unknown = subscribe(acme, config={"api_key": "demo-key", "other": "x"})
    assert unknown.status_code == 400 and "config" in unknown.json()["errors"]
    assert not McpServer.objects.filter(instance=acme.instance).exists()
    assert not Consumer.objects.filter(team=acme.team).exists()
    page = signed_in(acme.user).post("/market/l/petstore/subscribe/", {"team": acme.team.pk,
                                                                       "instance": acme.instance.pk})
    assert page.status_code == 400 and "Pet store API key is required." in page.content.decode()


def test_rotate_key_revokes_the_old_one(acme):
    body = subscribe(acme).json()
    old = ConsumerApiKey.objects.get(digest=ConsumerApiKey.digest_of(body["api_key"]))
    rotated = signed_in(acme.user).post(f"/api/v1/market/subscriptions/{body['subscription']['id']}/rotate-key")
    assert rotated.status_code == 200
    new_key = rotated.json()["api_key"]
    assert new_key != body["api_key"]
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert ConsumerApiKey.objects.get(digest=ConsumerApiKey.digest_of(new_key)).revoked_at is None
    assert rotated.json()["endpoints"] == body["endpoints"]


def test_unsubscribe_removes_exactly_what_was_provisioned(acme):
    own = console_services.mcp_server_create(actor=acme.user, instance=acme.instance, name="mine", domains=[])
    own_consumer = console_services.consumer_create(actor=acme.user, team=acme.team, name="laptop")
    body = subscribe(acme).json()
    weather = subscribe(acme, "demo-weather", config={}).json()
    response = signed_in(acme.user).delete(f"/api/v1/market/subscriptions/{body['subscription']['id']}/")
    assert response.status_code == 204
    assert not McpServer.objects.filter(pk=body["subscription"]["mcp_server"]).exists()
    assert not Consumer.objects.filter(pk=body["subscription"]["consumer"]).exists()
    assert not ConsumerApiKey.objects.filter(digest=ConsumerApiKey.digest_of(body["api_key"])).exists()
    assert McpServer.objects.filter(pk=own.pk).exists() and Consumer.objects.filter(pk=own_consumer.pk).exists()
    assert McpServer.objects.filter(pk=weather["subscription"]["mcp_server"]).exists()
    assert not Subscription.objects.filter(pk=body["subscription"]["id"]).exists()


def test_deleting_an_instance_removes_its_subscriptions_consumers_and_router(acme):
    from marketplace.models import RouterKey
    from marketplace.router import router_key_issue

    other = console_services.instance_create(actor=acme.user, team=acme.team, name="acme-other", region="local")
    kept = signed_in(acme.user).post("/api/v1/market/listings/demo-weather/subscribe", {
        "team": acme.team.pk, "instance": other.pk, "config": {}}, content_type="application/json").json()
    body = subscribe(acme).json()
    remote = subscribe(acme, "deepwiki", config={}).json()
    router, _ = router_key_issue(actor=acme.user, team=acme.team, instance=acme.instance)
    own_consumer = console_services.consumer_create(actor=acme.user, team=acme.team, name="laptop")

    assert signed_in(acme.user).delete(f"/api/v1/instances/{acme.instance.pk}/").status_code == 204
    gone = [body["subscription"]["consumer"], remote["subscription"]["consumer"], router.consumer_id]
    assert not Consumer.objects.filter(pk__in=gone).exists()
    assert not ConsumerApiKey.objects.filter(digest=ConsumerApiKey.digest_of(body["api_key"])).exists()
    assert not Subscription.objects.filter(instance_id=acme.instance.pk).exists()
    assert not RouterKey.objects.filter(pk=router.pk).exists()
    # Another instance's subscription and the team's own consumers stay.
    assert Subscription.objects.filter(pk=kept["subscription"]["id"]).exists()
    assert Consumer.objects.filter(pk__in=[kept["subscription"]["consumer"], own_consumer.pk]).count() == 2
    assert AuditEvent.objects.filter(action="market_subscription.delete").count() == 2


def test_remote_listing_provisions_a_direct_proxy_server(acme):
    body = subscribe(acme, "deepwiki", config={}).json()
    server = McpServer.objects.get(pk=body["subscription"]["mcp_server"])
    assert server.server_type == "direct_proxy" and server.backend_transport == "streamable_http"
    assert server.backend_service.base_url == "https://mcp.deepwiki.com" and server.backend_path == "/mcp"
    signed_in(acme.user).delete(f"/api/v1/market/subscriptions/{body['subscription']['id']}/")
    assert not acme.instance.services.exists()


def test_a_viewer_cannot_get_an_endpoint(acme):
    from django.contrib.auth import get_user_model

    viewer = get_user_model().objects.create_user(username="viewer", password="pw-viewer-123456")
    console_services.team_member_add(team=acme.team, user=viewer, role="viewer")
    response = signed_in(viewer).post("/api/v1/market/listings/petstore/subscribe", {
        "team": acme.team.pk, "instance": acme.instance.pk, "config": {"api_key": "demo-key"}},
        content_type="application/json")
    assert response.status_code == 403
    assert not McpServer.objects.filter(instance=acme.instance).exists()


# ---------------------------------------------------------------- team isolation

def test_another_teams_subscriptions_are_404_and_its_instance_is_not_yours(acme, globex):
    body = subscribe(acme).json()
    sub_id = body["subscription"]["id"]
    other = signed_in(globex.user)
    assert other.get(f"/api/v1/market/subscriptions/{sub_id}/").status_code == 404
    assert other.post(f"/api/v1/market/subscriptions/{sub_id}/rotate-key").status_code == 404
    assert other.delete(f"/api/v1/market/subscriptions/{sub_id}/").status_code == 404
    assert other.get(f"/market/subscriptions/{sub_id}/").status_code == 404
    assert other.get("/api/v1/market/subscriptions/").json()["count"] == 0
    # Naming acme's instance from globex is "not found", never a subscription in acme's team.
    sneaky = other.post("/api/v1/market/listings/petstore/subscribe", {
        "team": globex.team.pk, "instance": acme.instance.pk, "config": {"api_key": "demo-key"}},
        content_type="application/json")
    assert sneaky.status_code == 404
    # The same listing in the other team is its own endpoint, consumer and key.
    theirs = subscribe(globex).json()
    assert theirs["subscription"]["id"] != sub_id
    assert McpServer.objects.get(pk=theirs["subscription"]["mcp_server"]).instance == globex.instance
    assert Subscription.objects.count() == 2


# ---------------------------------------------------------------- submissions, review, versions

def submit(tenant, **extra):
    data: dict = {"team": tenant.team.pk, "source": "tool_yaml", "slug": "cat-notes", "title": "Cat Notes",
            "summary": "Cat facts by number.", "category": "media", "tags": ["cats"], "version": "1.0.0",
            "readme": "# Cat Notes", "tool_yaml": NEW_TOOL_YAML}
    data.update(extra)
    data = {k: v for k, v in data.items() if v is not None}
    return signed_in(tenant.user).post("/api/v1/market/submissions/", data, content_type="application/json")


def test_submission_is_reviewed_then_listed(acme, staff):
    response = submit(acme)
    assert response.status_code == 201, response.content
    sub = response.json()
    assert sub["status"] == "pending" and sub["listed"] is False
    assert "cat-notes" not in [x.slug for x in selectors.listing_search(q="cat notes")]
    assert signed_in(acme.user).post(f"/api/v1/market/submissions/{sub['id']}/approve").status_code == 403
    queue = signed_in(staff).get("/market/review/").content.decode()
    assert "Cat Notes 1.0.0" in queue
    approved = signed_in(staff).post(f"/api/v1/market/submissions/{sub['id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert "cat-notes" in [x.slug for x in selectors.listing_search(q="cat facts")]
    mine = signed_in(acme.user).get("/api/v1/market/submissions/").json()["results"]
    assert [s["status"] for s in mine] == ["approved"]


def test_rejected_submission_shows_its_reason_to_the_submitter(acme, staff):
    sub = submit(acme).json()
    no_reason = signed_in(staff).post(f"/api/v1/market/submissions/{sub['id']}/reject", {"reason": ""},
                                      content_type="application/json")
    assert no_reason.status_code == 400
    rejected = signed_in(staff).post(f"/api/v1/market/submissions/{sub['id']}/reject",
                                     {"reason": "The README says nothing about the backend."},
                                     content_type="application/json")
    assert rejected.json()["status"] == "rejected"
    page = signed_in(acme.user).get("/market/submissions/").content.decode()
    assert "Rejected" in page and "The README says nothing about the backend." in page
    assert not Listing.objects.get(slug="cat-notes").listed


def test_a_new_version_never_breaks_subscribers_and_upgrade_changes_tools_only(acme, staff):
    first = submit(acme).json()
    signed_in(staff).post(f"/api/v1/market/submissions/{first['id']}/approve")
    body = subscribe(acme, "cat-notes", config={}).json()
    server = McpServer.objects.get(pk=body["subscription"]["mcp_server"])
    assert list(server.tools.values_list("name", flat=True)) == ["catFact"]
    v2_yaml = NEW_TOOL_YAML.replace("name: catFact", "name: catFactV2")
    second = submit(acme, listing="cat-notes", version="2.0.0", changelog="Renames the tool.", tool_yaml=v2_yaml)
    assert second.status_code == 201, second.content
    # Pending, and then approved: the subscriber's server keeps its tools until they choose to upgrade.
    signed_in(staff).post(f"/api/v1/market/submissions/{second.json()['id']}/approve")
    assert list(server.tools.values_list("name", flat=True)) == ["catFact"]
    listed = signed_in(acme.user).get("/api/v1/market/subscriptions/").json()["results"][0]
    assert listed["version"] == "1.0.0" and listed["upgrade_available"] == "2.0.0"
    upgraded = signed_in(acme.user).post(f"/api/v1/market/subscriptions/{body['subscription']['id']}/upgrade")
    assert upgraded.status_code == 200
    assert upgraded.json()["subscription"]["version"] == "2.0.0"
    assert upgraded.json()["endpoints"] == body["endpoints"]
    assert list(Tool.objects.filter(mcp_server=server).values_list("name", flat=True)) == ["catFactV2"]
    key = ConsumerApiKey.objects.get(digest=ConsumerApiKey.digest_of(body["api_key"]))
    assert key.revoked_at is None
    versions = signed_in(acme.user).get("/api/v1/market/listings/cat-notes/").json()["versions"]
    assert [v["version"] for v in versions] == ["2.0.0", "1.0.0"]


def test_submissions_are_isolated_between_teams(acme, globex, staff):
    sub = submit(acme).json()
    other = signed_in(globex.user)
    assert other.get(f"/api/v1/market/submissions/{sub['id']}/").status_code == 404
    assert other.get("/api/v1/market/submissions/").json()["count"] == 0
    # Nor may another team publish a version of acme's listing.
    hijack = submit(globex, listing="cat-notes", version="9.9.9")
    assert hijack.status_code == 404
    assert other.post("/api/v1/market/submissions/", {"team": acme.team.pk, "source": "tool_yaml"},
                      content_type="application/json").status_code == 404


def test_submit_from_an_existing_mcp_server_of_the_team(acme, staff):
    server = console_services.mcp_server_create(actor=acme.user, instance=acme.instance, name="facts", domains=[])
    console_services.tools_apply_yaml(actor=acme.user, mcp_server=server, text=NEW_TOOL_YAML)
    response = submit(acme, source="mcp_server", mcp_server=server.pk, slug="team-facts", tool_yaml=None)
    assert response.status_code == 201, response.content
    version = Listing.objects.get(slug="team-facts").versions.get()
    assert [t["name"] for t in version.tools] == ["catFact"]


def test_bad_tool_yaml_is_a_field_error(acme):
    response = submit(acme, tool_yaml="tools: [{name: 'bad name!'}]")
    assert response.status_code == 400
    assert "tool_yaml" in response.json()["errors"]


# ---------------------------------------------------------------- bad input gets a clear answer, never a 500

def test_router_refuses_bad_requests_with_clear_errors(acme):
    from marketplace.router import router_key_issue

    _, secret = router_key_issue(actor=acme.user, team=acme.team, instance=acme.instance)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    url = "/market/router/mcp"
    assert Client().post(url, "{}", content_type="application/json").status_code == 401
    assert client.get(url).status_code == 405
    assert client.post(url, "not json", content_type="application/json").status_code == 400
    assert client.post(url, "[" * 10_000, content_type="application/json").status_code == 400
    assert client.post(url, json.dumps({"jsonrpc": "2.0"}), content_type="application/json").status_code == 400
    unknown = client.post(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "nope"}),
                          content_type="application/json").json()
    assert unknown["error"]["code"] == -32601
    bad_tool = client.post(url, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                            "params": {"name": "nope"}}), content_type="application/json").json()
    assert bad_tool["error"]["code"] == -32602
    no_args = client.post(url, json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                           "params": {"name": "search_mcp_server", "arguments": {
                                               "task_description": 5}}}), content_type="application/json").json()
    assert no_args["result"]["isError"] is True and "task_description" in no_args["result"]["content"][0]["text"]
    found = client.post(url, json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "search_mcp_server", "arguments": {"task_description": "x " * 5000}}}),
        content_type="application/json")
    assert found.status_code == 200 and found.json()["result"]["isError"] is False
    # A key of another consumer (not a router key) is no router key.
    other_key = subscribe(acme).json()["api_key"]
    assert Client(headers={"Authorization": f"Bearer {other_key}"}).post(
        url, "{}", content_type="application/json").status_code == 401


def test_rotating_the_router_key_revokes_the_old_one(acme):
    from marketplace.router import router_key_issue

    _, first = router_key_issue(actor=acme.user, team=acme.team, instance=acme.instance)
    _, second = router_key_issue(actor=acme.user, team=acme.team, instance=acme.instance)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert Client(headers={"Authorization": f"Bearer {first}"}).post(
        "/market/router/mcp", body, content_type="application/json").status_code == 401
    listed = Client(headers={"Authorization": f"Bearer {second}"}).post(
        "/market/router/mcp", body, content_type="application/json").json()
    assert [t["name"] for t in listed["result"]["tools"]] == ["search_mcp_server", "add_mcp_server", "use_tool"]


@pytest.mark.parametrize("params", [
    {"q": "x" * 10_000}, {"page": "abc"}, {"page": "99999"}, {"sort": "nonsense"}, {"category": "c" * 500},
    {"q": "'\";--<script>"},
])
def test_odd_browse_parameters_answer_a_page(acme, params):
    assert signed_in(acme.user).get("/market/", params).status_code == 200
    assert signed_in(acme.user).get("/api/v1/market/listings/", params).status_code == 200


def test_subscribe_with_odd_bodies_is_a_4xx(acme):
    client = signed_in(acme.user)
    url = "/api/v1/market/listings/petstore/subscribe"
    for body in ({"team": "x"}, {"config": "nope"}, {"config": {"api_key": ["a"]}},
                 {"team": acme.team.pk, "instance": acme.instance.pk, "config": {"api_key": "k" * 5000}}):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    assert not McpServer.objects.filter(instance=acme.instance).exists()


def test_my_subscriptions_page_offers_the_upgrade_and_performs_it(acme, staff):
    first = submit(acme).json()
    signed_in(staff).post(f"/api/v1/market/submissions/{first['id']}/approve")
    body = subscribe(acme, "cat-notes", config={}).json()
    second = submit(acme, listing="cat-notes", version="1.1.0", changelog="Adds a second tool.",
                    tool_yaml=NEW_TOOL_YAML + NEW_TOOL_YAML.split("tools:\n", 1)[1].replace("catFact", "catFactToo"))
    signed_in(staff).post(f"/api/v1/market/submissions/{second.json()['id']}/approve")
    client = signed_in(acme.user)
    listed = client.get("/market/subscriptions/").content.decode()
    assert "1.1.0 available" in listed
    page = client.get(f"/market/subscriptions/{body['subscription']['id']}/").content.decode()
    assert "Upgrade to 1.1.0" in page and "Adds a second tool." in page
    done = client.post(f"/market/subscriptions/{body['subscription']['id']}/upgrade/", follow=True)
    assert "Upgraded to version 1.1.0" in done.content.decode()
    server = McpServer.objects.get(pk=body["subscription"]["mcp_server"])
    assert sorted(server.tools.values_list("name", flat=True)) == ["catFact", "catFactToo"]


def test_subscription_and_router_pages_offer_the_stdio_bridge_block(acme):
    import html

    body = subscribe(acme).json()
    client = signed_in(acme.user)
    page = html.unescape(client.get(f"/market/subscriptions/{body['subscription']['id']}/").content.decode())
    block = json.loads(page.split('<pre id="cfg-stdio">', 1)[1].split("</pre>", 1)[0])
    assert block == {"mcpServers": {"petstore": {"command": "mcp-gateway", "args": [
        "connect", "http://testserver/mcp-servers/petstore"], "env": {"MCP_GATEWAY_KEY": "<YOUR_API_KEY>"}}}}
    assert "pip install mcp-gateway-console" in page

    issued = html.unescape(client.post("/market/router/key/").content.decode())
    block = json.loads(issued.split('<pre id="router-cfg-stdio">', 1)[1].split("</pre>", 1)[0])
    entry = block["mcpServers"]["market"]
    assert entry["command"] == "mcp-gateway" and entry["args"] == ["router"]
    assert entry["env"]["MCP_GATEWAY_URL"] == "http://testserver"
    assert entry["env"]["MCP_GATEWAY_ROUTER_KEY"].startswith("mck_")  # shown once, filled in
    later = html.unescape(client.get("/market/router/").content.decode())
    assert '"MCP_GATEWAY_ROUTER_KEY": "<YOUR_API_KEY>"' in later
