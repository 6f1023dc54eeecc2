"""The backend MCP server of the `proxy` scenario (bench/mcp_backend_app.py) under uvicorn, from the peer's venv."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .peer import VENV
from .procs import Proc, free_port, spawn, wait_http

BENCH = Path(__file__).resolve().parents[1]


@dataclass
class McpBackend:
    workdir: Path
    processes: int = 1
    profile: str = "backend"
    port: int = 0
    path: str = "/mcp"
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, cores: str | None, log) -> None:
        self.port = free_port()
        cmd = [str(VENV / "bin" / "uvicorn"), "mcp_backend_app:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
               "--port", str(self.port), "--no-access-log", "--log-level", "warning", "--backlog", "4096"]
        self.proc = spawn("mcp-backend", cmd, log=self.workdir / "logs" / "mcp-backend.log", cores=cores,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=BENCH)
        wait_http("127.0.0.1", self.port, "/", proc=self.proc, timeout=60)
        log(f"[backend] MCP SDK server (stateless JSON) on :{self.port}{self.path}, pids {self.proc.pids()}")

    def pids(self) -> list[int]:
        return self.proc.pids() if self.proc else []

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None
