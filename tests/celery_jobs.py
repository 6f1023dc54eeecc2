"""A job for the worker-loss test: it notes each start and its end in Redis, and takes a while in between."""
from __future__ import annotations

import time

import redis

from console.celery import app
from console.jobs import JobTask


@app.task(bind=True, base=JobTask, name="tests.slow_job")
def slow_job(self, url: str, key: str, seconds: float) -> str:
    client = redis.Redis.from_url(url)
    client.rpush(key, "started")
    time.sleep(seconds)
    client.rpush(key, "done")
    return "done"
