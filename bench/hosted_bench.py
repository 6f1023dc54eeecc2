"""Scenario `hosted`: tools/call through a Hosted stdio server-everything vs the same server-everything over Streamable
HTTP directly, measured in the same run with the same client (target: hosted ≥ 0.7× direct).

Runs on its own (`python bench/hosted_bench.py --duration 10 --concurrency 8`) or from bench/run.py
(`--scenarios hosted`). The gateway is a live embedded-profile Daphne (tests/live.py) whose catalogue installs the
pinned server-everything into a scratch cache; each client session gets its own child, as in production.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.7
# Sessions, hence children: a few per core of the machine class bench/README.md describes.
CONCURRENCY = 4
ACCEPT = "application/json, text/event-stream"


def _answer(body: bytes, content_type: str) -> dict:
    if content_type.startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                if "id" in message and "method" not in message:
                    return message
        raise RuntimeError("no response on the stream")
    return json.loads(body)


async def _session(http, url: str) -> dict[str, str]:
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    async with http.post(url, json=init, headers={"Accept": ACCEPT}) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"initialize at {url} answered {response.status}: {body[:300]!r}")
        _answer(body, response.content_type)
        headers = {"Accept": ACCEPT, "MCP-Protocol-Version": "2025-06-18",
                   "Mcp-Session-Id": response.headers["Mcp-Session-Id"]}
    async with http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers):
        pass
    return headers


async def drive(url: str, *, concurrency: int, duration: float, warmup: float) -> dict:
    """`concurrency` sessions, each calling tools/call echo back to back; calls per second over `duration`."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as http:
        sessions = [await _session(http, url) for _ in range(concurrency)]
        counts = {"calls": 0, "errors": 0}
        first_error: list[str] = []
        latencies: list[float] = []
        measuring = False

        async def worker(headers: dict[str, str], stop: float) -> None:
            n = 0
            while time.monotonic() < stop:
                n += 1
                call = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": {"name": "echo", "arguments": {"message": f"m{n}"}}}
                sent = time.perf_counter()
                async with http.post(url, json=call, headers=headers) as response:
                    body = await response.read()
                    ok = response.status == 200 and "result" in _answer(body, response.content_type)
                if not ok and not first_error:
                    first_error.append(f"HTTP {response.status}: {body[:300].decode(errors='replace')}")
                if measuring:
                    counts["calls" if ok else "errors"] += 1
                    latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker(h, time.monotonic() + warmup) for h in sessions))
        measuring = True
        started = time.monotonic()
        await asyncio.gather(*(worker(h, started + duration) for h in sessions))
        elapsed = time.monotonic() - started
        for headers in sessions:
            async with http.delete(url, headers=headers):
                pass
    latencies.sort()
    return {"calls_per_s": round(counts["calls"] / elapsed, 1), "errors": counts["errors"],
            "first_error": first_error[0] if first_error else "",
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None}


def measure(*, duration: float = 10, warmup: float = 5, concurrency: int = CONCURRENCY, log=print) -> dict:
    import httpx

    from tests.live import free_port, start_live
    from tests.node_tools import CONFORMANCE_MANIFEST, EVERYTHING_VERSION, _check_conformance, ensure_node_tools, \
        tools_dir

    root = tools_dir()
    tools = ensure_node_tools(manifest=CONFORMANCE_MANIFEST, root=root.parent / (root.name + "-conformance"),
                              check=_check_conformance)
    scratch = Path(tempfile.mkdtemp(prefix="mcpgw-hosted-bench-"))
    port = free_port()
    env = {**tools.env(scratch), "PORT": str(port)}
    direct = subprocess.Popen([str(tools.bin_dir / "mcp-server-everything"), "streamableHttp"], env=env, cwd=scratch,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live = start_live(extra_env={"HOSTED_CACHE_DIR": str(scratch / "cache"), "HOSTED_NODE_DIR": str(tools.bin_dir),
                                 "CELERY_TASK_ALWAYS_EAGER": "1",  # the install in-process: no worker here
                                 "GATEWAY_CALL_RECORDS": os.environ.get("GATEWAY_CALL_RECORDS", "1")})
    try:
        token = live.manage("create_api_token", "admin").stdout.strip()
        api = httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        entry = api.post("/hosted-entries/", json={
            "slug": "everything", "title": "Everything", "runtime": "npm",
            "package": "@modelcontextprotocol/server-everything", "version": EVERYTHING_VERSION,
            "command": "mcp-server-everything", "args": ["stdio"], "max_processes": max(concurrency, 10)}).json()
        log(f"hosted: installing {EVERYTHING_VERSION} into the gateway's cache")
        deadline = time.monotonic() + 600
        while (state := api.get(f"/hosted-entries/{entry['id']}/").json())["state"] not in ("installed", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError("the install did not finish within 600 s")
            time.sleep(0.5)
        if state["state"] != "installed":
            raise RuntimeError(f"the install failed: {state['error']}")
        instance = api.get("/instances/").json()["results"][0]["id"]
        server = api.post("/mcp-servers/", json={"instance": instance, "name": "everything-hosted",
                                                 "server_type": "hosted_stdio", "hosted_entry": entry["id"]}).json()
        hosted_url = live.url + server["endpoints"]["streamable_http"]
        direct_url = f"http://127.0.0.1:{port}/mcp"
        # Direct first, then hosted, then direct again: a drift of the machine's speed shows as two direct figures.
        rows = {}
        for label, url in (("direct", direct_url), ("hosted", hosted_url), ("direct-again", direct_url)):
            rows[label] = asyncio.run(drive(url, concurrency=concurrency, duration=duration, warmup=warmup))
            log(f"hosted: {label:12} c={concurrency} {rows[label]['calls_per_s']:8.1f} calls/s  "
                f"p50 {rows[label]['p50_ms']} ms  p99 {rows[label]['p99_ms']} ms  errors {rows[label]['errors']} "
                f"{rows[label]['first_error']}")
        baseline = (rows["direct"]["calls_per_s"] + rows["direct-again"]["calls_per_s"]) / 2
        ratio = rows["hosted"]["calls_per_s"] / baseline if baseline else 0.0
        result = {"scenario": "hosted", "concurrency": concurrency, "duration": duration, **rows,
                  "ratio": round(ratio, 3), "target": TARGET_RATIO,
                  "met": ratio >= TARGET_RATIO and not any(row["errors"] for row in rows.values())}
        log(f"hosted: hosted / direct = {ratio:.2f}x (target ≥ {TARGET_RATIO}x): {'met' if result['met'] else 'MISSED'}")
        return result
    finally:
        live.stop()
        direct.terminate()
        direct.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    result = measure(duration=args.duration, warmup=args.warmup, concurrency=args.concurrency)
    out = ROOT / "bench" / "results" / f"hosted-{time.strftime('%Y-%m-%dT%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
