"""Starting the bridge as a client would: as a child process speaking newline-delimited JSON-RPC on stdin/stdout."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from ..live import ROOT


def initialize_line(msg_id=0, version: str = "2025-11-25") -> str:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}})


def params(*args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    """`python -m gateway.local <args>` (what the `mcp-gateway` script runs), with only `env` added to the SDK's
    default environment: nothing else of the test's leaks in."""
    return StdioServerParameters(command=sys.executable, args=["-m", "gateway.local", *args], env=env or {},
                                 cwd=str(ROOT))


class ErrLog:
    """The bridge's stderr, kept in a file (the SDK hands the child a real file descriptor) and readable after."""

    def __init__(self) -> None:
        self.file = tempfile.NamedTemporaryFile("w+", prefix="bridge-stderr-", suffix=".log", delete=False)
        self.path = Path(self.file.name)

    def text(self) -> str:
        return self.path.read_text()


@contextlib.asynccontextmanager
async def stdio_session(*args: str, env: dict[str, str] | None = None, **callbacks):
    """The official SDK's stdio client in front of the bridge; yields (session, its stderr)."""
    errlog = ErrLog()
    try:
        async with stdio_client(params(*args, env=env), errlog=errlog.file) as (read, write):
            async with ClientSession(read, write, **callbacks) as session:
                yield session, errlog
    finally:
        errlog.file.close()


def stderr_of(errlog: ErrLog) -> str:
    return errlog.text()


def run(*args: str, lines: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, list, str]:
    """The bridge fed `lines` and then end of input; (exit status, every stdout line parsed, stderr).

    Parsing every line is the point: stdout must carry JSON-RPC and nothing else."""
    done = subprocess.run([sys.executable, "-m", "gateway.local", *args], input="".join(l + "\n" for l in lines),
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
                               **(env or {})})
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


class Raw:
    """The bridge as a child process, driven line by line (for cancellation and other exact sequences)."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> "Raw":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.local", *args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={"PATH": os.environ.get("PATH", ""), **(env or {})}, limit=16 * 1024 * 1024)
        return cls(proc)

    async def send(self, message: dict | str) -> None:
        line = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def receive(self, timeout: float = 30) -> dict:
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert line, "the bridge closed stdout"
        return json.loads(line)

    async def answer_to(self, msg_id, timeout: float = 30) -> dict:
        while True:
            message = await self.receive(timeout)
            if message.get("id") == msg_id and "method" not in message:
                return message

    async def close(self) -> tuple[int, str]:
        self.proc.stdin.close()
        rest = await asyncio.wait_for(self.proc.stdout.read(), 20)
        for line in rest.splitlines():
            json.loads(line)
        err = await self.proc.stderr.read()
        return await self.proc.wait(), err.decode()


