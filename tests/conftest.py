"""Shared fixtures: live servers, the REST API token, and the CI rule that missing services fail rather than skip."""
from __future__ import annotations

import os

import httpx
import pytest

from .live import in_ci, start_live


def require_redis() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        if in_ci():
            pytest.fail("REDIS_URL is not set under CI=true; this test needs Redis.")
        pytest.skip("needs Redis (set REDIS_URL)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if in_ci():
            pytest.fail(f"Redis at {url} is not reachable: {exc}")
        pytest.skip(f"Redis at {url} is not reachable")
    return url


@pytest.fixture(autouse=True)
def egress_allows_loopback_backends(settings):
    """In-process tool calls and probes reach the tests' fake backends on 127.0.0.1, as `make run` allows; the rest
    of loopback stays denied like any default-denied range (live servers get the same from tests/live.py)."""
    settings.GATEWAY_EGRESS_ALLOW = ["127.0.0.1"]
    settings.GATEWAY_EGRESS_DENY = []


@pytest.fixture(scope="session")
def demo_server():
    """`make run` in miniature: a fresh database, migrate, seed_demo, Daphne; shared by the session's tests."""
    server = start_live()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_token(demo_server) -> str:
    return demo_server.manage("create_api_token", "admin").stdout.strip()


@pytest.fixture
def api(demo_server, api_token):
    with httpx.Client(base_url=demo_server.url + "/api/v1",
                      headers={"Authorization": f"Bearer {api_token}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="session", autouse=True)
def _no_sign_in_lockouts_from_earlier_runs():
    """Sign-in failure counters (and OAuth registrations per address) live in Redis under CI: a rerun must not start
    locked out by the previous run."""
    url = os.environ.get("REDIS_URL", "")
    if url:
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=2)
            for pattern in ("*login-fail:*", "*oauth-dcr:*"):
                for key in client.scan_iter(match=pattern):
                    client.delete(key)
        except redis.RedisError:
            pass  # the tests that need Redis say so themselves
    yield


@pytest.fixture(autouse=True)
def call_records_only_where_asked(settings):
    """In-process tests share one SQLite database with the call-record flusher thread, and shared-cache SQLite
    fails a writer at once ("database is locked") instead of waiting: a batch written while the next test sets up
    its world would fail that test. Tests of call records turn them on; live servers keep the default (on)."""
    settings.GATEWAY_CALL_RECORDS = False
