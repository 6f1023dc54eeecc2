"""Driving load: wrk with a Lua script for the request/response transports, bench/sse_driver.py for SSE;
the server's CPU and memory are read from /proc around the measured window."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .procs import CLK_TCK, Sampler, core_times, cpu_seconds, pinned, raise_nofile

BENCH = Path(__file__).resolve().parents[1]
LUA = BENCH / "lua"
DRIVER = BENCH / "sse_driver.py"


@dataclass
class Observed:
    """What /proc said about the processes around one measured window."""

    server_cpu_s: float = 0.0
    backend_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    core_busy: dict[int, float] = field(default_factory=dict)  # share of each core that was busy
    peak_rss_kb: dict[str, int] = field(default_factory=dict)


class Watch:
    """CPU time of server, backend and Redis processes over a window, and each server process's peak RSS."""

    def __init__(self, server_pids: dict[str, int], backend_pids: list[int], redis_pids: list[int]):
        self.server_pids = server_pids
        self.backend_pids = backend_pids
        self.redis_pids = redis_pids
        self.sampler = Sampler(server_pids)
        self.observed = Observed()

    def begin(self) -> None:
        self._cores = core_times()
        self._t = (cpu_seconds(list(self.server_pids.values())), cpu_seconds(self.backend_pids),
                   cpu_seconds(self.redis_pids))

    def end(self) -> None:
        now = (cpu_seconds(list(self.server_pids.values())), cpu_seconds(self.backend_pids),
               cpu_seconds(self.redis_pids))
        cores = core_times()
        self.observed.core_busy = {
            core: round((busy - self._cores[core][0]) / max(1, total - self._cores[core][1]), 3)
            for core, (busy, total) in cores.items() if core in self._cores}
        self.observed.server_cpu_s = now[0] - self._t[0]
        self.observed.backend_cpu_s = now[1] - self._t[1]
        self.observed.redis_cpu_s = now[2] - self._t[2]

    def __enter__(self) -> "Watch":
        self.sampler.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.sampler.__exit__(*exc)
        self.observed.peak_rss_kb = dict(self.sampler.peak_kb)


def wrk(*, script: str, port: int, path: str, connections: int, duration: float, cores: str | None,
        env_extra: dict[str, str] | None = None, watch: Watch | None = None) -> dict:
    """One wrk run; returns the Lua summary plus wrk's own CPU time. `watch` brackets exactly this run."""
    binary = shutil.which("wrk") or "wrk"
    cmd = pinned([binary, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
                  "--timeout", "10s", "-s", str(LUA / script), f"http://127.0.0.1:{port}{path}"], cores)
    env = dict(os.environ, BENCH_LUA_DIR=str(LUA), BENCH_PATH=path, **(env_extra or {}))
    with tempfile.TemporaryFile() as out:
        if watch:
            watch.begin()
        started = time.monotonic()
        popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=raise_nofile)
        _, status, usage = os.wait4(popen.pid, 0)
        popen.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        if watch:
            watch.end()
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    summary = None
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            summary = json.loads(line[len("BENCH_JSON "):])
    if summary is None or popen.returncode != 0:
        raise RuntimeError(f"wrk failed ({popen.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    seconds = summary["duration_us"] / 1e6
    errors = (summary["bad_status"] + summary["bad_body"] + summary["connect_errors"] + summary["read_errors"]
              + summary["write_errors"] + summary["timeouts"])
    return {
        "tool": "wrk",
        "requests": summary["requests"], "ok": summary["ok"], "duration_s": seconds,
        "rps": summary["ok"] / seconds, "errors": errors,
        "error_detail": {k: summary[k] for k in ("bad_status", "bad_body", "connect_errors", "read_errors",
                                                  "write_errors", "timeouts") if summary[k]},
        "p50_ms": summary["p50_us"] / 1000, "p90_ms": summary["p90_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000, "mean_ms": summary["lat_mean_us"] / 1000,
        "loadgen_cpu_s": usage.ru_utime + usage.ru_stime,
        "loadgen_cpu_share": (usage.ru_utime + usage.ru_stime) / wall,
    }


def sse_driver(*, python: str, url: str, streams: int, duration: float, warmup: float, cores: str | None,
               watch: Watch | None = None, timeout: float = 10.0) -> dict:
    """One closed-loop SSE run; `watch` brackets the driver's measured window (it prints MARK lines)."""
    cmd = pinned([python, str(DRIVER), "load", "--url", url, "--streams", str(streams), "--duration",
                  str(duration), "--warmup", str(warmup), "--timeout", str(timeout)], cores)
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=raise_nofile)
    lines = []
    result = None
    for line in popen.stdout:
        lines.append(line)
        if line.startswith("MARK start") and watch:
            watch.begin()
        elif line.startswith("MARK end") and watch:
            watch.end()
        elif line.startswith("BENCH_JSON "):
            result = json.loads(line[len("BENCH_JSON "):])
    popen.wait()
    if result is None or popen.returncode != 0:
        raise RuntimeError(f"SSE driver failed ({popen.returncode}): {' '.join(cmd)}\n{''.join(lines)[-3000:]}")
    errors = sum(result["errors"].values()) + result["open_failures"]
    return {
        "tool": "sse_driver",
        "requests": result["requests"], "ok": result["ok"], "duration_s": result["duration_s"],
        "rps": result["rps"], "errors": errors,
        "error_detail": {**{k: v for k, v in result["errors"].items() if v},
                         **({"open_failures": result["open_failures"]} if result["open_failures"] else {}),
                         **({"samples": result["error_samples"] + result["open_failure_samples"]}
                            if errors else {})},
        "p50_ms": result["p50_ms"], "p90_ms": result["p90_ms"], "p99_ms": result["p99_ms"],
        "mean_ms": result["mean_ms"], "loadgen_cpu_s": result["driver_cpu_s"],
        "loadgen_cpu_share": result["driver_cpu_share"], "driver_event_loop": result["event_loop"],
    }


def finish(result: dict, watch: Watch) -> dict:
    """Add the server-side figures to a load result."""
    o = watch.observed
    seconds = result["duration_s"] or 1.0
    calls = max(result["ok"], 1)
    result.update({
        "server_cpu_s": round(o.server_cpu_s, 3),
        "server_cpu_share": o.server_cpu_s / seconds,
        "cpu_ms_per_call": o.server_cpu_s * 1000 / calls,
        "backend_cpu_share": o.backend_cpu_s / seconds,
        "redis_cpu_ms_per_call": (o.redis_cpu_s * 1000 / calls) if watch.redis_pids else None,
        "core_busy": o.core_busy,
        # Cores' busy time not accounted for by the server, load generator, nginx or Redis: other work on the
        # machine during the window (in cores; 0.1 = a tenth of a core). Large values make a run suspect.
        "foreign_cpu_cores": round(max(0.0, sum(o.core_busy.values()) - (o.server_cpu_s + o.backend_cpu_s
                                   + o.redis_cpu_s) / seconds - result["loadgen_cpu_s"] / seconds), 3),
        "peak_rss_mb": {name: round(kb / 1024, 1) for name, kb in o.peak_rss_kb.items()},
        "cpu_resolution_ms": 1000 / CLK_TCK,
    })
    return result
