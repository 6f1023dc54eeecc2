"""Imports on a real Celery worker process with the Redis broker: the production profile's path.

A worker that dies in the middle of a job gives it back to the broker (acks_late, reject_on_worker_lost): it is
run again from its stored input and finishes, never left `running`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from console import services
from console.models import ImportJob
from console.services import imports as import_services

from ..conftest import require_redis
from ..loopback_json import LoopbackJson
from .helpers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.live]

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"openapi": "3.0.3", "info": {"title": "Worker pets", "version": "1"},
        "servers": [{"url": "https://pets.invalid"}],
        "paths": {"/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}}}}}


def _database_url() -> str:
    """The test database, for the worker process to use the same rows."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker(settings):
    redis_url = require_redis()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from console.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "DATABASE_URL": _database_url(),
           "REDIS_URL": redis_url, "CELERY_TASK_ALWAYS_EAGER": "false", "GATEWAY_EGRESS_ALLOW": "127.0.0.1",
           "GATEWAY_EGRESS_DENY": ""}
    log = open(ROOT / "var" / f"test-celery-worker-{os.getpid()}.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "console", "worker",
                             "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO", "--without-gossip",
                             "--without-mingle", "--without-heartbeat"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _server():
    owner = get_user_model().objects.create_user("worker-owner", password="pw-123456")
    team = services.team_create(name="Worker team", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name="worker-inst")
    return owner, services.mcp_server_create(actor=owner, instance=instance, name="pets")


def test_an_import_runs_on_the_worker(worker):
    owner, server = _server()
    job = import_services.import_job_create(actor=owner, mcp_server=server,
                                            files=[("pets.json", json.dumps(SPEC).encode())])
    job = wait_for(job.pk, timeout=90)
    assert job.status == "succeeded", job.errors
    assert [row["name"] for row in job.preview["tools"]] == ["listPets"]
    assert job.attempts == 1


class _SlowOnce:
    """The description's answer: hangs on the first request (the worker is killed meanwhile), at once afterwards."""

    def __init__(self):
        self.calls = 0

    def __call__(self, path: str) -> dict:
        self.calls += 1
        if self.calls == 1:
            time.sleep(30)
        return SPEC


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def test_a_worker_killed_mid_job_leaves_it_retried_not_running(worker):
    slow = _SlowOnce()
    spec_server = LoopbackJson(slow)
    try:
        owner, server = _server()
        url = spec_server.url + "/openapi.json"
        job = import_services.import_job_create(actor=owner, mcp_server=server, url=url)
        deadline = time.monotonic() + 60
        while slow.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ImportJob.objects.get(pk=job.pk).status == "running"
        for child in _children(worker.pid):  # the pool process running the job dies without a word
            os.kill(child, signal.SIGKILL)
        job = wait_for(job.pk, timeout=90)
        assert job.status == "succeeded", job.errors
        assert job.attempts == 2 and slow.calls == 2
    finally:
        spec_server.stop()
