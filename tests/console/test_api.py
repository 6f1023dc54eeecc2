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


# ------------------------------------------------------------------ request body limits

@pytest.mark.parametrize("body,message", [
    (b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}", "JSON parse error: nesting deeper than 64 levels."),
    (b'{"name": "x", "description": ' + b"[" + b"0," * 150_000 + b"0]}", "JSON parse error: more than 100,000 values."),
    (b'{"name": "a\\ud800"}', "JSON parse error: a \\u escape leaves a lone UTF-16 surrogate, which is not a character."),
    (b'{"name": "a\\u0000b", "description": "x"}', "JSON parse error: a string contains the NUL character (\\u0000)."),
    (b'{"name": "caf\xe9"}', "JSON parse error: the body is not valid UTF-8 (at byte offset 13)."),
    (b'{"name": NaN}', "JSON parse error: NaN is not a JSON value."),
])
def test_hostile_json_bodies_get_a_400_with_a_message(alice, body, message):
    _, _, api = alice
    response = api.post("/api/v1/instances/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": message, "code": "parse_error", "errors": {"body": [
        message.removeprefix("JSON parse error: ")[:1].upper() + message.removeprefix("JSON parse error: ")[1:]]}}


def test_deep_json_config_of_an_mcp_server_is_refused(alice):
    user, team, api = alice
    instance = services.instance_create(actor=user, team=team, name="i1")
    deep = b'{"instance": %d, "name": "s1", "config": ' % instance.pk + b'{"a":' * 70 + b"1" + b"}" * 71
    response = api.post("/api/v1/mcp-servers/", deep, content_type="application/json")
    assert response.status_code == 400 and "nesting deeper than 64 levels" in response.json()["detail"]
    assert not McpServer.objects.exists()


def test_oversized_bodies_get_a_413_in_the_api_shape(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    user, team, api = alice
    server = services.mcp_server_create(actor=user, instance=services.instance_create(actor=user, team=team,
                                                                                      name="i1"), name="s1")
    expected = {"detail": "The request body is larger than the limit of 10,000 bytes.", "code": "too_large",
                "errors": {"body": ["At most 10,000 bytes."]}}
    big_json = api.post("/api/v1/instances/", {"name": "x", "description": "d" * 20_000}, format="json")
    assert (big_json.status_code, big_json.json()) == (413, expected)
    big_yaml = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", "tools: []\n" + "#" * 20_000,
                       content_type="application/yaml")
    assert (big_yaml.status_code, big_yaml.json()) == (413, expected)


def test_too_many_form_fields_get_a_400_in_the_api_shape(alice, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    _, _, api = alice
    form = "&".join(f"f{i}=1" for i in range(60))
    response = api.post("/api/v1/instances/", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_fields" and "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


@pytest.mark.parametrize("doc,message", [
    ("tools:\n" + "".join("  " * (i + 1) + "- \n" for i in range(300)), "Values are nested more than 64 levels deep."),
    ("tools: " + "[" * 100_000 + "]" * 100_000 + "\n", "Values are nested more than 64 levels deep."),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
     + "tools: []\n", "The document expands to more than 200000 values (YAML aliases?)."),
    ("tools: [" + ", ".join(["1"] * 200_001) + "]\n", "The document has more than 200,000 values."),
])
def test_hostile_yaml_documents_get_a_400_with_a_message(alice, doc, message):
    user, team, api = alice
    server = services.mcp_server_create(actor=user, instance=services.instance_create(actor=user, team=team,
                                                                                      name="i1"), name="s1")
    response = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", doc, content_type="application/yaml")
    assert response.status_code == 400, response.content
    assert message in [e["message"] for e in response.json()["errors"]], response.json()
    # The same document sent as a JSON string.
    as_json = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", {"yaml": doc}, format="json")
    assert as_json.status_code == 400 and message in [e["message"] for e in as_json.json()["errors"]]


def test_yaml_with_control_characters_is_a_400_not_a_500(alice):
    user, team, api = alice
    server = services.mcp_server_create(actor=user, instance=services.instance_create(actor=user, team=team,
                                                                                      name="i1"), name="s1")
    response = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", "\x00tools: []\n",
                       content_type="application/yaml")
    assert response.status_code == 400
    assert "unacceptable character #x0000" in response.json()["errors"][0]["message"]


def test_a_broken_multipart_body_is_a_400_in_the_api_shape(alice):
    _, _, api = alice
    response = api.post("/api/v1/instances/", b"--b\r\ngarbage", content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.json() == {"detail": "Multipart form parse error - Invalid boundary in multipart: None",
                               "code": "parse_error", "errors": {}}


@pytest.mark.live
def test_oversized_bodies_are_refused_before_django_reads_them(demo_server, api):
    # Without a cap Django's ASGI handler would spool a body of any size to a temporary file before any view runs.
    import httpx

    big = b"x" * (5 * 1024 * 1024)
    response = api.post("/instances/", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than the limit of 4,194,304 bytes.",
                               "code": "too_large", "errors": {"body": ["At most 4,194,304 bytes."]}}
    page = httpx.post(demo_server.url + "/login/", content=big,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert (page.status_code, page.text) == (413, "The request body is larger than the limit of 4,194,304 bytes.")
    # Without a Content-Length (chunked) the answer comes once the body has grown past the limit.
    chunked = httpx.post(demo_server.url + "/login/", content=iter([b"x" * 65536] * 80),
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert chunked.status_code == 413
    small = httpx.post(demo_server.url + "/login/", content=iter([b"username=a&", b"password=b"]),
                       headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert small.status_code == 403  # a small chunked body still reaches Django (its CSRF check answers)
    assert api.get("/instances/").status_code == 200
