"""The catalogue of hosted stdio servers: staff-only writes, validation as field maps, install failures with their
error, and Hosted stdio servers that pick an installed entry and keep their secrets encrypted."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from console import services
from console.models import HostedStdioEntry, McpServer
from console.services.hosted import hosted_entry_install_run
from gateway.config import server_snapshot

from .test_api import client_for

pytestmark = pytest.mark.django_db(transaction=True)

ENTRY = {"slug": "everything", "title": "Everything", "runtime": "npm",
         "package": "@modelcontextprotocol/server-everything", "version": "2026.8.31",
         "command": "mcp-server-everything", "args": ["stdio"],
         "variables": [{"name": "API_TOKEN", "secret": True, "required": True},
                       {"name": "REGION", "default": "eu"}]}


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("root", password="pw-123456")
    services.team_create(name="Operators", owner=user)
    return client_for(user)


@pytest.fixture
def tenant():
    user = get_user_model().objects.create_user("tina", password="pw-123456")
    team = services.team_create(name="Tenants", owner=user)
    instance = services.instance_create(actor=user, team=team, name="tina-main")
    return client_for(user), instance


@pytest.fixture
def cache(tmp_path, settings):
    settings.HOSTED_CACHE_DIR = tmp_path / "hosted"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings.HOSTED_CACHE_DIR


def installed(**fields) -> HostedStdioEntry:
    """An entry as an install leaves it (the live tests run the real install)."""
    entry = HostedStdioEntry.objects.create(**{**ENTRY, **fields})
    HostedStdioEntry.objects.filter(pk=entry.pk).update(state="installed", installed_spec=entry.spec)
    entry.refresh_from_db()
    return entry


def test_only_staff_write_the_catalogue_and_tenants_see_installed_entries(staff, tenant, cache, monkeypatch):
    monkeypatch.setattr("console.services.hosted.enqueue_install", lambda entry_id: None)
    api, _ = tenant
    refused = api.post("/api/v1/hosted-entries/", ENTRY, format="json")
    assert refused.status_code == 403 and "staff" in refused.json()["detail"]
    created = staff.post("/api/v1/hosted-entries/", ENTRY, format="json")
    assert created.status_code == 201, created.content
    entry = created.json()
    assert entry["state"] == "pending"
    # Not installed yet: a tenant does not see it, cannot change it or install it.
    assert api.get("/api/v1/hosted-entries/").json()["results"] == []
    assert api.get(f"/api/v1/hosted-entries/{entry['id']}/").status_code == 404
    assert api.patch(f"/api/v1/hosted-entries/{entry['id']}/", {"memory_mb": 64}, format="json").status_code == 404
    HostedStdioEntry.objects.filter(pk=entry["id"]).update(state="installed", installed_spec="npm:x@1.0.0")
    assert [e["slug"] for e in api.get("/api/v1/hosted-entries/").json()["results"]] == ["everything"]
    assert api.patch(f"/api/v1/hosted-entries/{entry['id']}/", {"memory_mb": 64}, format="json").status_code == 403
    assert api.post(f"/api/v1/hosted-entries/{entry['id']}/install/").status_code == 403
    assert api.delete(f"/api/v1/hosted-entries/{entry['id']}/").status_code == 403
    assert staff.post(f"/api/v1/hosted-entries/{entry['id']}/install/").status_code == 202


@pytest.mark.parametrize("field,value", [
    ("package", "left-pad; rm -rf /"), ("package", "https://example.com/x.tgz"), ("package", "../etc"),
    ("version", "^1.2.3"), ("version", "latest"), ("version", "1.x"), ("version", "git+https://x/y"),
    ("command", "/bin/sh"), ("command", "sh -c id"), ("args", ["ok", "x" * 1001]),
    ("variables", [{"name": "LD_PRELOAD"}]), ("variables", [{"name": "NODE_OPTIONS"}]),
    ("variables", [{"name": "PATH"}]), ("variables", [{"name": "lower"}]),
    ("variables", [{"name": "TOKEN", "secret": True, "default": "shown-to-all"}]),
    ("memory_mb", 999_999), ("memory_mb", 1), ("max_processes", 0), ("startup_timeout_seconds", 10_000),
    ("slug", "Not A Slug"),
])
def test_entry_validation_answers_a_field_map(staff, cache, field, value):
    answer = staff.post("/api/v1/hosted-entries/", {**ENTRY, field: value}, format="json")
    assert answer.status_code == 400, answer.content
    errors = answer.json()["errors"]
    assert field in errors, errors
    assert not HostedStdioEntry.objects.exists()


def test_pypi_names_and_versions_are_checked_by_pypi_rules(staff, cache):
    bad = staff.post("/api/v1/hosted-entries/", {**ENTRY, "runtime": "pypi", "package": "@scope/name",
                                                 "version": "1.0.0"}, format="json")
    assert bad.status_code == 400 and "package" in bad.json()["errors"]
    bad = staff.post("/api/v1/hosted-entries/", {**ENTRY, "runtime": "pypi", "package": "mcp-server-time",
                                                 "version": ">=1.0"}, format="json")
    assert bad.status_code == 400 and "version" in bad.json()["errors"]


def test_install_of_a_version_that_does_not_exist_fails_with_npms_error(staff, cache, monkeypatch):
    monkeypatch.setattr("console.services.hosted.enqueue_install", lambda entry_id: None)
    created = staff.post("/api/v1/hosted-entries/", {**ENTRY, "version": "0.0.1-does-not-exist"}, format="json")
    entry_id = created.json()["id"]
    hosted_entry_install_run(entry_id=entry_id)  # the job itself, as the worker runs it
    entry = staff.get(f"/api/v1/hosted-entries/{entry_id}/").json()
    assert entry["state"] == "failed"
    assert "npm install" in entry["error"] and "0.0.1-does-not-exist" in entry["error"]
    assert "$ " in entry["log"]
    assert not list(cache.glob("everything-*"))  # nothing half-installed is left behind


def test_a_tenant_server_runs_an_installed_entry_and_its_secret_is_never_shown(tenant, cache):
    api, instance = tenant
    pending = HostedStdioEntry.objects.create(**{**ENTRY, "slug": "pending-one"})
    refused = api.post("/api/v1/mcp-servers/", {"instance": instance.pk, "name": "h1", "server_type": "hosted_stdio",
                                                "hosted_entry": pending.pk,
                                                "hosted_variables": {"API_TOKEN": "x"}}, format="json")
    assert refused.status_code == 400 and "hosted_entry" in refused.json()["errors"]
    entry = installed()
    missing = api.post("/api/v1/mcp-servers/", {"instance": instance.pk, "name": "h1", "server_type": "hosted_stdio",
                                                "hosted_entry": entry.pk}, format="json")
    assert missing.status_code == 400 and "API_TOKEN is required." in missing.json()["errors"]["hosted_variables"]
    unknown = api.post("/api/v1/mcp-servers/", {"instance": instance.pk, "name": "h1", "server_type": "hosted_stdio",
                                                "hosted_entry": entry.pk,
                                                "hosted_variables": {"API_TOKEN": "x", "NODE_OPTIONS": "-r x"}},
                       format="json")
    assert unknown.status_code == 400 and "hosted_variables" in unknown.json()["errors"]
    created = api.post("/api/v1/mcp-servers/", {"instance": instance.pk, "name": "h1", "server_type": "hosted_stdio",
                                                "hosted_entry": entry.pk,
                                                "hosted_variables": {"API_TOKEN": "s3cret-value"}}, format="json")
    assert created.status_code == 201, created.content
    server = created.json()
    assert server["hosted_variables"] == {"API_TOKEN": {"set": True}, "REGION": ""}
    assert "s3cret-value" not in json.dumps(api.get(f"/api/v1/mcp-servers/{server['id']}/").json())
    with connection.cursor() as cursor:
        cursor.execute("select hosted_variables from console_mcpserver where id = %s", [server["id"]])
        assert "s3cret-value" not in cursor.fetchone()[0]
    # Changing a plain variable keeps the secret; the program gets both, and the default where nothing is set.
    changed = api.patch(f"/api/v1/mcp-servers/{server['id']}/", {"hosted_variables": {"REGION": "us"}}, format="json")
    assert changed.status_code == 200, changed.content
    hosted = server_snapshot(server["id"]).hosted
    assert hosted.unavailable == ""
    assert hosted.env["API_TOKEN"] == "s3cret-value" and hosted.env["REGION"] == "us"
    assert set(hosted.env) == {"API_TOKEN", "REGION", "PATH", "HOME", "LANG"}
    assert hosted.program.endswith("/node_modules/.bin/mcp-server-everything")
    assert hosted.program.startswith(str(cache))


def tenant_server(tenant, entry) -> dict:
    api, instance = tenant
    created = api.post("/api/v1/mcp-servers/", {"instance": instance.pk, "name": "h1", "server_type": "hosted_stdio",
                                                "hosted_entry": entry.pk, "hosted_variables": {"API_TOKEN": "x"}},
                       format="json")
    assert created.status_code == 201, created.content
    return created.json()


def test_another_teams_hosted_server_is_not_found(tenant, cache):
    entry = installed()
    server = tenant_server(tenant, entry)
    other = get_user_model().objects.create_user("otto", password="pw-123456")
    services.team_create(name="Others", owner=other)
    assert client_for(other).get(f"/api/v1/mcp-servers/{server['id']}/processes/").status_code == 404


def test_an_entry_that_is_not_installed_makes_the_server_say_so(tenant, cache):
    entry = installed()
    server = tenant_server(tenant, entry)
    HostedStdioEntry.objects.filter(pk=entry.pk).update(state="failed", error="npm install exited with code 1")
    hosted = server_snapshot(server["id"]).hosted
    assert "is not installed (state: failed: npm install exited with code 1)" in hosted.unavailable
    assert McpServer.objects.get(pk=server["id"]).server_type == "hosted_stdio"


def test_catalogue_pages_are_staffs_and_a_failed_install_shows_its_error(cache, monkeypatch):
    from django.test import Client

    monkeypatch.setattr("console.services.hosted.enqueue_install", lambda entry_id: None)
    root = get_user_model().objects.create_superuser("root", password="pw-123456")
    services.team_create(name="Operators", owner=root)
    tina = get_user_model().objects.create_user("tina", password="pw-123456")
    services.team_create(name="Tenants", owner=tina)
    browser = Client()
    browser.force_login(tina)
    assert browser.get("/console/hosted/").status_code == 403
    assert browser.post("/console/hosted/add/", {}).status_code == 403
    browser.force_login(root)
    assert "Hosted catalogue" in browser.get("/console/hosted/").content.decode()
    bad = browser.post("/console/hosted/add/", {**ENTRY, "version": "^1.0.0", "args": "stdio", "variables": "",
                                                "max_processes": 2, "memory_mb": 512, "cpu_seconds": 60,
                                                "open_files": 64, "startup_timeout_seconds": 20,
                                                "idle_timeout_seconds": 60})
    assert bad.status_code == 400 and "Pin one exact version" in bad.content.decode()
    added = browser.post("/console/hosted/add/", {**ENTRY, "args": "stdio", "variables": json.dumps(ENTRY["variables"]),
                                                  "max_processes": 2, "memory_mb": 512, "cpu_seconds": 60,
                                                  "open_files": 64, "startup_timeout_seconds": 20,
                                                  "idle_timeout_seconds": 60})
    assert added.status_code == 302, added.content.decode()
    entry = HostedStdioEntry.objects.get(slug="everything")
    assert entry.args == ["stdio"] and entry.variables[0]["name"] == "API_TOKEN"
    HostedStdioEntry.objects.filter(pk=entry.pk).update(state="failed", error="`npm install` exited with code 1:\n"
                                                        "npm error notarget No matching version", log="$ npm install")
    page = browser.get(f"/console/hosted/{entry.pk}/").content.decode()
    assert "Failed" in page and "No matching version" in page and "Reinstall" in page
    assert browser.post(f"/console/hosted/{entry.pk}/install/").status_code == 302
    assert HostedStdioEntry.objects.get(pk=entry.pk).state == "pending"


def test_a_hosted_server_is_created_in_the_console_and_its_page_shows_entry_and_processes(tenant, cache):
    from django.test import Client

    api, instance = tenant
    entry = installed()
    browser = Client()
    browser.force_login(instance.team.memberships.get().user)
    form = browser.get(f"/console/instances/{instance.pk}/mcp/add/").content.decode()
    assert "Hosted stdio" in form and "Everything (@modelcontextprotocol/server-everything@2026.8.31)" in form
    created = browser.post(f"/console/instances/{instance.pk}/mcp/add/", {
        "name": "everything", "server_type": "hosted_stdio", "hosted_entry": entry.pk,
        "hosted_variables": "API_TOKEN=tok-123\nREGION=us", "publish": "1"})
    assert created.status_code == 302, created.content.decode()
    server = McpServer.objects.get(name="everything")
    page = browser.get(f"/console/mcp/{server.pk}/").content.decode()
    assert "badge-hosted" in page and "Hosted stdio processes" in page and "No process running" in page
    assert "tok-123" not in page and "secret set" in page
    edit = browser.get(f"/console/mcp/{server.pk}/edit/").content.decode()
    assert "REGION=us" in edit and "tok-123" not in edit
    grid = browser.get(f"/console/instances/{instance.pk}/mcp/").content.decode()
    assert "Hosted stdio" in grid
