"""REST API: validation errors as field maps, team scoping, tokens, YAML errors with line numbers."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from console import services
from console.models import McpServer, SecurityScheme, Tool

pytestmark = pytest.mark.django_db


def make_user(name: str):
    user = get_user_model().objects.create_user(name, password="pw-123456")
    team = services.team_create(name=f"Team {name}", owner=user)
    return user, team


def client_for(user) -> APIClient:
    _, secret = services.api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def alice():
    user, team = make_user("alice")
    return user, team, client_for(user)


@pytest.fixture
def bob():
    user, team = make_user("bob")
    return user, team, client_for(user)


def test_token_required_and_digest_only():
    assert APIClient().get("/api/v1/instances/").status_code in (401, 403)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer mgc_nope")
    assert bad.get("/api/v1/instances/").status_code == 401
    user, _ = make_user("carol")
    token, secret = services.api_token_create(user=user)
    assert secret.startswith("mgc_") and secret not in token.digest


def test_create_flow_and_field_errors(alice):
    _, _, api = alice
    created = api.post("/api/v1/instances/", {"name": "prod-eu", "region": "eu-west"}, format="json")
    assert created.status_code == 201, created.content
    instance = created.json()["id"]
    dupe = api.post("/api/v1/instances/", {"name": "prod-eu"}, format="json")
    assert dupe.status_code == 400 and "name" in dupe.json()["errors"]
    bad_name = api.post("/api/v1/instances/", {"name": "Bad Name!"}, format="json")
    assert bad_name.status_code == 400 and "name" in bad_name.json()["errors"]

    svc = api.post("/api/v1/services/", {"instance": instance, "name": "orders", "base_url": "http://127.0.0.1:9/api"},
                   format="json")
    assert svc.status_code == 201, svc.content
    bad_url = api.post("/api/v1/services/", {"instance": instance, "name": "x", "base_url": "not a url"}, format="json")
    assert bad_url.status_code == 400 and "base_url" in bad_url.json()["errors"]

    server = api.post("/api/v1/mcp-servers/", {"instance": instance, "name": "orders", "domains": ["api.example.com"],
                                               "backend_service": svc.json()["id"]}, format="json")
    assert server.status_code == 201, server.content
    body = server.json()
    assert body["server_type"] == "http_to_mcp" and body["domains"] == ["api.example.com"]
    assert body["endpoints"]["sse"] == "/mcp-servers/orders/sse"

    taken = api.post("/api/v1/mcp-servers/", {"instance": instance, "name": "other", "domains": ["API.example.com"]},
                     format="json")
    assert taken.status_code == 400
    assert "already used" in taken.json()["errors"]["domains"][0]
    same_name = api.post("/api/v1/mcp-servers/", {"instance": instance, "name": "orders"}, format="json")
    assert same_name.status_code == 400 and "name" in same_name.json()["errors"]
    proxy = api.post("/api/v1/mcp-servers/", {"instance": instance, "name": "proxy", "server_type": "direct_proxy",
                                              "backend_path": "no-slash"}, format="json")
    assert proxy.status_code == 400
    assert {"backend_service", "backend_transport", "backend_path"} <= set(proxy.json()["errors"])
    bad_domain = api.post("/api/v1/mcp-servers/", {"instance": instance, "name": "d", "domains": ["http://x.com/a"]},
                          format="json")
    assert bad_domain.status_code == 400 and "domains" in bad_domain.json()["errors"]


def test_tools_yaml_errors_name_field_and_line(alice):
    user, team, api = alice
    instance = services.instance_create(actor=user, team=team, name="i1")
    server = services.mcp_server_create(actor=user, instance=instance, name="s1")
    doc = "tools:\n  - name: ok_tool\n    description: fine\n    requestTemplate:\n      url: http://x/{id}\n"
    response = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", doc, content_type="application/yaml")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(e["field"].startswith("tools[0].requestTemplate.url") and e["line"] == 5 for e in errors), errors
    assert Tool.objects.count() == 0

    good = ("server:\n  name: s1\n  securitySchemes:\n    - {id: K, type: apiKey, in: header, name: X-Key, "
            "defaultCredential: s3cret-value}\n  defaultUpstreamSecurity: {id: K}\n"
            "tools:\n  - name: ok_tool\n    description: fine\n    requestTemplate: {url: 'http://x/a', method: GET}\n")
    response = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", good, content_type="application/yaml")
    assert response.status_code == 200, response.content
    assert response.json() == {"created": ["ok_tool"], "updated": [], "unchanged": []}
    again = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", good, content_type="application/yaml")
    assert again.json() == {"created": [], "updated": [], "unchanged": ["ok_tool"]}
    # The backend credential is encrypted at rest and masked on export.
    with connection.cursor() as cursor:
        cursor.execute("SELECT default_credential FROM console_securityscheme")
        stored = cursor.fetchone()[0]
    assert "s3cret-value" not in stored and stored.startswith("fernet:")
    assert SecurityScheme.objects.get().default_credential == "s3cret-value"
    exported = api.get(f"/api/v1/mcp-servers/{server.pk}/tools/yaml")
    assert exported.status_code == 200 and "s3cret-value" not in exported.content.decode()
    assert "ok_tool" in exported.content.decode()


def test_team_scoping(alice, bob):
    a_user, a_team, a_api = alice
    _, _, b_api = bob
    instance = services.instance_create(actor=a_user, team=a_team, name="alice-inst")
    service = services.service_create(actor=a_user, instance=instance, name="svc", base_url="http://127.0.0.1:1")
    server = services.mcp_server_create(actor=a_user, instance=instance, name="alice-srv")
    services.tools_apply_yaml(actor=a_user, mcp_server=server, text=(
        "tools:\n  - name: t1\n    description: d\n    requestTemplate: {url: '', method: GET}\n"
        "    responseTemplate: {body: hi}\n"))
    tool = Tool.objects.get()
    assert b_api.get("/api/v1/instances/").json()["results"] == []
    assert b_api.get("/api/v1/mcp-servers/").json()["results"] == []
    for url in (f"/api/v1/instances/{instance.pk}/", f"/api/v1/services/{service.pk}/",
                f"/api/v1/mcp-servers/{server.pk}/", f"/api/v1/mcp-servers/{server.pk}/tools/",
                f"/api/v1/tools/{tool.pk}/"):
        assert b_api.get(url).status_code == 404, url
        assert b_api.delete(url).status_code in (404, 405), url
    assert b_api.patch(f"/api/v1/mcp-servers/{server.pk}/", {"description": "x"}, format="json").status_code == 404
    assert b_api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", "tools: []",
                     content_type="application/yaml").status_code == 404
    assert b_api.post("/api/v1/mcp-servers/", {"instance": instance.pk, "name": "intruder"},
                      format="json").status_code == 404
    assert McpServer.objects.filter(name="intruder").count() == 0
    assert a_api.get(f"/api/v1/mcp-servers/{server.pk}/").status_code == 200


def test_schema_is_served(alice):
    _, _, api = alice
    response = api.get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/mcp-servers/{id}/tools/yaml" in response.content
