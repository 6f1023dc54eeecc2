"""The children of Hosted stdio servers, driven directly: limits the kernel enforces, the installation-wide process
limit, bounded stdout lines and stderr, and the clean environment. The child is a small stdio program of the test's
own (the outside world), started exactly as an installed entry's program would be."""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from gateway.executors import upstream as up
from gateway.hosted.children import HostedRefused, registry
from gateway.readmodel import HostedConfig, HostedLimits, ServerConfig

# A line-delimited JSON-RPC server that answers initialize and `tools/call` of a few behaviours.
PROGRAM = textwrap.dedent('''
    import json, os, sys
    for line in sys.stdin:
        message = json.loads(line)
        if "id" not in message:
            continue
        method, args = message["method"], (message.get("params") or {}).get("arguments") or {}
        result = {}
        if method == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "fixture", "version": "1"}}
        elif args.get("do") == "env":
            result = {"env": dict(os.environ), "uid": os.getuid()}
        elif args.get("do") == "long":
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"x": "y" * 5000}}) + "\\n")
            sys.stdout.flush()
            continue
        elif args.get("do") == "spin":
            while True:
                pass
        elif args.get("do") == "chatter":
            for n in range(1000):
                print(f"line {n}", file=sys.stderr)
            sys.stderr.flush()
        elif args.get("do") == "files":
            handles = []
            try:
                for _ in range(100):
                    handles.append(open(os.devnull))
            except OSError as exc:
                result = {"opened": len(handles), "error": exc.strerror}
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
''')

_ids = iter(range(1000, 10_000))


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "fixture_server.py"
    path.write_text(PROGRAM)
    return path


def hosted_server(program, tmp_path, *, entry_id: int = 1, python: str = sys.executable, **limits) -> ServerConfig:
    values = {"max_processes": 5, "memory_mb": 512, "cpu_seconds": 30, "open_files": 64, "startup_timeout": 10,
              "idle_timeout": 60, **limits}
    hosted = HostedConfig(entry_id=entry_id, entry_slug="fixture", spec="pypi:fixture@1.0", program=python,
                          args=(str(program),), env={"TOKEN": "t0k", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                          cwd=str(tmp_path), shareable=False, limits=HostedLimits(**values))
    return ServerConfig(id=next(_ids), instance="default", name="fixture", description="", type="hosted_stdio",
                        enabled=True, config={}, timeout=10.0, tools={}, tool_order=(), hosted=hosted)


async def started(server: ServerConfig):
    async def nowhere(message):
        return None

    child = await registry.start(server, session_id=None, on_message=nowhere)
    await child.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
    return child


async def call(child, do: str):
    return await child.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                             "params": {"name": "x", "arguments": {"do": do}}})


async def test_the_child_sees_only_the_declared_environment(program, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/x")
    child = await started(hosted_server(program, tmp_path))
    try:
        env = (await call(child, "env"))["result"]["env"]
        assert env.get("TOKEN") == "t0k" and "DATABASE_URL" not in env and "SECRET_KEY" not in env
        assert set(env) <= {"TOKEN", "PATH", "HOME", "LC_CTYPE"}  # Python itself may set LC_CTYPE
    finally:
        await child.close()


async def test_the_installation_wide_process_limit(program, tmp_path, settings):
    settings.HOSTED_MAX_PROCESSES = 1
    first = await started(hosted_server(program, tmp_path, entry_id=11))
    try:
        with pytest.raises(HostedRefused, match=r"maximum of 1 hosted processes \(HOSTED_MAX_PROCESSES\)"):
            await started(hosted_server(program, tmp_path, entry_id=12))
    finally:
        await first.close()
    second = await started(hosted_server(program, tmp_path, entry_id=12))  # room again once the first stopped
    await second.close()


async def test_a_line_longer_than_the_limit_stops_the_child(program, tmp_path, settings):
    settings.HOSTED_MAX_LINE_BYTES = 1000
    child = await started(hosted_server(program, tmp_path))
    with pytest.raises(up.UpstreamError, match="wrote a message longer than 1000 bytes"):
        await call(child, "long")
    await child.close()
    assert not child.open_


async def test_cpu_time_and_open_files_are_the_kernels_limits(program, tmp_path):
    child = await started(hosted_server(program, tmp_path, open_files=16))
    try:
        files = (await call(child, "files"))["result"]
        assert files["error"] == "Too many open files" and files["opened"] < 16
    finally:
        await child.close()
    child = await started(hosted_server(program, tmp_path, cpu_seconds=1))
    with pytest.raises(up.UpstreamError, match=r"SIGXCPU \(CPU time limit reached\)"):
        await call(child, "spin")
    await child.close()


async def test_stderr_keeps_only_the_recent_lines(program, tmp_path, settings):
    settings.HOSTED_STDERR_LINES = 50
    child = await started(hosted_server(program, tmp_path))
    try:
        await call(child, "chatter")
        for _ in range(200):  # stderr is read alongside stdout: the last lines may come a moment after the answer
            if child.stderr and child.stderr[-1] == "line 999":
                break
            await asyncio.sleep(0.05)
        assert list(child.stderr)[-1] == "line 999" and len(child.stderr) == 50
    finally:
        await child.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a child as another user needs root")
async def test_children_run_as_hosted_user(settings):
    import pwd

    settings.HOSTED_USER = "nobody"
    home = Path(tempfile.mkdtemp(prefix="mcpgw-hosted-user-"))
    home.chmod(0o755)  # the other user reads the program and works in its HOME
    program = home / "fixture_server.py"
    program.write_text(PROGRAM)
    program.chmod(0o644)
    try:
        # The system's Python: this one lives where only its owner may look.
        child = await started(hosted_server(program, home, python=shutil.which("python3", path="/usr/bin:/bin")))
        try:
            assert (await call(child, "env"))["result"]["uid"] == pwd.getpwnam("nobody").pw_uid
        finally:
            await child.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def test_an_unknown_hosted_user_is_a_clear_refusal_that_holds_no_place(program, tmp_path, settings):
    settings.HOSTED_USER = "no-such-user-here"
    with pytest.raises(HostedRefused, match="cannot be started here"):
        await started(hosted_server(program, tmp_path, entry_id=21))
    assert not [c for c in registry.children.values() if c.hosted.entry_id == 21]
