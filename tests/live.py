"""Real server processes for end-to-end tests: a fresh database, migrate, seed_demo, then Daphne on a free port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database_url() -> tuple[str, callable]:
    """A new, empty database of the kind DATABASE_URL names (SQLite file when unset) and a function to drop it."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        import psycopg

        name = "mcpgw_live_" + uuid.uuid4().hex[:10]
        root, _, _ = base.rpartition("/")
        with psycopg.connect(root + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(root + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return f"{root}/{name}", drop
    directory = tempfile.mkdtemp(prefix="mcpgw-live-")
    return f"sqlite:///{directory}/db.sqlite3", lambda: None


@dataclass
class LiveServer:
    """One or more Daphne processes sharing one database (and Redis when REDIS_URL is set)."""

    env: dict[str, str]
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    drop_db: callable = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def url_of(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              check=check, timeout=120)

    def start_process(self, port: int) -> None:
        log = Path(tempfile.mkstemp(prefix=f"daphne-{port}-", suffix=".log")[1])
        handle = log.open("w")
        proc = subprocess.Popen([str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "console.asgi:application"],
                                cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        self.ports.append(port)
        self.procs.append(proc)
        self.logs.append(log)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"Daphne exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Daphne did not come up on {port}:\n{log.read_text()}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.drop_db:
            try:
                self.drop_db()
            except Exception:  # a leftover test database is not worth failing the run for
                pass

    def log_text(self) -> str:
        return "\n".join(path.read_text() for path in self.logs)


def start_live(*, processes: int = 1, extra_env: dict[str, str] | None = None) -> LiveServer:
    db_url, drop = fresh_database_url()
    env = dict(os.environ)
    env.update({"DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "console.settings", "ADMIN_PASSWORD": "admin-pass-1",
                "PYTHONUNBUFFERED": "1", "DATA_DIR": tempfile.mkdtemp(prefix="mcpgw-data-"),
                # The seeded demo API and the tests' fake backends listen on 127.0.0.1, which the egress policy
                # denies unless allowed; other loopback addresses stay denied (tests rely on 127.0.0.2 being so).
                "GATEWAY_EGRESS_ALLOW": "127.0.0.1", "GATEWAY_EGRESS_DENY": ""})
    env.update(extra_env or {})
    server = LiveServer(env=env, drop_db=drop)
    port = free_port()
    try:
        server.manage("migrate", "--noinput", "-v0")
        server.manage("seed_demo", "--host", "127.0.0.1", "--port", str(port))
        server.start_process(port)
        for _ in range(processes - 1):
            server.start_process(free_port())
    except Exception:
        server.stop()
        raise
    return server
