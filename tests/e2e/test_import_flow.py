"""Add Tool → Swagger File in a real browser: import, live progress, preview, deselect, confirm, call, re-import.

The description is the built-in demo API's own (/demo-api/openapi.json), served here by a slow loopback server so
the page is open while the job runs and its progress arrives over the WebSocket.
"""
from __future__ import annotations

import http.server
import json
import re
import threading
import time

import httpx
import pytest
import yaml
from playwright.sync_api import expect

from ..live import start_live
from .conftest import ARTIFACTS, shot
from .test_console_flow import text_of, with_sdk

pytestmark = [pytest.mark.live, pytest.mark.browser]


@pytest.fixture(scope="module")
def import_server():
    # Imports run in-process here (the embedded default) even where REDIS_URL is set: this server starts no worker.
    server = start_live(extra_env={"CELERY_TASK_ALWAYS_EAGER": "true"})
    yield server
    server.stop()


class _Slow(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        time.sleep(2.0)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_spec(import_server):
    _Slow.body = httpx.get(import_server.url + "/demo-api/openapi.json", timeout=10).content
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/openapi.json"
    server.shutdown()


@pytest.fixture
def page(chromium, import_server, request):
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, base_url=import_server.url)
    context.set_default_timeout(20_000)
    browser_page = context.new_page()
    errors: list[str] = []
    browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_page.js_errors = errors
    yield browser_page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


def _new_server(live) -> int:
    token = live.manage("create_api_token", "admin").stdout.strip()
    api = httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    instance = next(i for i in api.get("/instances/").json()["results"] if i["name"] == "default")
    service = next(s for s in api.get("/services/").json()["results"] if s["instance"] == instance["id"])
    created = api.post("/mcp-servers/", json={"instance": instance["id"], "name": "imported",
                                              "backend_service": service["id"]})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _sign_in(page) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-pass-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/"))


def test_swagger_import_from_upload_to_live_tools_and_back(page, import_server, slow_spec, tmp_path):
    server_id = _new_server(import_server)
    endpoint = import_server.url + "/instances/default/mcp-servers/imported"
    frames: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(json.loads(data))))
    _sign_in(page)

    # Add Tool → Swagger File, by URL: the page follows the running job live.
    page.goto(f"/console/mcp/{server_id}/tools/add/")
    page.get_by_role("link", name="Swagger File (recommended)").click()
    expect(page.get_by_role("heading", name="Recent imports")).to_be_visible()
    page.get_by_label("…or its URL").fill(slow_spec)
    page.get_by_role("button", name="Import").click()
    expect(page).to_have_url(re.compile(r"/console/imports/\d+/$"))
    expect(page.locator("#job-status")).to_have_text(re.compile("queued|running"))
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert [f["status"] for f in frames][-1] == "succeeded"
    assert "running" in [f["status"] for f in frames], frames  # progress arrived while the job ran
    shot(page, "import-01-preview")

    # The preview: every operation, all selected (a small API); deselect one, give the backend key, confirm.
    table = page.locator("#preview-table")
    for name in ("listPets", "createPet", "getPet", "updatePet", "patchPet", "deletePet"):
        expect(table.get_by_label(f"Apply {name}")).to_be_checked()
    table.get_by_label("Apply deletePet").uncheck()
    expect(page.locator("#selected-count")).to_have_text("5")
    expect(page.get_by_text("API key in header X-API-Key")).to_be_visible()
    page.get_by_label("Secret for DemoKey").fill("demo-key")
    page.get_by_role("button", name="Confirm and apply").click()
    expect(page).to_have_url(re.compile(rf"/console/mcp/{server_id}/tools/$"))
    expect(page.get_by_role("status")).to_contain_text("Import applied: 5 created")
    shot(page, "import-02-tools")

    # The tools answer on the endpoint at once, through the demo API with the confirmed key.
    async def use(session):
        listed = sorted(t.name for t in (await session.list_tools()).tools)
        result = await session.call_tool("listPets", {})
        return listed, result

    listed, result = with_sdk(endpoint, use)
    assert listed == ["createPet", "getPet", "listPets", "patchPet", "updatePet"]
    assert not result.is_error, text_of(result)
    assert json.loads(text_of(result)) == json.loads(httpx.get(
        import_server.url + "/demo-api/pets", headers={"X-API-Key": "demo-key"}, timeout=10).content)

    # Re-import a changed description from a file: the diff, then apply only the removal and the addition.
    doc = json.loads(_Slow.body)
    doc["paths"]["/pets/{petId}"]["get"]["summary"] = "Fetch one pet"
    del doc["paths"]["/pets/{petId}"]["patch"]
    changed = tmp_path / "pets.yaml"
    changed.write_text(yaml.safe_dump(doc))
    page.goto(f"/console/mcp/{server_id}/imports/")
    page.get_by_label("Upload files").set_input_files(str(changed))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    rows = {f'{row.get_attribute("data-path")} {row.locator("td").nth(2).inner_text()}':
            row.get_attribute("data-status") for row in table.locator("tbody tr").all()}
    assert rows == {"/pets GET": "unchanged", "/pets POST": "unchanged", "/pets/{petId} GET": "changed",
                    "/pets/{petId} PUT": "unchanged", "/pets/{petId} DELETE": "added",
                    "/pets/{petId} PATCH": "removed"}
    shot(page, "import-03-diff")
    table.get_by_label("Apply getPet").uncheck()
    table.get_by_label("Apply patchPet").check()
    page.get_by_role("button", name="Confirm and apply").click()
    expect(page.get_by_role("status")).to_contain_text("Import applied: 1 created, 1 removed")

    listed, _ = with_sdk(endpoint, use)
    assert listed == ["createPet", "deletePet", "getPet", "listPets", "updatePet"]
    assert page.js_errors == []
