"""REST parity of the console's own actions: backend authentication, one tool's YAML, service reachability."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from console import services
from console.models import SecurityScheme, Tool

pytestmark = pytest.mark.django_db

TOOL = """\
tools:
  - name: getPet
    description: Fetch one pet.
    args:
      - {name: petId, type: integer, required: true, position: path}
    requestTemplate:
      url: "{{.config.baseUrl}}/pets/{petId}"
      method: GET
"""


def setup_team(name: str):
    user = get_user_model().objects.create_user(name, password="pw-123456")
    team = services.team_create(name=f"Team {name}", owner=user)
    instance = services.instance_create(actor=user, team=team, name=f"{name}-inst")
    service = services.service_create(actor=user, instance=instance, name="api", base_url="http://127.0.0.1:9")
    server = services.mcp_server_create(actor=user, instance=instance, name="pets", backend_service=service,
                                        config={"baseUrl": service.base_url})
    services.tools_apply_yaml(actor=user, mcp_server=server, text=TOOL)
    _, secret = services.api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return {"user": user, "server": server, "service": service, "tool": server.tools.get(), "api": client}


@pytest.fixture
def alice():
    return setup_team("alice")


@pytest.fixture
def bob():
    return setup_team("bob")


def test_backend_auth_api(alice):
    api, server = alice["api"], alice["server"]
    url = f"/api/v1/mcp-servers/{server.pk}/backend-auth"
    assert api.get(url).json()["kind"] == "none"
    missing = api.put(url, {"kind": "api_key", "location": "query", "credential": "k"}, format="json")
    assert missing.status_code == 400 and "param_name" in missing.json()["errors"]
    bad_kind = api.put(url, {"kind": "digest"}, format="json")
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["errors"]
    saved = api.put(url, {"kind": "api_key", "location": "query", "param_name": "api_key",
                          "credential": "abcdef-123456"}, format="json")
    assert saved.status_code == 200, saved.content
    body = saved.json()
    assert body == {"kind": "api_key", "scheme_id": "BackendAuth", "location": "query", "param_name": "api_key",
                    "credential": "••••••••", "has_credential": True}  # 13 characters: nothing of it shows
    assert "abcdef-123456" not in api.get(url).content.decode()
    scheme = SecurityScheme.objects.get(mcp_server=server, scheme_id="BackendAuth")
    assert scheme.default_credential == "abcdef-123456"
    kept = api.put(url, {"kind": "basic", "credential": ""}, format="json")
    assert kept.status_code == 400 and "user:password" in kept.json()["errors"]["credential"][0]
    basic = api.put(url, {"kind": "basic", "credential": "u:p"}, format="json")
    assert basic.json()["kind"] == "basic"
    # The exported tool YAML carries the scheme, masked.
    exported = api.get(f"/api/v1/mcp-servers/{server.pk}/tools/yaml").content.decode()
    assert "BackendAuth" in exported and "u:p" not in exported


def test_tool_yaml_api(alice):
    api, tool = alice["api"], alice["tool"]
    url = f"/api/v1/tools/{tool.pk}/yaml"
    got = api.get(url)
    assert got.status_code == 200 and got["Content-Type"].startswith("application/yaml")
    assert "name: getPet" in got.content.decode()
    changed = got.content.decode().replace("Fetch one pet.", "Fetch one pet by its id.")
    saved = api.put(url, changed, content_type="application/yaml")
    assert saved.status_code == 200, saved.content
    assert saved.json()["description"] == "Fetch one pet by its id."
    bad = api.put(url, "tools:\n  - name: getPet\n    description: x\n    args: 3\n", content_type="application/yaml")
    assert bad.status_code == 400
    assert {"line": 4, "field": "tools[0].args"}.items() <= next(
        e for e in bad.json()["errors"] if e["field"] == "tools[0].args").items()
    renamed = api.put(url, {"yaml": TOOL.replace("getPet", "fetchPet")}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "fetchPet"
    assert list(Tool.objects.filter(mcp_server=alice["server"]).values_list("name", flat=True)) == ["fetchPet"]


def test_reachability_api(alice):
    api, service = alice["api"], alice["service"]
    response = api.get(f"/api/v1/services/{service.pk}/reachability?fresh=1")
    assert response.status_code == 200
    assert response.json()["reachable"] is False and response.json()["message"]


def test_new_endpoints_are_team_scoped(alice, bob):
    api = alice["api"]
    server, tool, service = bob["server"], bob["tool"], bob["service"]
    assert api.get(f"/api/v1/mcp-servers/{server.pk}/backend-auth").status_code == 404
    assert api.put(f"/api/v1/mcp-servers/{server.pk}/backend-auth", {"kind": "bearer", "credential": "t"},
                   format="json").status_code == 404
    assert api.get(f"/api/v1/tools/{tool.pk}/yaml").status_code == 404
    assert api.put(f"/api/v1/tools/{tool.pk}/yaml", TOOL, content_type="application/yaml").status_code == 404
    assert api.get(f"/api/v1/services/{service.pk}/reachability").status_code == 404
    assert APIClient().get(f"/api/v1/services/{service.pk}/reachability").status_code in (401, 403)
    server.refresh_from_db()
    assert server.default_upstream_security == {}


def test_new_endpoints_in_schema(alice):
    schema = alice["api"].get("/api/v1/schema/?format=json").json()
    for path in ("/api/v1/mcp-servers/{id}/backend-auth", "/api/v1/tools/{id}/yaml",
                 "/api/v1/services/{id}/reachability"):
        assert path in schema["paths"], path


@pytest.mark.live
def test_reachability_of_a_backend_the_server_itself_serves(api):
    """The demo API is served by the same process that probes it; the probe must not wait on itself."""
    service = next(s for s in api.get("/services/").json()["results"] if s["name"] == "demo-api")
    response = api.get(f"/services/{service['id']}/reachability", params={"fresh": "1"})
    assert response.status_code == 200
    assert response.json()["reachable"] is True, response.json()
    assert response.json()["latency_ms"] < 2000
