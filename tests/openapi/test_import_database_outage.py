"""An import whose worker loses the database mid-job: retried with backoff once it returns, never left `running`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from console.models import ImportJob
from console.services import imports as import_services

from ..conftest import require_redis
from ..loopback_json import LoopbackJson
from ..outages import Relay, require_postgres
from .helpers import wait_for
from .test_celery_worker import ROOT, SPEC, _database_url, _server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.live, pytest.mark.postgres]


class _HeldSpec:
    """The description's answer; the first request waits until the test lets it go (the database is cut meanwhile)."""

    def __init__(self):
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, path: str) -> dict:
        self.calls += 1
        if self.calls == 1:
            self.release.wait(60)
        return SPEC


@pytest.fixture
def relayed_worker(settings):
    """A Celery worker whose database connections pass through a relay the test can cut."""
    require_postgres()
    redis_url = require_redis()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from console.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    parts = urlsplit(_database_url())
    relay = Relay(parts.hostname, parts.port or 5432)
    relay.open()
    relayed = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[0] + f"@127.0.0.1:{relay.port}"))
    log_path = ROOT / "var" / f"test-celery-relayed-worker-{os.getpid()}.log"
    log = open(log_path, "w")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "DATABASE_URL": relayed,
           "DATABASE_CONNECT_TIMEOUT": "2", "REDIS_URL": redis_url, "CELERY_TASK_ALWAYS_EAGER": "false",
           "GATEWAY_EGRESS_ALLOW": "127.0.0.1", "GATEWAY_EGRESS_DENY": ""}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "console", "worker", "--concurrency", "1", "--pool",
                             "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield relay, log_path
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    relay.cut()


def test_an_import_that_loses_the_database_is_retried_and_finishes(relayed_worker):
    relay, log_path = relayed_worker
    held = _HeldSpec()
    spec_server = LoopbackJson(held)
    try:
        owner, server = _server()
        url = spec_server.url + "/openapi.json"
        job = import_services.import_job_create(actor=owner, mcp_server=server, url=url)
        deadline = time.monotonic() + 60
        while held.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ImportJob.objects.get(pk=job.pk).status == "running"

        relay.cut()  # the worker's next write (the conversion's progress, then the result) cannot reach PostgreSQL
        held.release.set()
        deadline = time.monotonic() + 60
        while "Retry in" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Retry in" in log_path.read_text()
        assert ImportJob.objects.get(pk=job.pk).status == "running"  # what the worker could not write
        relay.open()

        job = wait_for(job.pk, timeout=120)
        assert job.status == "succeeded", job.errors
        assert [row["name"] for row in job.preview["tools"]] == ["listPets"]
        assert job.attempts == 2 and held.calls == 2
    finally:
        held.release.set()
        spec_server.stop()
