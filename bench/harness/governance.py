"""Governance on vs off: throughput with call records and a generous rate limit, and no record lost."""
from __future__ import annotations

import statistics
import time

from .mcp import Api, Http
from .ours import PATH, VENV_BIN, Gateway
from .procs import run

VARIANTS = ("off", "on")
TARGET = 0.85  # issue 12: on/off throughput
# Generous: far above what one process serves, so the limit is checked on every call and never refuses one.
GENEROUS = {"requests": 1_000_000, "window": "second", "burst": 1_000_000}
START, END = "<!-- governance-summary:start -->", "<!-- governance-summary:end -->"


def _set_variant(gw: Gateway, variant: str) -> None:
    """Records on or off is a process setting; the limit is a policy of the `bench` server (REST API)."""
    gw.env["GATEWAY_CALL_RECORDS"] = "true" if variant == "on" else "false"


def _apply_limit(gw: Gateway, variant: str) -> None:
    api = Api(gw.private_ports[0], gw.token)
    policies = api.call("GET", f"/api/v1/mcp-servers/{gw.server_id}/rate-limits/")
    rows = policies.get("results", policies) if isinstance(policies, dict) else policies
    for policy in rows:
        api.call("DELETE", f"/api/v1/rate-limits/{policy['id']}/")
    if variant == "on":
        api.call("POST", f"/api/v1/mcp-servers/{gw.server_id}/rate-limits/", GENEROUS)
    api.http.close()
    time.sleep(0.5)  # other processes poll the configuration version every 0.25 s


def _calls_counted(gw: Gateway) -> int:
    """tools/call answered on `bench`, by every process's own /metrics (loopback may read it)."""
    total = 0
    for port in gw.private_ports:
        http = Http(port)
        status, _, body = http.request("GET", "/metrics", None, {})
        http.close()
        if status != 200:
            raise RuntimeError(f"/metrics on port {port} -> {status}")
        for line in body.decode().splitlines():
            if line.startswith("mcpgw_tool_calls_total{") and 'server="bench"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def _records(gw: Gateway) -> int:
    code = ("from console.models import CallRecord; "
            f"print(CallRecord.objects.filter(mcp_server_id={gw.server_id}).count())")
    out = run([str(VENV_BIN / "python"), "manage.py", "shell", "-c", code], env=gw.env, cwd=gw.src)
    return int(out.stdout.strip().splitlines()[-1])


def measure(args, gw: Gateway, processes: int, *, run_measured, log, **run_kw) -> list[dict]:
    """Rounds of off and on back to back (each round starting with the other), stateless tools/call at every
    concurrency; the processes restart between variants (records are a process setting) and stop cleanly
    before the records are counted."""
    rows = []
    for c in args.concurrency:
        for r in range(args.governance_rounds):
            for variant in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
                _set_variant(gw, variant)
                gw.start(processes, cores=args.server_cores, log=log)
                before = _records(gw)
                _apply_limit(gw, variant)
                gw.verify()
                row = run_measured(args, target=gw, scenario="stateless", concurrency=c, **run_kw)
                time.sleep(0.5)  # calls in flight when wrk stopped are answered
                counted = _calls_counted(gw)
                gw.stop()  # a clean shutdown writes what is still buffered
                written = _records(gw) - before
                row.update(group="governance", variant=variant, round=r, calls_counted=counted,
                           records_written=written)
                log(f"  governance {variant}: {row['rps']:.0f} req/s, gateway counted {counted} calls, "
                    f"{written} records written")
                rows.append(row)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["profile"], row["processes"], row["concurrency"]), []).append(row)
    for (profile, processes, concurrency), members in groups.items():
        off = {r["round"]: r for r in members if r["variant"] == "off"}
        on = [r for r in members if r["variant"] == "on"]
        paired = sorted(r["rps"] / off[r["round"]]["rps"] for r in on if r["round"] in off and off[r["round"]]["rps"])
        if not paired:
            continue
        lost = sum(r["calls_counted"] - r["records_written"] for r in on)
        out.append({"profile": profile, "processes": processes, "concurrency": concurrency,
                    "ratio": statistics.median(paired), "low": paired[0], "high": paired[-1],
                    "off_rps": max(r["rps"] for r in off.values()), "on_rps": max(r["rps"] for r in on),
                    "off_cpu_ms": min(r["cpu_ms_per_call"] for r in off.values()),
                    "on_cpu_ms": min(r["cpu_ms_per_call"] for r in on),
                    "records": sum(r["records_written"] for r in on), "counted": sum(r["calls_counted"] for r in on),
                    "lost": lost, "errors": sum(r["errors"] for r in members), "rounds": len(paired)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| processes | conc. | profile | **on/off** (median of rounds) | target | rounds low–high "
             "| best off/on req/s | CPU ms/call off/on | records written / calls counted | lost | errors |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summary(rows):
        met = s["ratio"] >= TARGET
        lines.append(f"| {s['processes']} | {s['concurrency']} | {s['profile']} | **{s['ratio']:.2f}×** "
                     f"| ≥ {TARGET:.2f}× {'✓' if met else '✗'} | {s['low']:.2f}–{s['high']:.2f}× "
                     f"| {s['off_rps']:,.0f}/{s['on_rps']:,.0f} | {s['off_cpu_ms']:.3f}/{s['on_cpu_ms']:.3f} "
                     f"| {s['records']:,} / {s['counted']:,} | {s['lost']} | {s['errors']} |")
    return "\n".join(lines)


def targets(rows: list[dict]) -> list[str]:
    summaries = summary(rows)
    if not summaries:
        return []
    worst = min(summaries, key=lambda s: s["ratio"])
    met = all(s["ratio"] >= TARGET for s in summaries)
    lost = sum(s["lost"] for s in summaries)
    return [f"- Call records + a generous rate limit on vs off ≥ {TARGET:.2f}×: **{'met' if met else 'NOT met'}** "
            f"(lowest {worst['ratio']:.2f}× — {worst['profile']}, {worst['processes']} proc., "
            f"c={worst['concurrency']}).",
            f"- No call record lost: **{'met' if lost == 0 else 'NOT met'}** "
            f"({sum(s['records'] for s in summaries):,} records for {sum(s['counted'] for s in summaries):,} "
            f"calls the gateway counted)."]
