"""Measurements that are not throughput: memory held by idle SSE sessions, how fast a configuration change
reaches the endpoint, and a py-spy profile of the gateway under load."""
from __future__ import annotations

import collections
import json
import re
import statistics
import subprocess
import time
from pathlib import Path

from .mcp import Http, stateless
from .ours import PATH, SSE_PATH, Gateway, tools_yaml
from .procs import pinned, raise_nofile, rss_kb, status_kb

BENCH = Path(__file__).resolve().parents[1]
DRIVER = BENCH / "sse_driver.py"


def _warm(port: int) -> None:
    """A few calls and SSE streams first, so lazy imports and first-use caches are not counted as session cost."""
    http = Http(port)
    for _ in range(50):
        stateless(http, PATH, "tools/call", {"name": "getPet", "arguments": {"petId": 1}}, name="getPet")
    http.close()


def idle_sse(gw: Gateway, *, streams: int, python: str, cores: str | None, hold: float, log) -> dict:
    """One fresh Daphne process; RSS before, while `streams` SSE sessions sit idle, and after they close."""
    proc, port = gw.procs[0], gw.private_ports[0]
    _warm(port)
    cmd = pinned([python, str(DRIVER), "idle", "--url", f"http://127.0.0.1:{port}{SSE_PATH}",
                  "--streams", "20"], cores)
    # Warm the SSE path too (20 streams opened and closed).
    subprocess.run(cmd, input="", capture_output=True, text=True, timeout=60, preexec_fn=raise_nofile)
    time.sleep(1.0)
    before = rss_kb(proc.pid)
    cmd = pinned([python, str(DRIVER), "idle", "--url", f"http://127.0.0.1:{port}{SSE_PATH}",
                  "--streams", str(streams)], cores)
    popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=raise_nofile)
    ready = None
    lines = []
    for line in popen.stdout:
        lines.append(line)
        if line.startswith("READY "):
            ready = json.loads(line[6:])
            break
    if ready is None:
        popen.kill()
        raise RuntimeError("idle SSE driver failed:\n" + "".join(lines)[-2000:])
    peak = 0
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        peak = max(peak, rss_kb(proc.pid))
        time.sleep(0.2)
    held = rss_kb(proc.pid)
    fds = len(list(Path(f"/proc/{proc.pid}/fd").iterdir()))
    out, _ = popen.communicate(input="", timeout=120)
    final = None
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            final = json.loads(line[len("BENCH_JSON "):])
    time.sleep(2.0)
    after = rss_kb(proc.pid)
    result = {
        "profile": gw.profile, "streams_requested": streams, "streams_open": ready["streams_open"],
        "open_failures": ready["open_failures"], "opened_in_s": ready["opened_in_s"],
        "rss_before_mb": round(before / 1024, 1), "rss_held_mb": round(held / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1), "rss_after_close_mb": round(after / 1024, 1),
        "delta_mb": round((peak - before) / 1024, 1),
        "kb_per_session": round((peak - before) / max(1, ready["streams_open"]), 1),
        "fds_held": fds, "vm_hwm_mb": round(status_kb(proc.pid, "VmHWM") / 1024, 1),
        "still_open_at_end": (final or {}).get("still_open"),
        "probes_answered": f"{(final or {}).get('probes_answered')}/{(final or {}).get('probes')}",
    }
    log(f"[{gw.profile}] idle SSE: {result['streams_open']}/{streams} streams, RSS {result['rss_before_mb']} -> "
        f"{result['rss_peak_mb']} MB (+{result['delta_mb']} MB, {result['kb_per_session']} KB/session)")
    return result


def config_change(gw: Gateway, *, repeats: int, log) -> dict:
    """PUT a changed tool YAML to one process; poll another (with Redis) until the change shows.

    Two views of "served": tools/list shows a new description, and tools/call renders a new template."""
    api_port = gw.private_ports[0]
    poll_port = gw.private_ports[-1]
    poll = Http(poll_port)
    list_ms, call_ms, put_ms = [], [], []
    for i in range(1, repeats + 1):
        description = f"Fetch one pet by its id (rev {i}, {time.time_ns()})."
        label = f"v{i}-{time.time_ns() % 100000}"
        text = tools_yaml(gw.backend_url, description=description, label=label)
        t0 = time.perf_counter()
        gw.put_tools(text, port=api_port)
        t_put = time.perf_counter()
        seen_list = seen_call = None
        deadline = t0 + 10.0
        while (seen_list is None or seen_call is None) and time.perf_counter() < deadline:
            if seen_list is None:
                status, message = stateless(poll, PATH, "tools/list")
                tools = ((message or {}).get("result") or {}).get("tools") or []
                if any(t.get("description") == description for t in tools):
                    seen_list = time.perf_counter()
            if seen_call is None:
                status, message = stateless(poll, PATH, "tools/call",
                                            {"name": "getPetLabel", "arguments": {"petId": 1}}, name="getPetLabel")
                if label in json.dumps(message or {}):
                    seen_call = time.perf_counter()
        put_ms.append((t_put - t0) * 1000)
        list_ms.append((seen_list - t0) * 1000 if seen_list else float("inf"))
        call_ms.append((seen_call - t0) * 1000 if seen_call else float("inf"))
        time.sleep(0.3)
    poll.close()

    def summary(values: list[float]) -> dict:
        return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1),
                "all_ms": [round(v, 1) for v in values]}

    result = {"profile": gw.profile, "processes": len(gw.procs), "api_port_process": 0,
              "polled_process": len(gw.procs) - 1, "repeats": repeats, "put": summary(put_ms),
              "tools_list": summary(list_ms), "tools_call": summary(call_ms)}
    log(f"[{gw.profile} x{len(gw.procs)}] config change: tools/list {result['tools_list']['median_ms']} ms "
        f"(max {result['tools_list']['max_ms']}), tools/call {result['tools_call']['median_ms']} ms "
        f"(max {result['tools_call']['max_ms']}), from PUT sent")
    return result


# ---------------------------------------------------------------- py-spy

def ensure_py_spy(venv_bin: Path, log) -> Path:
    binary = venv_bin / "py-spy"
    if not binary.exists():
        log("installing py-spy into the project venv (for the profile only)")
        subprocess.run([str(venv_bin / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "py-spy"], check=True, capture_output=True)
    return binary


def py_spy(binary: Path, pid: int, *, seconds: int, svg: Path, raw: Path, cores: str | None) -> list:
    """Two samplers at once: a flame graph for people, collapsed stacks for the numbers. Each pauses the
    process for a moment per sample (py-spy's default) so stacks are whole; throughput drops while sampled."""
    base = [str(binary), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100"]
    procs = [subprocess.Popen(pinned(base + ["--format", "flamegraph", "-o", str(svg)], cores),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
             subprocess.Popen(pinned(base + ["--format", "raw", "-o", str(raw)], cores),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    return procs


_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def hot_spots(raw: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares by function from py-spy's collapsed stacks, over the event-loop
    (main) thread only: py-spy counts a pool thread blocked on its queue as busy, which would drown the rest."""
    self_counts: collections.Counter = collections.Counter()
    incl_counts: collections.Counter = collections.Counter()
    own_counts: collections.Counter = collections.Counter()
    total = main = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if not frames[0].startswith("<module>"):
            continue
        main += n
        frames = [_short(f) for f in frames]
        self_counts[frames[-1]] += n
        for frame in set(frames):
            incl_counts[frame] += n
        # Each sample goes to the innermost frame of our own code, else to the library the sample is in.
        owner = next((f for f in reversed(frames) if "(gateway/" in f or "(console/" in f), None)
        if owner is None:
            lib = frames[-1].rsplit("(", 1)[-1].split("/")[0].rstrip(")")
            owner = f"[{lib}]"
        own_counts[owner] += n

    def table(counter: collections.Counter) -> list[dict]:
        return [{"frame": f, "samples": c, "share": round(c / max(main, 1), 4)} for f, c in counter.most_common(top)]

    return {"samples": total, "main_thread_samples": main, "self": table(self_counts),
            "inclusive": table(incl_counts), "innermost_own_frame": table(own_counts)}
