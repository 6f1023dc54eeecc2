"""The REST API of imports: 202 and the job, its preview and diff, confirm, re-import, and every refusal."""
from __future__ import annotations

import http.server
import io
import json
import threading
import time
import zipfile

import pytest
import yaml
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from console import services
from console.models import ImportJob, Tool

pytestmark = pytest.mark.django_db(transaction=True)

PETSTORE = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1"},
    "servers": [{"url": "http://127.0.0.1:9/api"}],
    "paths": {
        "/pets": {
            "get": {"operationId": "listPets", "summary": "List pets", "tags": ["pets"],
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "ok"}}},
            "post": {"operationId": "createPet", "tags": ["pets"],
                     "requestBody": {"content": {"application/json": {"schema": {
                         "type": "object", "properties": {"name": {"type": "string"}}}}}},
                     "responses": {"201": {"description": "ok"}}},
        },
        "/pets/{id}": {
            "get": {"operationId": "getPet", "tags": ["pets"],
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "ok"}}},
            "delete": {"operationId": "deletePet", "deprecated": True, "tags": ["admin"],
                       "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                       "responses": {"204": {"description": "gone"}}},
        },
        "/stores": {"get": {"operationId": "listStores", "tags": ["stores"],
                            "responses": {"200": {"description": "ok"}}}},
    },
}


def make_user(name: str):
    user = get_user_model().objects.create_user(name, password="pw-123456")
    team = services.team_create(name=f"Team {name}", owner=user)
    _, secret = services.api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    instance = services.instance_create(actor=user, team=team, name=f"{name}-inst")
    server = services.mcp_server_create(actor=user, instance=instance, name="pets")
    return user, server, client


@pytest.fixture
def alice():
    return make_user("alice")


def finished(client, url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish: {job}")


def start(client, server, **body) -> dict:
    answer = client.post(f"/api/v1/mcp-servers/{server.pk}/imports/", body, format="json")
    assert answer.status_code == 202, answer.content
    return answer.json()


def test_import_preview_confirm_and_the_tools_are_there(alice):
    _, server, api = alice
    job = start(api, server, text=json.dumps(PETSTORE))
    assert job["status"] == "queued" and job["url"].endswith(f"/api/v1/imports/{job['id']}/")
    done = finished(api, job["url"])
    assert done["status"] == "succeeded", done["errors"]
    assert done["progress"] == {"step": "done", "percent": 100}
    rows = {t["name"]: t for t in done["preview"]["tools"]}
    assert rows["getPet"] == {"name": "getPet", "method": "GET", "path": "/pets/{id}", "summary": "",
                              "tags": ["pets"], "status": "added", "hand_edited": False, "deprecated": False,
                              "selected": True, "warnings": []}
    assert rows["deletePet"]["deprecated"] and not rows["deletePet"]["selected"]
    assert done["counts"]["added"] == 5 and done["counts"]["operations"] == 5
    assert yaml.safe_load(done["preview"]["yaml"])["tools"][0]["name"] == "listPets"
    assert Tool.objects.filter(mcp_server=server).count() == 0  # a preview writes nothing

    applied = api.post(f"{job['url']}confirm/", {}, format="json")
    assert applied.status_code == 200, applied.content
    assert sorted(applied.json()["created"]) == ["createPet", "getPet", "listPets", "listStores"]
    listed = api.get(f"/api/v1/mcp-servers/{server.pk}/tools/").json()["results"]
    assert {t["name"]: t["origin"] for t in listed} == {n: "openapi" for n in applied.json()["created"]}
    again = api.post(f"{job['url']}confirm/", {}, format="json")
    assert again.status_code == 409


def test_reimport_shows_the_diff_flags_hand_edits_and_applies_only_what_is_chosen(alice):
    user, server, api = alice
    first = start(api, server, text=json.dumps(PETSTORE))
    finished(api, first["url"])
    api.post(f"{first['url']}confirm/", {"tools": ["listPets", "createPet", "getPet", "listStores"]}, format="json")

    edited = Tool.objects.get(mcp_server=server, name="getPet")
    text = api.get(f"/api/v1/tools/{edited.pk}/yaml").content.decode()
    put = api.put(f"/api/v1/tools/{edited.pk}/yaml", {"yaml": text.replace(
        "GET /pets/{id}", "Fetch one pet, edited by hand.")}, format="json")
    assert put.status_code == 200, put.content

    changed = json.loads(json.dumps(PETSTORE))
    changed["paths"]["/pets"]["get"]["summary"] = "List every pet"  # changed
    changed["paths"]["/pets/{id}"]["get"]["summary"] = "Get a pet"  # changed upstream, but edited here
    del changed["paths"]["/stores"]  # removed
    changed["paths"]["/owners"] = {"get": {"operationId": "listOwners", "responses": {"200": {"description": "ok"}}}}
    second = finished(api, start(api, server, text=json.dumps(changed))["url"])
    rows = {t["name"]: (t["status"], t["hand_edited"], t["selected"]) for t in second["preview"]["tools"]}
    assert rows == {
        "listPets": ("changed", False, True),
        "createPet": ("unchanged", False, False),
        "getPet": ("changed", True, False),
        "deletePet": ("added", False, False),
        "listOwners": ("added", False, True),
        "listStores": ("removed", False, False),
    }
    result = api.post(f"/api/v1/imports/{second['id']}/confirm/", {}, format="json").json()
    assert result == {"created": ["listOwners"], "updated": ["listPets"], "unchanged": [], "removed": []}
    assert Tool.objects.get(mcp_server=server, name="getPet").description == "Fetch one pet, edited by hand."

    third = finished(api, start(api, server, text=json.dumps(changed))["url"])
    rows = {t["name"]: t["status"] for t in third["preview"]["tools"]}
    assert rows["listPets"] == "unchanged" and rows["listOwners"] == "unchanged"
    result = api.post(f"/api/v1/imports/{third['id']}/confirm/", {"tools": ["getPet", "listStores"]},
                      format="json").json()
    assert result["updated"] == ["getPet"] and result["removed"] == ["listStores"]
    assert Tool.objects.get(mcp_server=server, name="getPet").description == "Get a pet"  # chosen: overwritten


def test_confirm_with_edited_yaml_goes_through_the_yaml_validation(alice):
    _, server, api = alice
    job = finished(api, start(api, server, text=json.dumps(PETSTORE))["url"])
    doc = yaml.safe_load(job["preview"]["yaml"])
    doc["tools"] = [t for t in doc["tools"] if t["name"] == "listPets"]
    doc["tools"][0]["description"] = "Edited before confirming."
    doc["tools"][0]["args"][0]["type"] = "integr"
    bad = api.post(f"/api/v1/imports/{job['id']}/confirm/", {"yaml": yaml.safe_dump(doc)}, format="json")
    assert bad.status_code == 400
    assert any("type must be one of" in e["message"] and e["line"] for e in bad.json()["errors"])
    doc["tools"][0]["args"][0]["type"] = "integer"
    good = api.post(f"/api/v1/imports/{job['id']}/confirm/", {"yaml": yaml.safe_dump(doc)}, format="json")
    assert good.json()["created"] == ["listPets"]
    assert Tool.objects.get(mcp_server=server, name="listPets").description == "Edited before confirming."


def test_above_the_threshold_nothing_is_selected_until_the_user_chooses(alice, settings):
    settings.OPENAPI_IMPORT_SELECT_THRESHOLD = 3
    _, server, api = alice
    job = finished(api, start(api, server, text=json.dumps(PETSTORE))["url"])
    assert job["preview"]["needs_selection"] and not any(t["selected"] for t in job["preview"]["tools"])
    refused = api.post(f"/api/v1/imports/{job['id']}/confirm/", {}, format="json")
    assert refused.status_code == 400 and "Choose the tools" in refused.json()["detail"]
    unknown = api.post(f"/api/v1/imports/{job['id']}/confirm/", {"tools": ["nope"]}, format="json")
    assert unknown.status_code == 400 and "nope" in json.dumps(unknown.json()["errors"])


def test_several_files_and_a_zip_with_references_across_them(alice):
    _, server, api = alice
    root = {"openapi": "3.1.0", "info": {"title": "Split", "version": "1"},
            "servers": [{"url": "https://split.invalid"}],
            "paths": {"/things": {"$ref": "paths/things.yaml"}}}
    things = {"post": {"operationId": "makeThing", "requestBody": {"content": {"application/json": {
        "schema": {"$ref": "../schemas/thing.yaml#/Thing"}}}}, "responses": {"200": {"description": "ok"}}}}
    thing = {"Thing": {"type": "object", "required": ["size"], "properties": {"size": {"type": ["integer", "null"]}}}}
    files = {"openapi.yaml": yaml.safe_dump(root), "paths/things.yaml": yaml.safe_dump(things),
             "schemas/thing.yaml": yaml.safe_dump(thing)}
    uploads = [io.BytesIO(text.encode()) for text in files.values()]
    for upload, name in zip(uploads, files):
        upload.name = name
    answer = api.post(f"/api/v1/mcp-servers/{server.pk}/imports/", {"file": uploads}, format="multipart")
    assert answer.status_code == 202, answer.content
    # Multipart uploads keep only the base name: the references are then resolved within the zip below.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name, text in files.items():
            z.writestr(f"spec/{name}", text)
    archive.seek(0)
    archive.name = "spec.zip"
    answer = api.post(f"/api/v1/mcp-servers/{server.pk}/imports/", {"file": archive}, format="multipart")
    job = finished(api, answer.json()["url"])
    assert job["status"] == "succeeded", job["errors"]
    tool = yaml.safe_load(job["preview"]["yaml"])["tools"][0]
    assert tool["name"] == "makeThing"
    assert tool["args"] == [{"name": "size", "type": "integer", "required": True, "nullable": True,
                             "position": "body"}]


@pytest.mark.parametrize("text, message, location", [
    ("openapi: 3.0.0\ninfo: {title: x\npaths: {}\n", "YAML syntax", {"file": "pasted.yaml", "line": 3}),
    ('{"openapi": "3.0.0", "paths": {"/a": }}', "JSON syntax", {"file": "pasted.json", "line": 1}),
    ("swagger: '1.2'\npaths: {}\n", "Swagger 1.2 is not supported", {"file": "pasted.yaml", "pointer": "/swagger"}),
    ("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n", "no operations",
     {"file": "pasted.yaml", "pointer": "/paths"}),
    ("just: text\n", "No OpenAPI or Swagger description", {"file": "pasted.yaml"}),
])
def test_an_invalid_description_fails_with_located_errors(alice, text, message, location):
    _, server, api = alice
    job = finished(api, start(api, server, text=text)["url"])
    assert job["status"] == "failed" and job["preview"] is None
    assert message in job["errors"][0]["message"]
    assert job["errors"][0]["location"] == location


def test_hostile_inputs_are_bounded_and_reported(alice):
    _, server, api = alice
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    job = finished(api, start(api, server, text="openapi: 3.0.0\n" + bomb)["url"])
    assert job["status"] == "failed" and "YAML aliases (an alias bomb?)" in job["errors"][0]["message"]

    deep = '{"openapi": "3.0.0", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    job = finished(api, start(api, server, text=deep)["url"])
    assert job["status"] == "failed" and "nesting deeper than 100 levels" in job["errors"][0]["message"]

    # Each schema refers twice to the next: 2**40 paths if expanded naively.
    schemas = {f"S{i}": {"type": "object", "properties": {"l": {"$ref": f"#/components/schemas/S{i + 1}"},
                                                          "r": {"$ref": f"#/components/schemas/S{i + 1}"}}}
               for i in range(40)}
    schemas["S40"] = {"type": "string"}
    spec = {"openapi": "3.0.0", "info": {"title": "x", "version": "1"}, "components": {"schemas": schemas},
            "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/S0"}}}}, "responses": {"200": {"description": "ok"}}}}}}
    job = finished(api, start(api, server, text=json.dumps(spec))["url"])
    assert job["status"] == "succeeded"
    assert len(job["preview"]["yaml"]) < 3_000_000
    assert any("budget" in w["message"] or "nested more than" in w["message"] for w in job["warnings"])


def test_the_size_limit_is_enforced_with_a_clear_message(alice, settings):
    settings.OPENAPI_IMPORT_MAX_BYTES = 1000
    _, server, api = alice
    answer = api.post(f"/api/v1/mcp-servers/{server.pk}/imports/", {"text": "openapi: 3.0.0\n" + "#" * 2000},
                      format="json")
    assert answer.status_code == 413
    assert "limit" in answer.json()["detail"]


def test_another_teams_server_and_job_are_404(alice):
    _, server, api = alice
    _, _, mallory = make_user("mallory")
    job = start(api, server, text=json.dumps(PETSTORE))
    assert mallory.post(f"/api/v1/mcp-servers/{server.pk}/imports/", {"text": "x"}, format="json").status_code == 404
    assert mallory.get(job["url"]).status_code == 404
    assert mallory.post(f"{job['url']}confirm/", {}, format="json").status_code == 404
    finished(api, job["url"])
    assert [j["id"] for j in api.get(f"/api/v1/mcp-servers/{server.pk}/imports/").json()] == [job["id"]]


class _Spec(http.server.BaseHTTPRequestHandler):
    body = b""
    content_type = "application/json"

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def spec_server():
    _Spec.body = json.dumps({**PETSTORE, "servers": [{"url": "/api"}]}).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Spec)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_url_import_through_the_egress_policy(alice, spec_server):
    _, server, api = alice
    port = spec_server.server_address[1]
    job = finished(api, start(api, server, url=f"http://127.0.0.1:{port}/openapi.json")["url"])
    assert job["status"] == "succeeded", job["errors"]
    assert yaml.safe_load(job["preview"]["yaml"])["server"]["config"] == {"baseUrl": f"http://127.0.0.1:{port}/api"}

    refused = finished(api, start(api, server, url=f"http://127.0.0.2:{port}/openapi.json")["url"])
    assert refused["status"] == "failed"
    assert "may not be fetched" in refused["errors"][0]["message"]
    assert "loopback" in refused["errors"][0]["message"]

    _Spec.content_type = "image/png"
    wrong = finished(api, start(api, server, url=f"http://127.0.0.1:{port}/x.png")["url"])
    assert "not a JSON or YAML description" in wrong["errors"][0]["message"]


def test_a_job_past_its_time_limit_is_failed_by_the_sweep(alice, settings):
    from django.utils import timezone

    from console.services.imports import import_job_sweep

    user, server, api = alice
    stuck = ImportJob.objects.create(mcp_server=server, status="running", step="converting", source_kind="text")
    ImportJob.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timezone.timedelta(hours=1))
    assert import_job_sweep() == 1
    job = api.get(f"/api/v1/imports/{stuck.pk}/").json()
    assert job["status"] == "failed" and "did not finish within" in job["errors"][0]["message"]


def test_remote_references_only_when_allowed_and_through_the_egress_policy(alice, spec_server, settings):
    _, server, api = alice
    port = spec_server.server_address[1]
    _Spec.content_type = "application/json"
    _Spec.body = json.dumps({"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}}).encode()

    def spec(host: str) -> str:
        return json.dumps({"openapi": "3.0.3", "info": {"title": "Remote", "version": "1"},
                           "servers": [{"url": "https://remote.invalid"}],
                           "paths": {"/pets": {"post": {"operationId": "addPet", "requestBody": {"content": {
                               "application/json": {"schema": {"$ref": f"http://{host}:{port}/defs.json#/Pet"}}}},
                               "responses": {"200": {"description": "ok"}}}}}})

    def args(job) -> list:
        return yaml.safe_load(job["preview"]["yaml"])["tools"][0]["args"]

    off = finished(api, start(api, server, text=spec("127.0.0.1"))["url"])
    assert off["status"] == "succeeded" and args(off)[0]["name"] == "body"
    assert any("remote references are not followed" in w["message"] for w in off["warnings"])

    settings.OPENAPI_IMPORT_REMOTE_REFS = True
    on = finished(api, start(api, server, text=spec("127.0.0.1"))["url"])
    assert args(on) == [{"name": "name", "type": "string", "position": "body"}]
    refused = finished(api, start(api, server, text=spec("127.0.0.2"))["url"])
    assert any("may not be fetched" in w["message"] and "loopback" in w["message"] for w in refused["warnings"]), \
        refused["warnings"]
