"""The peer (FastMCP's OpenAPI server under uvicorn) in a venv of its own, so its pinned `mcp` cannot touch ours."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Proc, free_port, run, spawn, wait_http

BENCH = Path(__file__).resolve().parents[1]
VENV = BENCH / ".venv-peer"
PY = VENV / "bin" / "python"
# fastmcp 4.1.x needs a certifi newer than the index here offers; 4.0.11 installs (reference/peers.md).
# uvicorn[standard] gives the peer uvloop and httptools, its fastest configuration; aiohttp and uvloop also
# serve bench/sse_driver.py, which runs from this venv.
REQUIREMENTS = ["fastmcp==4.0.11", "uvicorn[standard]", "aiohttp"]
MARKER = VENV / ".bench-installed"


def ensure_venv(log) -> None:
    wanted = "\n".join(REQUIREMENTS)
    if MARKER.exists() and MARKER.read_text() == wanted and PY.exists():
        return
    if not PY.exists():
        log("creating bench/.venv-peer")
        base = getattr(sys, "_base_executable", sys.executable)
        run([base, "-m", "venv", str(VENV)])
    log(f"installing into bench/.venv-peer: {' '.join(REQUIREMENTS)}")
    run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS], timeout=1200)
    MARKER.write_text(wanted)


def versions() -> dict[str, str]:
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            "['fastmcp', 'mcp', 'httpx2', 'uvicorn', 'uvloop', 'httptools']}))")
    if not PY.exists():  # a run without the peer and without SSE (--only auth) never makes its venv
        return {}
    out = subprocess.run([str(PY), "-c", code], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {}


@dataclass
class Peer:
    transport: str  # "http" (stateless JSON) | "sse"
    workdir: Path
    backend_url: str
    processes: int = 1
    port: int = 0
    proc: Proc | None = None
    path: str = "/mcp"
    extra: list[str] = field(default_factory=list)

    def start(self, *, cores: str | None, log) -> None:
        if self.transport == "sse" and self.processes != 1:
            raise ValueError("the peer's SSE sessions live in one process's memory: one process only")
        self.port = free_port()
        env = dict(os.environ, BENCH_BACKEND_URL=self.backend_url, PEER_TRANSPORT=self.transport,
                   PYTHONUNBUFFERED="1")
        cmd = [str(VENV / "bin" / "uvicorn"), "peer_app:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.processes), "--no-access-log",
               "--log-level", "warning", "--backlog", "4096"]
        name = f"peer-{self.transport}"
        self.proc = spawn(name, cmd, log=self.workdir / "logs" / f"{name}-{self.processes}.log", cores=cores,
                          env=env, cwd=BENCH)
        self.path = "/sse" if self.transport == "sse" else "/mcp"
        wait_http("127.0.0.1", self.port, "/", proc=self.proc, timeout=60)
        if self.processes > 1:  # workers come up after the supervisor binds; wait until all are there
            deadline = time.monotonic() + 60
            while len(self.proc.pids()) < self.processes + 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
        log(f"[peer {self.transport}] uvicorn --workers {self.processes} on :{self.port}, pids {self.proc.pids()}")

    def pids(self) -> list[int]:
        return self.proc.pids() if self.proc else []

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None
