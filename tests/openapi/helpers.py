"""Setting up an import as a user does (through the services) and calling tools through the gateway."""
from __future__ import annotations

import time

from django.contrib.auth import get_user_model

from console import services
from console.models import ImportJob, McpServer
from console.services import imports as import_services
from gateway import protocol as p

ACCEPT = "application/json, text/event-stream"


def wait_for(job_id: int, timeout: float = 60.0) -> ImportJob:
    """The job once it has finished (it runs in the background, as on the page)."""
    deadline = time.monotonic() + timeout
    job = ImportJob.objects.get(pk=job_id)
    while time.monotonic() < deadline:
        job = ImportJob.objects.get(pk=job_id)
        if job.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED):
            return job
        time.sleep(0.05)
    raise AssertionError(f"import {job_id} still {job.status} after {timeout} s")


def server_with_backend(backend_url: str, index: int) -> tuple[object, McpServer]:
    owner = get_user_model().objects.create_user(f"owner{index}", password="pw-123456")
    team = services.team_create(name=f"Team {index}", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name=f"inst{index}")
    backend = services.service_create(actor=owner, instance=instance, name="api", base_url=backend_url)
    server = services.mcp_server_create(actor=owner, instance=instance, name=f"srv{index}", backend_service=backend)
    return owner, server


def import_files(owner, server: McpServer, files: list[tuple[str, bytes]]) -> ImportJob:
    job = import_services.import_job_create(actor=owner, mcp_server=server, files=files)
    job = wait_for(job.pk)
    assert job.status == "succeeded", job.errors
    return job


def rpc(method: str, params: dict) -> dict:
    params = {**params, "_meta": {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}}
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def headers(method: str, name: str | None = None) -> dict[str, str]:
    out = {"accept": ACCEPT, "mcp-protocol-version": p.V2026_07_28, "mcp-method": method}
    if name:
        out["mcp-name"] = name
    return out


async def list_tools(client, url: str) -> dict[str, dict]:
    tools: dict[str, dict] = {}
    cursor = None
    while True:
        listed = (await client.post(url, json=rpc("tools/list", {"cursor": cursor} if cursor else {}),
                                    headers=headers("tools/list"))).json()["result"]
        tools.update((t["name"], t) for t in listed["tools"])
        cursor = listed.get("nextCursor")
        if not cursor:
            return tools


async def call(client, url: str, name: str, arguments: dict) -> dict:
    answer = await client.post(url, json=rpc("tools/call", {"name": name, "arguments": arguments}),
                               headers=headers("tools/call", name))
    return answer.json()["result"]
