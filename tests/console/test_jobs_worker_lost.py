"""A Celery worker process killed mid-job: the job is handed out again and finishes (late acknowledgement)."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from ..live import BIN, ROOT
from ..outages import OwnRedis

pytestmark = [pytest.mark.live, pytest.mark.redis]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def test_a_job_whose_worker_process_is_killed_runs_again_and_finishes():
    broker = OwnRedis()
    broker.start()
    data = tempfile.mkdtemp(prefix="mcpgw-worker-")
    env = {**os.environ, "REDIS_URL": broker.url, "CELERY_BROKER_URL": broker.url, "DATA_DIR": data,
           "DATABASE_URL": f"sqlite:///{data}/db.sqlite3", "DJANGO_SETTINGS_MODULE": "console.settings"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    log = Path(data) / "worker.log"
    worker = subprocess.Popen([str(BIN / "celery"), "-A", "console", "worker", "-I", "tests.celery_jobs",
                               "--concurrency", "1", "--loglevel", "INFO", "--without-heartbeat", "--without-gossip",
                               "--without-mingle"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(broker.url)
    key = "job-run:" + uuid.uuid4().hex
    try:
        sender = Celery("console", broker=broker.url)
        sender.send_task("tests.slow_job", args=[broker.url, key, 3])
        deadline = time.monotonic() + 60
        while client.llen(key) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.lrange(key, 0, -1) == [b"started"], log.read_text()

        pool = _children(worker.pid)
        assert len(pool) == 1, pool
        os.kill(pool[0], signal.SIGKILL)  # the process running the job dies mid-job

        while client.llen(key) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Handed out again to the worker's next process, and finished there: nothing lost.
        assert client.lrange(key, 0, -1) == [b"started", b"started", b"done"], log.read_text()
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        broker.stop()
    assert "WorkerLostError" in log.read_text()
