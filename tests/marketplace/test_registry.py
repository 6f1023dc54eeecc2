"""The MCP Registry API v0.1 over approved listings, validated against the vendored server.json schema (2025-12-11),
and server.json import as remote-server listings."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from django.test import Client

from marketplace.models import Listing

pytestmark = pytest.mark.django_db

# The schema as published at static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json, kept as test data.
SCHEMA = json.loads((Path(__file__).parent / "data" / "server.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)

REMOTE_DOC = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
    "name": "io.example.tools/weather-remote", "title": "Weather Remote",
    "description": "Weather over a remote MCP server.", "version": "0.3.1",
    "remotes": [{"type": "streamable-http", "url": "https://mcp.example.com/mcp",
                 "headers": [{"name": "Authorization", "isSecret": True, "isRequired": True}]}],
}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_valid(server: dict) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(server)]
    assert errors == [], errors


def test_schema_is_the_published_2025_12_11_revision():
    assert SCHEMA["$id"] == "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"


def test_server_list_entries_are_valid_server_json_pointing_at_this_gateway(acme):
    body = signed_in(acme.user).get("/v0.1/servers", {"version": "latest"}).json()
    assert set(body) == {"servers", "metadata"}
    assert body["metadata"]["count"] == len(body["servers"]) >= 12
    for entry in body["servers"]:
        assert set(entry) == {"server", "_meta"}
        assert_valid(entry["server"])
        assert entry["_meta"]["io.modelcontextprotocol.registry/official"]["isLatest"] is True
        remote = entry["server"]["remotes"][0]
        assert remote["type"] == "streamable-http" and remote["url"].startswith("http://testserver/mcp-servers/")
        assert remote["headers"][0] == {**remote["headers"][0], "name": "Authorization", "isSecret": True}
    names = [e["server"]["name"] for e in body["servers"]]
    assert names == sorted(names)


def test_paging_with_cursors_visits_every_server_once(acme):
    client = signed_in(acme.user)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v0.1/servers", params).json()
        pages += 1
        seen += [e["server"]["name"] for e in body["servers"]]
        assert body["metadata"]["count"] == len(body["servers"]) <= 5
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == Listing.objects.filter(listed=True).count()
    assert pages == -(-len(seen) // 5)
    assert client.get("/v0.1/servers", {"limit": 101}).status_code == 400
    assert client.get("/v0.1/servers", {"cursor": "%%%"}).status_code == 400
    default = client.get("/v0.1/servers").json()
    assert len(default["servers"]) == min(30, len(seen))


def test_search_and_versions_by_url_encoded_name(acme):
    client = signed_in(acme.user)
    found = client.get("/v0.1/servers", {"search": "weather"}).json()["servers"]
    assert {e["server"]["name"] for e in found} == {"io.mcpgw.market/demo-weather", "io.mcpgw.market/openweathermap"}
    name = quote("io.mcpgw.market/petstore", safe="")
    versions = client.get(f"/v0.1/servers/{name}/versions")
    assert versions.status_code == 200
    assert [e["server"]["version"] for e in versions.json()["servers"]] == ["1.0.0"]
    latest = client.get(f"/v0.1/servers/{name}/versions/latest").json()
    assert_valid(latest["server"])
    assert latest["server"]["name"] == "io.mcpgw.market/petstore"
    assert client.get(f"/v0.1/servers/{name}/versions/1.0.0").json()["server"]["version"] == "1.0.0"
    assert client.get(f"/v0.1/servers/{name}/versions/9.9.9").status_code == 404
    assert client.get(f"/v0.1/servers/{quote('no.such/server', safe='')}/versions").status_code == 404


def test_server_json_import_makes_a_remote_listing_after_review(acme, staff):
    client = signed_in(acme.user)
    response = client.post("/api/v1/market/submissions/", {"team": acme.team.pk, "source": "server_json",
                                                            "server_json": REMOTE_DOC},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    listing = Listing.objects.get(registry_name="io.example.tools/weather-remote")
    assert listing.kind == "remote" and not listing.listed
    signed_in(staff).post(f"/api/v1/market/submissions/{response.json()['id']}/approve")
    entry = client.get(f"/v0.1/servers/{quote(listing.registry_name, safe='')}/versions/latest").json()
    assert entry["server"]["version"] == "0.3.1"
    assert_valid(entry["server"])
    version = listing.latest_version()
    assert version.remote_url == "https://mcp.example.com/mcp" and version.remote_transport == "streamable_http"


def test_invalid_server_json_names_each_problem(acme):
    bad = {**REMOTE_DOC, "name": "no-slash", "description": "x" * 101}
    response = signed_in(acme.user).post("/api/v1/market/submissions/", {
        "team": acme.team.pk, "source": "server_json", "server_json": bad}, content_type="application/json")
    assert response.status_code == 400
    problems = response.json()["errors"]["server_json"]
    assert any(p.startswith("description:") for p in problems) and any(p.startswith("name:") for p in problems)
    pasted = signed_in(acme.user).post("/market/submissions/add/", {"team": acme.team.pk, "source": "server_json",
                                                                "server_json": "{not json"})
    assert pasted.status_code == 400 and "not JSON" in pasted.content.decode()
    no_remote = {k: v for k, v in REMOTE_DOC.items() if k != "remotes"}
    response = signed_in(acme.user).post("/api/v1/market/submissions/", {
        "team": acme.team.pk, "source": "server_json", "server_json": no_remote}, content_type="application/json")
    assert response.status_code == 400 and "remote" in json.dumps(response.json())


def test_server_json_file_upload_on_the_submission_page(acme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("server.json", json.dumps({**REMOTE_DOC, "name": "io.example.tools/uploaded"}).encode(),
                                content_type="application/json")
    response = signed_in(acme.user).post("/market/submissions/add/", {
        "team": acme.team.pk, "source": "server_json", "server_json_file": upload})
    assert response.status_code == 302
    assert Listing.objects.get(registry_name="io.example.tools/uploaded").kind == "remote"
    page = signed_in(acme.user).get("/market/submissions/").content.decode()
    assert "Weather Remote" in page and "Pending" in page
