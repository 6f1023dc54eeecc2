"""Console pages: sign-in, team scoping (also by URL guessing), validation errors at the field, the main flows."""
from __future__ import annotations

import html
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from console import services
from console.models import BackendService, Instance, McpServer, SecurityScheme, Team, Tool

pytestmark = pytest.mark.django_db

TOOLS_YAML = """\
tools:
  - name: getPet
    description: Fetch one pet by id.
    args:
      - {name: petId, description: Pet id, type: integer, required: true, position: path}
    requestTemplate:
      url: "{{.config.baseUrl}}/pets/{petId}"
      method: GET
  - name: listPets
    description: List pets.
    requestTemplate:
      url: "{{.config.baseUrl}}/pets"
      method: GET
"""


def make_user(name: str, team_name: str | None = None):
    user = get_user_model().objects.create_user(name, password="pw-123456")
    team = services.team_create(name=team_name or f"Team {name}", owner=user)
    return user, team


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def htmx(client: Client, method: str, url: str, data=None, target: str = "drawer"):
    headers = {"HX-Request": "true", "HX-Target": target}
    return getattr(client, method)(url, data or {}, headers=headers)


@pytest.fixture
def alice():
    user, team = make_user("alice")
    instance = services.instance_create(actor=user, team=team, name="alice-prod", region="eu-west")
    service = services.service_create(actor=user, instance=instance, name="orders", base_url="http://127.0.0.1:9/api")
    server = services.mcp_server_create(actor=user, instance=instance, name="orders", backend_service=service,
                                        domains=["orders.example.com"], config={"baseUrl": service.base_url})
    services.tools_apply_yaml(actor=user, mcp_server=server, text=TOOLS_YAML)
    return {"user": user, "team": team, "instance": instance, "service": service, "server": server,
            "client": signed_in(user)}


@pytest.fixture
def bob():
    user, team = make_user("bob")
    instance = services.instance_create(actor=user, team=team, name="bob-prod", region="us-east")
    service = services.service_create(actor=user, instance=instance, name="billing", base_url="http://127.0.0.1:9/b")
    server = services.mcp_server_create(actor=user, instance=instance, name="billing", backend_service=service)
    services.tools_apply_yaml(actor=user, mcp_server=server, text=TOOLS_YAML)
    return {"user": user, "team": team, "instance": instance, "service": service, "server": server,
            "client": signed_in(user)}


def text_of(response) -> str:
    return html.unescape(response.content.decode())


# ---------------------------------------------------------------- sign in and out

def test_pages_need_sign_in(alice):
    anonymous = Client()
    for url in (reverse("instance_list"), reverse("instance", args=[alice["instance"].pk]),
                reverse("mcp_server", args=[alice["server"].pk]), reverse("tool_add", args=[alice["server"].pk])):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_sign_in_and_out(alice):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200 and 'name="username"' in text_of(page) and 'for="id_password"' in text_of(page)
    bad = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert bad.status_code == 200 and "correct username and password" in text_of(bad)
    good = client.post("/login/", {"username": "alice", "password": "pw-123456"})
    assert good.status_code == 302
    assert client.get("/", follow=True).redirect_chain[-1][0] == reverse("instance_list")
    out = client.post("/logout/")
    assert out.status_code == 302 and out["Location"].startswith("/login")
    assert client.get(reverse("instance_list")).status_code == 302


# ---------------------------------------------------------------- team scoping

def test_lists_show_only_own_team(alice, bob):
    page = text_of(alice["client"].get(reverse("instance_list")))
    assert "alice-prod" in page and "bob-prod" not in page
    page = text_of(bob["client"].get(reverse("instance_list")))
    assert "bob-prod" in page and "alice-prod" not in page


def test_url_guessing_finds_nothing(alice, bob):
    """Every page and action on another team's object answers 404 and changes nothing."""
    client = alice["client"]
    inst, service, server = bob["instance"], bob["service"], bob["server"]
    tool = server.tools.first()
    gets = [
        reverse("instance", args=[inst.pk]), reverse("instance_edit", args=[inst.pk]),
        reverse("instance_delete", args=[inst.pk]), reverse("service_list", args=[inst.pk]),
        reverse("service_add", args=[inst.pk]), reverse("service_edit", args=[service.pk]),
        reverse("service_delete", args=[service.pk]), reverse("service_reachability", args=[service.pk]),
        reverse("mcp_server_list", args=[inst.pk]), reverse("mcp_server_add", args=[inst.pk]),
        reverse("mcp_server", args=[server.pk]), reverse("mcp_server_edit", args=[server.pk]),
        reverse("mcp_server_delete", args=[server.pk]), reverse("mcp_server_debug", args=[server.pk]),
        reverse("mcp_server_backend_auth", args=[server.pk]), reverse("tool_list", args=[server.pk]),
        reverse("tool_add", args=[server.pk]), reverse("tool", args=[tool.pk]), reverse("tool_edit", args=[tool.pk]),
        reverse("tool_delete", args=[tool.pk]), reverse("consumer_list", args=[inst.pk]),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = {
        reverse("instance_edit", args=[inst.pk]): {"name": "stolen", "region": "x"},
        reverse("instance_delete", args=[inst.pk]): {},
        reverse("service_add", args=[inst.pk]): {"name": "x", "protocol": "http", "base_url": "http://x.example"},
        reverse("service_edit", args=[service.pk]): {"name": "stolen", "protocol": "http", "base_url": "http://x.io"},
        reverse("service_delete", args=[service.pk]): {},
        reverse("mcp_server_add", args=[inst.pk]): {"name": "x", "server_type": "http_to_mcp"},
        reverse("mcp_server_edit", args=[server.pk]): {"name": "stolen"},
        reverse("mcp_server_toggle", args=[server.pk]): {"enabled": "0"},
        reverse("mcp_server_delete", args=[server.pk]): {},
        reverse("mcp_server_backend_auth", args=[server.pk]): {"kind": "bearer", "credential": "t"},
        reverse("tool_add", args=[server.pk]): {"yaml": TOOLS_YAML},
        reverse("tool_edit", args=[tool.pk]): {"yaml": TOOLS_YAML},
        reverse("tool_toggle", args=[tool.pk]): {"enabled": "0"},
        reverse("tool_delete", args=[tool.pk]): {},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 404, url
    inst.refresh_from_db()
    server.refresh_from_db()
    tool.refresh_from_db()
    assert inst.name == "bob-prod" and server.enabled and server.name == "billing" and tool.enabled
    assert BackendService.objects.filter(instance=inst).count() == 1
    assert not SecurityScheme.objects.filter(mcp_server=server).exists()


def test_team_switcher(alice):
    user = alice["user"]
    other = services.team_create(name="Other", owner=user)
    services.instance_create(actor=user, team=other, name="other-inst")
    client = alice["client"]
    page = text_of(client.get(reverse("instance_list")))
    assert 'id="team-select"' in page and "Other" in page
    current = "alice-prod" in page
    target = other if current else alice["team"]
    client.post(reverse("team_switch"), {"team": target.pk})
    page = text_of(client.get(reverse("instance_list")))
    if target == other:
        assert "other-inst" in page and "alice-prod" not in page
    else:
        assert "alice-prod" in page and "other-inst" not in page
    # A team the user is not in cannot be chosen.
    stranger = Team.objects.create(name="Stranger", slug="stranger")
    response = client.post(reverse("team_switch"), {"team": stranger.pk}, follow=True)
    assert "not a member" in text_of(response)
    # Opening an object of the other team switches to it.
    client.get(reverse("instance", args=[alice["instance"].pk]))
    assert "alice-prod" in text_of(client.get(reverse("instance_list")))


def test_region_selector(alice):
    user, team, client = alice["user"], alice["team"], alice["client"]
    services.instance_create(actor=user, team=team, name="alice-us", region="us-east")
    page = text_of(client.get(reverse("instance_list")))
    assert "alice-prod" in page and "alice-us" in page and '<option value="us-east"' in page
    client.post(reverse("region_switch"), {"region": "us-east", "next": "/console/instances/"})
    page = text_of(client.get(reverse("instance_list")))
    assert "alice-us" in page and "alice-prod" not in page
    client.post(reverse("region_switch"), {"region": ""})
    assert "alice-prod" in text_of(client.get(reverse("instance_list")))


# ---------------------------------------------------------------- instances

def test_instance_create_edit_delete(alice):
    client = alice["client"]
    panel = htmx(client, "get", reverse("instance_add"))
    assert panel.status_code == 200 and 'role="dialog"' in text_of(panel) and "<html" not in text_of(panel)
    created = htmx(client, "post", reverse("instance_add"), {"name": "staging", "region": "eu-west"})
    assert created.status_code == 204
    instance = Instance.objects.get(name="staging")
    assert created["HX-Redirect"] == reverse("instance", args=[instance.pk])
    overview = text_of(client.get(reverse("instance", args=[instance.pk])))
    assert "MCP Management" in overview and "/instances/staging/mcp-servers/" in overview

    dupe = htmx(client, "post", reverse("instance_add"), {"name": "staging", "region": "eu-west"})
    assert dupe.status_code == 400
    assert re.search(r'id="field-name".*?already exists', text_of(dupe), re.S)
    bad = client.post(reverse("instance_add"), {"name": "Bad Name!", "region": "x"})
    assert bad.status_code == 400 and 'class="field has-error" id="field-name"' in text_of(bad)

    edited = client.post(reverse("instance_edit", args=[instance.pk]),
                         {"name": "staging-2", "region": "eu-central", "description": "Second"})
    assert edited.status_code == 302
    instance.refresh_from_db()
    assert (instance.name, instance.region) == ("staging-2", "eu-central")

    confirm = client.get(reverse("instance_delete", args=[instance.pk]))
    assert confirm.status_code == 200 and "cannot be undone" in text_of(confirm)
    assert Instance.objects.filter(pk=instance.pk).exists()  # GET never deletes
    client.post(reverse("instance_delete", args=[instance.pk]))
    assert not Instance.objects.filter(pk=instance.pk).exists()


def test_viewer_role_gets_a_clear_message(alice):
    viewer = get_user_model().objects.create_user("victor", password="pw-123456")
    services.team_member_add(team=alice["team"], user=viewer, role="viewer")
    client = signed_in(viewer)
    page = client.get(reverse("instance", args=[alice["instance"].pk]))
    assert page.status_code == 200
    response = client.post(reverse("instance_edit", args=[alice["instance"].pk]), {"name": "x", "region": "y"})
    # A role that may not do something gets the 403 page, which says what it needs.
    assert response.status_code == 403
    assert "needs the admin role" in text_of(response) and "your role is viewer" in text_of(response)
    alice["instance"].refresh_from_db()
    assert alice["instance"].name == "alice-prod"


# ---------------------------------------------------------------- services

def test_service_flow_and_errors(alice):
    client, inst = alice["client"], alice["instance"]
    page = text_of(client.get(reverse("service_list", args=[inst.pk])))
    assert "orders" in page and "http://127.0.0.1:9/api" in page and "Checking" in page
    created = client.post(reverse("service_add", args=[inst.pk]),
                          {"name": "users", "protocol": "http", "base_url": "https://users.example.com/v1"})
    assert created.status_code == 302
    bad = client.post(reverse("service_add", args=[inst.pk]), {"name": "users", "protocol": "http",
                                                              "base_url": "not a url"})
    assert bad.status_code == 400
    html = text_of(bad)
    assert re.search(r'id="field-base_url".*?valid URL', html, re.S) or "already exists" in html
    in_use = client.post(reverse("service_delete", args=[alice["service"].pk]))
    assert in_use.status_code == 400 and "Delete them first" in text_of(in_use)
    users = BackendService.objects.get(name="users")
    client.post(reverse("service_delete", args=[users.pk]))
    assert not BackendService.objects.filter(pk=users.pk).exists()


def test_reachability_badge(alice):
    response = alice["client"].get(reverse("service_reachability", args=[alice["service"].pk]) + "?fresh=1")
    assert response.status_code == 200
    assert "Unreachable" in text_of(response) and "Recheck" in text_of(response)


def test_service_created_in_place_from_the_server_panel(alice):
    client, inst = alice["client"], alice["instance"]
    response = htmx(client, "post", reverse("service_add", args=[inst.pk]), {
        "inline": "1", "new_service_name": "inventory", "new_service_url": "https://inv.example.com",
        "new_service_protocol": "http"}, target="backend-picker")
    assert response.status_code == 200
    service = BackendService.objects.get(name="inventory")
    assert f'<option value="{service.pk}" selected>' in text_of(response)
    again = htmx(client, "post", reverse("service_add", args=[inst.pk]), {
        "inline": "1", "new_service_name": "inventory", "new_service_url": "https://inv.example.com"},
        target="backend-picker")
    assert "already exists" in text_of(again)


# ---------------------------------------------------------------- MCP servers

def test_mcp_management_grid_search_and_filter(alice):
    client, inst = alice["client"], alice["instance"]
    proxy_backend = services.service_create(actor=alice["user"], instance=inst, name="upstream-mcp",
                                            base_url="http://127.0.0.1:9", protocol="mcp")
    services.mcp_server_create(actor=alice["user"], instance=inst, name="proxied", server_type="direct_proxy",
                               backend_service=proxy_backend, backend_transport="sse", backend_path="/test/sse")
    page = text_of(client.get(reverse("mcp_server_list", args=[inst.pk])))
    assert "HTTP to MCP" in page and "Direct Proxy" in page and "2 tools" in page
    assert "/instances/alice-prod/mcp-servers/orders" in page or "orders.example.com" in page
    only_proxy = text_of(client.get(reverse("mcp_server_list", args=[inst.pk]), {"type": "direct_proxy"}))
    assert "proxied" in only_proxy and ">orders<" not in only_proxy
    search = htmx(client, "get", reverse("mcp_server_list", args=[inst.pk]) + "?q=orde", target="server-grid")
    assert "<html" not in text_of(search) and ">orders<" in text_of(search) and "proxied" not in text_of(search)


def test_create_mcp_server_errors_at_fields(alice):
    client, inst, service = alice["client"], alice["instance"], alice["service"]
    url = reverse("mcp_server_add", args=[inst.pk])
    panel = text_of(htmx(client, "get", url))
    assert "Save and Publish" in panel and "/test/sse" in panel and "backend-picker" in panel

    dupe = htmx(client, "post", url, {"name": "orders", "server_type": "http_to_mcp", "backend_service": service.pk,
                                      "domains": "orders.example.com\nnew.example.com"})
    assert dupe.status_code == 400
    html = text_of(dupe)
    assert re.search(r'id="field-name".*?already exists in this instance', html, re.S)
    assert re.search(r'id="field-domains".*?orders\.example\.com is already used', html, re.S)

    mcp_backend = services.service_create(actor=alice["user"], instance=inst, name="mcp-up",
                                          base_url="http://127.0.0.1:9", protocol="mcp")
    bad_path = htmx(client, "post", url, {"name": "px", "server_type": "direct_proxy",
                                          "backend_service": mcp_backend.pk, "backend_transport": "sse",
                                          "backend_path": "test sse"})
    assert bad_path.status_code == 400
    assert re.search(r'id="field-backend_path".*?must start with', text_of(bad_path), re.S)
    wrong_backend = htmx(client, "post", url, {"name": "px", "server_type": "direct_proxy",
                                               "backend_service": service.pk, "backend_transport": "sse",
                                               "backend_path": "/sse"})
    assert "protocol is MCP" in text_of(wrong_backend)
    bad_domain = htmx(client, "post", url, {"name": "px2", "server_type": "http_to_mcp", "domains": "http://x.com/a"})
    assert re.search(r'id="field-domains".*?not a domain name', text_of(bad_domain), re.S)

    ok = htmx(client, "post", url, {"name": "users", "description": "Users API", "server_type": "http_to_mcp",
                                    "backend_service": service.pk, "domains": "users.example.com, u2.example.com",
                                    "publish": "1"})
    assert ok.status_code == 204
    server = McpServer.objects.get(name="users")
    assert ok["HX-Redirect"] == reverse("tool_add", args=[server.pk])
    assert server.enabled and server.config == {"baseUrl": service.base_url}
    assert sorted(d.host for d in server.domains.all()) == ["u2.example.com", "users.example.com"]
    proxy = htmx(client, "post", url, {"name": "px", "server_type": "direct_proxy", "backend_service": mcp_backend.pk,
                                       "backend_transport": "streamable_http", "backend_path": "/mcp", "publish": "0"})
    assert proxy.status_code == 204
    assert not McpServer.objects.get(name="px").enabled


def test_server_page_endpoints_and_client_configs(alice):
    client, server = alice["client"], alice["server"]
    page = text_of(client.get(reverse("mcp_server", args=[server.pk])))
    assert "http://orders.example.com/mcp-servers/orders" in page
    assert "http://orders.example.com/mcp-servers/orders/sse" in page
    assert "http://testserver/instances/alice-prod/mcp-servers/orders/sse" in page
    assert "mcp-remote" in page and "Claude Desktop" in page and "Cursor" in page and "VS Code" in page
    assert "npx @modelcontextprotocol/inspector --cli" in page
    assert page.count("data-copy=") >= 6
    # The local stdio bridge for clients that only launch stdio servers, with how to install it.
    assert "Local stdio bridge" in page and "pip install mcp-gateway-console" in page
    block = page.split('<pre id="cfg-stdio">', 1)[1].split("</pre>", 1)[0]
    assert json.loads(block) == {"mcpServers": {"orders": {
        "command": "mcp-gateway", "args": ["connect", "http://orders.example.com/mcp-servers/orders"]}}}


def test_stdio_bridge_block_carries_where_the_key_goes(alice):
    from console import services
    from console.views.endpoints import bridge_config, primary_endpoint

    client, server = alice["client"], alice["server"]
    assert bridge_config(server, primary_endpoint(server, "http://testserver")) == {"mcpServers": {"orders": {
        "command": "mcp-gateway", "args": ["connect", "http://orders.example.com/mcp-servers/orders"]}}}
    for source, name, extra in (("bearer", "", []), ("header", "X-Api-Key", ["--header", "X-Api-Key"]),
                                ("query", "key", ["--query", "key"])):
        server = services.mcp_server_set_consumer_auth(actor=None, mcp_server=server, enabled=True, method="api_key",
                                                       source=source, name=name)
        entry = bridge_config(server, primary_endpoint(server, "http://testserver"))["mcpServers"]["orders"]
        # The key stays out of the URL and the arguments, which process lists and logs show.
        assert entry == {"command": "mcp-gateway", "args": ["connect", "http://orders.example.com/mcp-servers/orders",
                                                            *extra], "env": {"MCP_GATEWAY_KEY": "<YOUR_API_KEY>"}}
    page = text_of(client.get(reverse("mcp_server", args=[server.pk])))
    assert '"MCP_GATEWAY_KEY": "<YOUR_API_KEY>"' in page


def test_server_edit_toggle_delete(alice):
    client, server = alice["client"], alice["server"]
    edit = client.post(reverse("mcp_server_edit", args=[server.pk]), {
        "name": "orders", "description": "Orders v2", "domains": "", "backend_service": alice["service"].pk})
    assert edit.status_code == 302
    server.refresh_from_db()
    assert server.description == "Orders v2" and not server.domains.exists()
    client.post(reverse("mcp_server_toggle", args=[server.pk]), {"enabled": "0"})
    server.refresh_from_db()
    assert not server.enabled
    page = text_of(client.get(reverse("mcp_server", args=[server.pk])))
    assert "This server is disabled" in page
    client.post(reverse("mcp_server_toggle", args=[server.pk]), {"enabled": "1"})
    server.refresh_from_db()
    assert server.enabled
    confirm = htmx(client, "get", reverse("mcp_server_delete", args=[server.pk]))
    assert 'role="alertdialog"' in text_of(confirm)
    deleted = htmx(client, "post", reverse("mcp_server_delete", args=[server.pk]))
    assert deleted.status_code == 204 and not McpServer.objects.filter(pk=server.pk).exists()


# ---------------------------------------------------------------- tools

def test_tools_tab_search_toggle_delete(alice):
    client, server = alice["client"], alice["server"]
    page = text_of(client.get(reverse("tool_list", args=[server.pk])))
    assert "getPet" in page and "listPets" in page and "{{.config.baseUrl}}/pets/{petId}" in page
    search = htmx(client, "get", reverse("tool_list", args=[server.pk]) + "?q=getp", target="tool-rows")
    assert "getPet" in text_of(search) and "listPets" not in text_of(search)
    tool = Tool.objects.get(mcp_server=server, name="getPet")
    row = htmx(client, "post", reverse("tool_toggle", args=[tool.pk]), {"enabled": "0"}, target=f"tool-{tool.pk}")
    assert row.status_code == 200 and text_of(row).lstrip().startswith("<tr") and "Off" in text_of(row)
    tool.refresh_from_db()
    assert not tool.enabled
    detail = text_of(htmx(client, "get", reverse("tool", args=[tool.pk])))
    assert '"required": [' in detail and '"petId"' in detail and "integer" in detail
    client.post(reverse("tool_delete", args=[tool.pk]))
    assert not Tool.objects.filter(pk=tool.pk).exists()


def test_add_tool_yaml_errors_name_line_and_field(alice):
    client, server = alice["client"], alice["server"]
    url = reverse("tool_add", args=[server.pk])
    page = text_of(client.get(url))
    assert "YAML Example" in page and "Backend authentication" in page and "Swagger" in page
    bad = client.post(url, {"yaml": (
        "tools:\n  - name: x y\n    description: d\n    requestTemplate:\n      url: ftp\n")})
    assert bad.status_code == 400
    html = text_of(bad)
    assert re.search(r"Line \d+ · tools\[0\]\.name", html)
    assert 'data-error-lines="' in html and "x y" in html  # the text stays in the editor
    syntax = client.post(url, {"yaml": "tools:\n  - name: [unclosed\n"})
    assert syntax.status_code == 400 and "YAML syntax" in text_of(syntax)


def test_yaml_example_fills_and_saves(alice):
    client, server = alice["client"], alice["server"]
    url = reverse("tool_add", args=[server.pk])
    example = client.post(url, {"action": "example", "yaml": ""})
    html = text_of(example)
    assert example.status_code == 200 and "getIndex" in html and "{{.config.baseUrl}}/" in html
    from console.views.yaml_example import yaml_example
    saved = client.post(url, {"yaml": yaml_example(server), "action": "save"})
    assert saved.status_code == 302, text_of(saved)
    assert set(server.tools.values_list("name", flat=True)) >= {"getIndex", "getItem", "createItem"}
    message = text_of(client.get(saved["Location"]))
    assert "3 created" in message and "live on the endpoint" in message


def test_demo_api_example_parses(alice):
    from console.toolyaml import parse_tool_yaml
    from console.views.yaml_example import yaml_example
    server = alice["server"]
    server.config = {"baseUrl": "http://127.0.0.1:8000/demo-api"}
    doc = parse_tool_yaml(yaml_example(server))
    assert [t.name for t in doc.tools] == ["listPets", "getPet"]


def test_edit_one_tool_yaml(alice):
    client, server = alice["client"], alice["server"]
    tool = Tool.objects.get(mcp_server=server, name="listPets")
    page = text_of(client.get(reverse("tool_edit", args=[tool.pk])))
    assert "name: listPets" in page
    renamed = client.post(reverse("tool_edit", args=[tool.pk]), {"yaml": (
        "tools:\n  - name: listAllPets\n    description: All pets.\n    requestTemplate:\n"
        "      url: \"{{.config.baseUrl}}/pets\"\n      method: GET\n")})
    assert renamed.status_code == 302
    assert set(server.tools.values_list("name", flat=True)) == {"getPet", "listAllPets"}
    two = client.post(reverse("tool_edit", args=[server.tools.get(name="listAllPets").pk]), {"yaml": TOOLS_YAML})
    assert two.status_code == 400 and "exactly one tool" in text_of(two)


def test_backend_auth_masked_and_kept(alice):
    client, server = alice["client"], alice["server"]
    url = reverse("mcp_server_backend_auth", args=[server.pk])
    missing = client.post(url, {"kind": "api_key", "location": "header", "param_name": "", "credential": "k"})
    assert missing.status_code == 400 and re.search(r'id="field-param_name".*?Give the header', text_of(missing), re.S)
    basic = client.post(url, {"kind": "basic", "credential": "no-colon"})
    assert basic.status_code == 400 and "user:password" in text_of(basic)
    ok = client.post(url, {"kind": "api_key", "location": "header", "param_name": "X-API-Key",
                           "credential": "super-secret-key-123"})
    assert ok.status_code == 302
    server.refresh_from_db()
    scheme = SecurityScheme.objects.get(mcp_server=server, scheme_id=server.default_upstream_security["id"])
    assert (scheme.type, scheme.location, scheme.param_name) == ("apiKey", "header", "X-API-Key")
    assert scheme.default_credential == "super-secret-key-123"
    for page_url in (url, reverse("tool_add", args=[server.pk]), reverse("mcp_server", args=[server.pk])):
        html = text_of(client.get(page_url))
        # 20 characters: the mask shows the last 4 and nothing of the start.
        assert "super-secret-key-123" not in html and "••••••••-123" in html and "su••" not in html, page_url
    # Blank keeps the stored credential; a new kind with it still works.
    client.post(url, {"kind": "bearer", "credential": ""})
    scheme.refresh_from_db()
    assert (scheme.type, scheme.scheme, scheme.default_credential) == ("http", "bearer", "super-secret-key-123")
    client.post(url, {"kind": "none"})
    server.refresh_from_db()
    assert server.default_upstream_security == {}


def test_debug_tab_points_at_the_live_endpoint(alice):
    page = text_of(alice["client"].get(reverse("mcp_server_debug", args=[alice["server"].pk])))
    assert 'data-endpoint="/instances/alice-prod/mcp-servers/orders"' in page and "debug.js" in page


def test_static_assets_are_vendored():
    from django.contrib.staticfiles import finders
    for path in ("vendor/htmx/htmx.min.js", "vendor/htmx/LICENSE", "console/console.css", "console/console.js",
                 "console/debug.js"):
        assert finders.find(path), path
    page = text_of(Client().get("/login/"))
    assert "//unpkg" not in page and "cdn" not in page.lower()


def test_rest_api_page_lists_operations_and_issues_a_token(alice):
    client = alice["client"]
    page = text_of(client.get(reverse("api_reference")))
    assert "/api/v1/mcp-servers/{id}/tools/yaml" in page and "/api/v1/mcp-servers/{id}/backend-auth" in page
    created = text_of(client.post(reverse("api_reference"), {"name": "ci"}))
    secret = re.search(r'<code id="new-token">(mgc_[^<]+)</code>', created).group(1)
    from rest_framework.test import APIClient
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    names = [item["name"] for item in api.get("/api/v1/instances/").json()["results"]]
    assert names == ["alice-prod"]
    assert secret not in text_of(client.get(reverse("api_reference")))


def test_yaml_editor_refuses_deep_and_huge_documents_with_a_form_error(alice):
    client, server = alice["client"], alice["server"]
    url = reverse("tool_add", args=[server.pk])
    deep = client.post(url, {"yaml": "tools: " + "[" * 50_000 + "]" * 50_000 + "\n"})
    assert deep.status_code == 400 and "Values are nested more than 64 levels deep." in text_of(deep)
    many = client.post(url, {"yaml": "tools: [" + ", ".join(["1"] * 200_001) + "]\n"})
    assert many.status_code == 400 and "The document has more than 200,000 values." in text_of(many)
