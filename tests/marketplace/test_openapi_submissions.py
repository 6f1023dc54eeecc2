"""Submissions from an OpenAPI description: the console's import job makes the listing's tool YAML, then review."""
from __future__ import annotations

import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from console.models import ImportJob, McpServer, SecurityScheme
from marketplace.models import Listing, Submission

pytestmark = pytest.mark.django_db

SPEC = {
    "openapi": "3.0.3", "info": {"title": "Things", "version": "2.1.0", "description": "Things API"},
    "servers": [{"url": "http://127.0.0.1:9/api"}],
    "components": {"securitySchemes": {"thingsKey": {"type": "apiKey", "in": "header", "name": "X-Key"}}},
    "security": [{"thingsKey": []}],
    "paths": {
        "/things/{id}": {"get": {"operationId": "getThing", "summary": "Get a thing", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "ok"}}}},
        "/things": {"post": {"operationId": "createThing", "summary": "Create a thing", "requestBody": {
            "content": {"application/json": {"schema": {"type": "object", "properties": {
                "name": {"type": "string"}}}}}}, "responses": {"201": {"description": "made"}}}},
    },
}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def submit(tenant, text: str, **extra):
    data = {"team": tenant.team.pk, "source": "openapi", "slug": "things", "summary": "Things by id.",
            "category": "developer", "openapi": text, **extra}
    return signed_in(tenant.user).post("/api/v1/market/submissions/", data, content_type="application/json")


def test_openapi_submission_lists_the_imports_tools_after_review(acme, staff):
    servers_before = set(McpServer.objects.values_list("pk", flat=True))
    response = submit(acme, json.dumps(SPEC))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "openapi" and body["status"] == "pending" and body["listed"] is False
    listing = Listing.objects.get(slug="things")
    assert listing.title == "Things"  # the description's title, as none was given
    version = Submission.objects.get(pk=body["id"]).version
    doc = yaml.safe_load(version.tool_yaml)
    assert [t["name"] for t in doc["tools"]] == ["getThing", "createThing"]
    assert doc["tools"][0]["requestTemplate"] == {"url": "{{.config.baseUrl}}/things/{id}", "method": "GET"}
    assert doc["server"]["config"]["baseUrl"] == "http://127.0.0.1:9/api"
    assert [t["name"] for t in version.tools] == ["getThing", "createThing"]
    # The API key the description asks for is what a subscriber must supply.
    assert [(f["name"], f["secret"], f["required"], f["scheme"]) for f in version.config_fields] == [
        ("thingsKey", True, True, "thingsKey")]
    # The import ran on a scratch server that is gone with its job: the team's instances are as they were.
    assert set(McpServer.objects.values_list("pk", flat=True)) == servers_before
    assert not ImportJob.objects.exists()

    assert signed_in(staff).post(f"/api/v1/market/submissions/{body['id']}/approve").status_code == 200
    detail = signed_in(acme.user).get("/api/v1/market/listings/things/").json()
    assert [t["name"] for t in detail["tools"]] == ["getThing", "createThing"]
    missing = signed_in(acme.user).post("/api/v1/market/listings/things/subscribe", {
        "team": acme.team.pk, "instance": acme.instance.pk, "config": {}}, content_type="application/json")
    assert missing.status_code == 400 and "config.thingsKey" in missing.json()["errors"]
    made = signed_in(acme.user).post("/api/v1/market/listings/things/subscribe", {
        "team": acme.team.pk, "instance": acme.instance.pk, "config": {"thingsKey": "k-123"}},
        content_type="application/json")
    assert made.status_code == 201, made.content
    server = McpServer.objects.get(pk=made.json()["subscription"]["mcp_server"])
    assert sorted(server.tools.values_list("name", flat=True)) == ["createThing", "getThing"]
    scheme = SecurityScheme.objects.get(mcp_server=server, scheme_id="thingsKey")
    assert scheme.default_credential == "k-123"


def test_openapi_submission_can_be_rejected_with_a_reason(acme, staff):
    body = submit(acme, yaml.safe_dump(SPEC, sort_keys=False), title="Things (YAML)").json()
    rejected = signed_in(staff).post(f"/api/v1/market/submissions/{body['id']}/reject",
                                     {"reason": "Describe the responses."}, content_type="application/json")
    assert rejected.status_code == 200
    mine = signed_in(acme.user).get(f"/api/v1/market/submissions/{body['id']}/").json()
    assert mine["status"] == "rejected" and mine["reason"] == "Describe the responses."
    assert Listing.objects.get(slug="things").title == "Things (YAML)" and not Listing.objects.get(
        slug="things").listed


def test_a_broken_description_is_a_field_error_and_nothing_stays(acme):
    response = submit(acme, json.dumps({"openapi": "3.0.3", "info": {"title": "x"}, "paths": {"/a": "nope"}}))
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["openapi"]
    assert submit(acme, "   ").status_code == 400
    assert not Listing.objects.filter(slug="things").exists() and not ImportJob.objects.exists()


def test_the_submission_page_takes_an_openapi_file(acme, staff):
    upload = SimpleUploadedFile("things.yaml", yaml.safe_dump(SPEC, sort_keys=False).encode(), content_type="application/yaml")
    response = signed_in(acme.user).post("/market/submissions/add/", {
        "team": acme.team.pk, "source": "openapi", "slug": "things-file", "title": "Things file",
        "summary": "Things from a file.", "category": "developer", "version": "2.1.0", "openapi_file": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = Submission.objects.get(listing__slug="things-file")
    assert submission.source == "openapi" and [t["name"] for t in submission.version.tools] == [
        "getThing", "createThing"]
    page = signed_in(acme.user).get("/market/submissions/add/").content.decode()
    assert 'name="openapi_file"' in page and '<option value="openapi"' in page


def test_the_api_takes_an_openapi_file_as_multipart(acme):
    upload = SimpleUploadedFile("things.json", json.dumps(SPEC).encode(), content_type="application/json")
    response = signed_in(acme.user).post("/api/v1/market/submissions/", {
        "team": acme.team.pk, "source": "openapi", "slug": "things-upload", "summary": "Things uploaded.",
        "category": "developer", "openapi_file": upload})
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "openapi"
    version = Submission.objects.get(pk=response.json()["id"]).version
    assert [t["name"] for t in version.tools] == ["getThing", "createThing"]
