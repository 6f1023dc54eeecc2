"""The built-in demo pet store API, the idempotent demo seed and the create_api_token command."""
from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from console.demo_seed import seed_demo
from console.models import (
    ApiToken, AuditEvent, BackendService, DemoPet, Instance, McpServer, SecurityScheme, Team, TeamMembership, Tool,
)

pytestmark = pytest.mark.django_db

KEY = "test-demo-key"
BASE = "/demo-api"


@pytest.fixture(autouse=True)
def demo_key(settings):
    settings.DEMO_API_KEY = KEY
    settings.PUBLIC_BASE_URL = ""


@pytest.fixture
def api() -> Client:
    return Client(headers={"X-API-Key": KEY})


@pytest.fixture
def pets():
    return [DemoPet.objects.create(**fields) for fields in (
        {"name": "Rex", "tag": "dog", "status": "available"},
        {"name": "Tom", "tag": "cat", "status": "pending"},
        {"name": "Nemo", "tag": "fish", "status": "sold"},
        {"name": "Kiwi", "tag": "bird", "status": "available"},
        {"name": "Rexina", "tag": "dog", "status": "sold"},
    )]


# --- demo API ---------------------------------------------------------------------------------------------------


def test_key_required(pets):
    missing = Client().get(f"{BASE}/pets")
    assert missing.status_code == 401
    assert "X-API-Key" in missing.json()["detail"]
    wrong = Client(headers={"X-API-Key": "nope"}).get(f"{BASE}/pets/1")
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid API key."}
    assert Client().post(f"{BASE}/pets", {"name": "Sneaky"}, content_type="application/json").status_code == 401
    assert Client().delete(f"{BASE}/pets/{pets[0].id}").status_code == 401
    assert DemoPet.objects.filter(name="Sneaky").count() == 0 and DemoPet.objects.filter(pk=pets[0].id).exists()


def test_list_filters_and_paging(api, pets):
    everything = api.get(f"{BASE}/pets").json()
    assert everything["total"] == 5 and everything["limit"] == 20 and everything["offset"] == 0
    assert [p["name"] for p in everything["items"]] == ["Rex", "Tom", "Nemo", "Kiwi", "Rexina"]
    first = everything["items"][0]
    assert set(first) == {"id", "name", "tag", "status", "created_at"}
    assert first["tag"] == "dog" and first["status"] == "available" and first["created_at"].endswith("Z")

    available = api.get(f"{BASE}/pets", {"status": "available"}).json()
    assert [p["name"] for p in available["items"]] == ["Rex", "Kiwi"] and available["total"] == 2
    dogs = api.get(f"{BASE}/pets", {"tag": "dog", "status": "sold"}).json()
    assert [p["name"] for p in dogs["items"]] == ["Rexina"]
    named = api.get(f"{BASE}/pets", {"q": "rex"}).json()
    assert [p["name"] for p in named["items"]] == ["Rex", "Rexina"]

    page = api.get(f"{BASE}/pets", {"limit": 2, "offset": 2}).json()
    assert [p["name"] for p in page["items"]] == ["Nemo", "Kiwi"]
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 2
    assert api.get(f"{BASE}/pets", {"offset": 10}).json()["items"] == []
    assert api.get(f"{BASE}/pets", {"limit": 500}).json()["limit"] == 100
    assert api.get(f"{BASE}/pets/").status_code == 200  # trailing slash accepted


@pytest.mark.parametrize("params, field", [
    ({"limit": "ten"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"offset": "1.5"}, "offset"),
    ({"offset": "61726028921496260179"}, "offset"),  # beyond 64 bits: was a 500 from the database
    ({"limit": str(2**63)}, "limit"),
    ({"status": "lost"}, "status"),
])
def test_list_rejects_bad_parameters(api, params, field):
    response = api.get(f"{BASE}/pets", params)
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [field] and body["errors"][field]
    assert field in body["detail"]


def test_get_and_not_found(api, pets):
    rex = api.get(f"{BASE}/pets/{pets[0].id}")
    assert rex.status_code == 200
    assert rex.json()["name"] == "Rex" and rex.json()["id"] == pets[0].id
    missing = api.get(f"{BASE}/pets/99")
    assert missing.status_code == 404 and missing.json() == {"detail": "Pet 99 not found"}
    assert api.get(f"{BASE}/pets/abc").json() == {"detail": "Pet abc not found"}


def test_create_json_and_form(api):
    created = api.post(f"{BASE}/pets", {"name": " Bella ", "tag": "dog"}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Bella" and body["tag"] == "dog" and body["status"] == "available"
    assert DemoPet.objects.get(pk=body["id"]).name == "Bella"

    form = api.post(f"{BASE}/pets", {"name": "Milo", "status": "pending"})  # form-encoded by the test client
    assert form.status_code == 201 and form.json()["status"] == "pending"
    urlencoded = api.post(f"{BASE}/pets", "name=Luna&tag=cat", content_type="application/x-www-form-urlencoded")
    assert urlencoded.status_code == 201 and urlencoded.json()["tag"] == "cat"


def test_create_validation_field_map(api):
    response = api.post(f"{BASE}/pets", {"tag": "x" * 60, "status": "lost"}, content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"name", "tag", "status"}
    assert errors["name"] == ["This field is required."]
    assert "available" in errors["status"][0]
    assert "name: This field is required." in response.json()["detail"]
    bad_json = api.post(f"{BASE}/pets", "{not json", content_type="application/json")
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["detail"]
    not_object = api.post(f"{BASE}/pets", "[1]", content_type="application/json")
    assert not_object.status_code == 400
    assert DemoPet.objects.count() == 0


def test_update_put_and_patch(api, pets):
    tom = pets[1]
    put = api.put(f"{BASE}/pets/{tom.id}", {"status": "sold"}, content_type="application/json")
    assert put.status_code == 200
    assert put.json() == {**put.json(), "name": "Tom", "tag": "cat", "status": "sold"}
    patch = api.patch(f"{BASE}/pets/{tom.id}", "name=Thomas", content_type="application/x-www-form-urlencoded")
    assert patch.status_code == 200 and patch.json()["name"] == "Thomas"
    tom.refresh_from_db()
    assert (tom.name, tom.tag, tom.status) == ("Thomas", "cat", "sold")

    invalid = api.put(f"{BASE}/pets/{tom.id}", {"name": "", "status": "gone"}, content_type="application/json")
    assert invalid.status_code == 400 and set(invalid.json()["errors"]) == {"name", "status"}
    assert api.put(f"{BASE}/pets/99", {"name": "Ghost"}, content_type="application/json").status_code == 404


def test_delete(api, pets):
    response = api.delete(f"{BASE}/pets/{pets[0].id}")
    assert response.status_code == 204 and response.content == b""
    assert not DemoPet.objects.filter(pk=pets[0].id).exists()
    again = api.delete(f"{BASE}/pets/{pets[0].id}")
    assert again.status_code == 404 and again.json()["detail"] == f"Pet {pets[0].id} not found"


def test_method_not_allowed(api, pets):
    response = api.delete(f"{BASE}/pets")
    assert response.status_code == 405 and response["Allow"] == "GET, POST"


def test_openapi_needs_no_key():
    response = Client().get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.0")
    assert doc["servers"] == [{"url": "http://testserver/demo-api"}]
    operations = {op["operationId"] for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)
                  and "operationId" in op}
    assert {"listPets", "getPet", "createPet", "updatePet", "deletePet"} <= operations
    assert doc["components"]["securitySchemes"]["DemoKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


# --- seed_demo --------------------------------------------------------------------------------------------------


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (
        get_user_model(), Team, TeamMembership, Instance, BackendService, McpServer, SecurityScheme, Tool, DemoPet,
        ApiToken,
    )}


def test_seed_demo_creates_everything():
    report = seed_demo(admin_password=None, host="127.0.0.1", port=8123)

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert report.admin_password and report.admin_password_generated
    assert admin.check_password(report.admin_password)
    team = Team.objects.get(name="Demo")
    assert TeamMembership.objects.get(team=team, user=admin).role == TeamMembership.Role.OWNER
    instance = Instance.objects.get(name="default")
    assert instance.team == team and instance.region == "local" and instance.is_default
    service = BackendService.objects.get(instance=instance, name="demo-api")
    assert service.base_url == "http://127.0.0.1:8123/demo-api" and service.protocol == "http"
    server = McpServer.objects.get(instance=instance, name="petstore")
    assert server.server_type == McpServer.Type.HTTP_TO_MCP and server.backend_service == service
    assert server.description.startswith("Demo pet store") and not server.domains.exists()
    assert server.config == {"baseUrl": "http://127.0.0.1:8123/demo-api"}
    assert server.default_upstream_security == {"id": "DemoKey"}
    scheme = server.security_schemes.get()
    assert (scheme.scheme_id, scheme.type, scheme.location, scheme.param_name) == ("DemoKey", "apiKey", "header",
                                                                                   "X-API-Key")
    assert scheme.default_credential == KEY
    tools = {tool.name: tool for tool in server.tools.all()}
    assert set(tools) == {"listPets", "getPet", "createPet", "updatePet", "deletePet", "getPetJson"}
    assert tools["getPet"].args == [{"name": "petId", "description": "The pet's id.", "type": "integer",
                                     "required": True, "position": "path"}]
    assert tools["createPet"].request_template["argsToJsonBody"] is True
    assert tools["updatePet"].request_template["method"] == "PUT"
    assert tools["deletePet"].request_template["method"] == "DELETE"
    assert tools["getPetJson"].output_schema["properties"].keys() >= {"id", "name", "status", "tag"}
    assert "range" in tools["listPets"].response_template["body"]
    assert [(p.name, p.tag, p.status) for p in DemoPet.objects.order_by("id")] == [
        ("Rex", "dog", "available"), ("Tom", "cat", "pending"), ("Nemo", "fish", "sold"), ("Kiwi", "bird", "available")]

    assert report.console_url == "http://127.0.0.1:8123/"
    assert report.endpoints == {"streamable_http": "http://127.0.0.1:8123/mcp-servers/petstore",
                                "sse": "http://127.0.0.1:8123/mcp-servers/petstore/sse"}
    assert "MCP server petstore" in report.created and "tool getPet" in report.created


def test_seed_demo_twice_changes_nothing():
    first = StringIO()
    call_command("seed_demo", "--port", "8124", stdout=first)
    assert "(generated — shown once)" in first.getvalue()
    generated = re.search(r"admin / (\S+)", first.getvalue()).group(1)
    before = counts()
    password_hash = get_user_model().objects.get(username="admin").password
    tool_hashes = dict(Tool.objects.values_list("name", "content_hash"))

    second = StringIO()
    call_command("seed_demo", "--port", "8124", stdout=second)
    output = second.getvalue()
    assert counts() == before
    assert get_user_model().objects.get(username="admin").password == password_hash
    assert dict(Tool.objects.values_list("name", "content_hash")) == tool_hashes
    assert generated not in output and "generated" not in output
    assert "nothing changed" in output
    assert "http://127.0.0.1:8124/mcp-servers/petstore" in output
    assert "http://127.0.0.1:8124/mcp-servers/petstore/sse" in output
    last_apply = AuditEvent.objects.filter(action="tools.apply_yaml").first()
    assert last_apply.detail["created"] == [] and last_apply.detail["updated"] == []


def test_seed_demo_follows_port_and_keeps_edits_elsewhere():
    seed_demo(admin_password="first-pass-1", port=8000)
    DemoPet.objects.filter(name="Rex").update(status="sold")
    report = seed_demo(admin_password=None, port=9001)
    assert report.admin_password is None and report.created == []
    server = McpServer.objects.get(name="petstore")
    assert server.config["baseUrl"] == "http://127.0.0.1:9001/demo-api"
    assert server.backend_service.base_url == "http://127.0.0.1:9001/demo-api"
    assert DemoPet.objects.count() == 4 and DemoPet.objects.get(name="Rex").status == "sold"
    assert get_user_model().objects.get(username="admin").check_password("first-pass-1")


def test_seed_demo_password_from_environment(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "env-pass-123")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "env-pass-123" not in out.getvalue() and "generated" not in out.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("env-pass-123")
    monkeypatch.setenv("ADMIN_PASSWORD", "changed-pass-456")
    call_command("seed_demo", stdout=StringIO())
    assert get_user_model().objects.get(username="admin").check_password("changed-pass-456")


def test_seed_demo_keeps_existing_admin_password():
    get_user_model().objects.create_superuser("admin", "", "mine-123456")
    report = seed_demo(admin_password=None)
    assert report.admin_password is None
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("mine-123456")
    assert TeamMembership.objects.filter(user=admin, team__name="Demo", role="owner").exists()


@override_settings(PUBLIC_BASE_URL="https://mcp.example.com")
def test_seed_demo_prints_public_base_url():
    report = seed_demo(admin_password="pw-1234567", host="0.0.0.0", port=8000)
    assert report.endpoints["streamable_http"] == "https://mcp.example.com/mcp-servers/petstore"
    # The gateway still calls its own demo API on loopback.
    assert McpServer.objects.get(name="petstore").config["baseUrl"] == "http://127.0.0.1:8000/demo-api"


# --- create_api_token -------------------------------------------------------------------------------------------


def test_create_api_token_prints_only_the_token():
    user = get_user_model().objects.create_user("dana", password="pw-123456")
    out = StringIO()
    call_command("create_api_token", "dana", "--name", "ci", stdout=out)
    secret = out.getvalue().strip()
    assert "\n" not in secret and secret.startswith(ApiToken.PREFIX)
    token = ApiToken.objects.get(digest=ApiToken.digest_of(secret))
    assert token.user == user and token.name == "ci" and secret not in token.digest
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/v1/instances/").status_code == 200


def test_create_api_token_unknown_user():
    with pytest.raises(CommandError, match="No user named “nobody”"):
        call_command("create_api_token", "nobody", stdout=StringIO())
    assert ApiToken.objects.count() == 0


def test_seeded_tools_yaml_round_trips_through_the_parser():
    from console.demo_seed import petstore_yaml
    from console.toolyaml import parse_tool_yaml

    doc = parse_tool_yaml(petstore_yaml(base_url="http://127.0.0.1:1/demo-api"), require_server=True)
    assert doc.server.config == {"baseUrl": "http://127.0.0.1:1/demo-api"}
    assert json.dumps(doc.server.default_upstream_security) == '{"id": "DemoKey"}'
