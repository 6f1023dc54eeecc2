"""Live progress over the WebSocket, through the real ASGI application: the job's own team only."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from console import services
from console.asgi import application
from console.models import ImportJob
from console.services.imports import group_name, job_state

pytestmark = pytest.mark.django_db(transaction=True)


def _world():
    users, cookies = [], []
    for name in ("ann", "eve"):
        user = get_user_model().objects.create_user(name, password="pw-123456")
        services.team_create(name=f"Team {name}", owner=user)
        client = Client()
        client.force_login(user)
        users.append(user)
        cookies.append(client.cookies["sessionid"].value)
    instance = services.instance_create(actor=users[0], team=users[0].team_memberships.first().team, name="inst")
    server = services.mcp_server_create(actor=users[0], instance=instance, name="pets")
    job = ImportJob.objects.create(mcp_server=server, status="running", step="converting", percent=40,
                                   source_kind="text")
    return job, cookies


def _socket(job_id: int, cookie: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/imports/{job_id}/",
                                 headers=[(b"cookie", f"sessionid={cookie}".encode()), (b"host", b"testserver")])


async def test_the_page_gets_the_state_then_each_progress_message():
    job, (ann, _) = await sync_to_async(_world)()
    socket = _socket(job.pk, ann)
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_json_from(timeout=5)
    assert first["status"] == "running" and first["progress"] == {"step": "converting", "percent": 40}
    job.status, job.step, job.percent = "succeeded", "done", 100
    await get_channel_layer().group_send(group_name(job.pk), {"type": "import.progress", "job": job_state(job)})
    assert (await socket.receive_json_from(timeout=5))["status"] == "succeeded"
    await socket.disconnect()


async def test_another_team_and_no_session_are_refused():
    job, (_, eve) = await sync_to_async(_world)()
    for cookie in (eve, "not-a-session"):
        connected, code = await _socket(job.pk, cookie).connect()
        assert not connected and code == 4404
