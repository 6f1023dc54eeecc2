"""Results: a dated JSON + Markdown file under bench/results/, and the summary table in bench/README.md."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
README = BENCH / "README.md"
START, END = "<!-- summary:start -->", "<!-- summary:end -->"
AUTH_START, AUTH_END = "<!-- auth-summary:start -->", "<!-- auth-summary:end -->"
AUTH_LABELS = {"api_key": "API key", "jwt-hs256": "JWT HS256", "jwt-rs256": "JWT RS256", "oauth": "OAuth token"}
# issue 8: on/off throughput; issue 15: an OAuth token costs what an API key costs (a cache lookup, no query)
AUTH_TARGETS = {"api_key": 0.9, "jwt-hs256": 0.85, "jwt-rs256": 0.85, "oauth": 0.9}

SCENARIOS = {
    "session": "Streamable HTTP, session (2025-11-25)",
    "stateless": "Streamable HTTP, stateless (2026-07-28)",
    "sse": "HTTP+SSE (2024-11-05)",
    "peer": "peer: stateless JSON (Streamable HTTP)",
    "peer-sse": "peer: HTTP+SSE (2024-11-05)",
    "proxy": "Direct Proxy, stateless (2026-07-28)",
    "proxy-direct": "backend MCP server directly, stateless (2026-07-28)",
}
PROXY_RATIO, PROXY_ADDED_P50_MS = 0.8, 2.0  # issue 10: proxy vs direct throughput, added median latency
# The added p50 is read one call at a time. Under a closed loop that keeps a server busy, p50 is about
# concurrency ÷ throughput, so a loaded row's added p50 restates its throughput ratio (at c=256 anything
# under 0.99× would add more than 2 ms); the throughput ratio is read on the loaded rows.
PROXY_UNLOADED_C = 1
PROFILES = {"embedded": "embedded (SQLite, in-process)", "production": "production (PostgreSQL + Redis)"}


def _f(value, digits=0) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "–"
    return f"{value:,.{digits}f}"


def peer_for(row: dict, rows: list[dict]) -> dict | None:
    """The peer run a row of ours is compared with: same process count and concurrency; the peer's SSE for SSE
    when it ran, else its stateless JSON mode."""
    def find(scenario):
        return next((r for r in rows if r["target"] == "peer" and r["scenario"] == scenario
                     and r["processes"] == row["processes"] and r["concurrency"] == row["concurrency"]), None)

    if row["scenario"] == "sse":
        return find("peer-sse") or find("peer")
    return find("peer")


def comparison_rows(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        if row["target"] != "ours" or row.get("group") in ("auth", "proxy"):
            continue
        peer = peer_for(row, rows)
        out.append({
            "processes": row["processes"], "concurrency": row["concurrency"], "profile": row["profile"],
            "scenario": row["scenario"], "ours_rps": row["rps"], "ours_p99_ms": row["p99_ms"],
            "ours_errors": row["errors"], "ours_cpu_ms": row["cpu_ms_per_call"],
            "peer_scenario": peer["scenario"] if peer else None,
            "peer_rps": peer["rps"] if peer else None, "peer_p99_ms": peer["p99_ms"] if peer else None,
            "peer_errors": peer["errors"] if peer else None, "peer_cpu_ms": peer["cpu_ms_per_call"] if peer else None,
            "ratio": (row["rps"] / peer["rps"]) if peer and peer["rps"] else None,
        })
    return out


def summary_table(rows: list[dict]) -> str:
    lines = [
        "| processes | conc. | profile | ours: transport | ours req/s | peer req/s | ours/peer | p99 ours | p99 peer "
        "| errors ours/peer | CPU ms/call ours/peer |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in comparison_rows(rows):
        peer_label = "" if c["peer_scenario"] in (None, "peer") else " (SSE)"
        ratio = f"**{c['ratio']:.2f}×**" if c["ratio"] else "–"
        lines.append(
            f"| {c['processes']} | {c['concurrency']} | {c['profile']} | {SCENARIOS[c['scenario']]} "
            f"| {_f(c['ours_rps'])} | {_f(c['peer_rps'])}{peer_label} | {ratio} | {_f(c['ours_p99_ms'], 1)} ms "
            f"| {_f(c['peer_p99_ms'], 1)} ms | {c['ours_errors']}/{'–' if c['peer_errors'] is None else c['peer_errors']} "
            f"| {_f(c['ours_cpu_ms'], 2)}/{_f(c['peer_cpu_ms'], 2)} |")
    return "\n".join(lines)


def auth_rows(rows: list[dict]) -> list[dict]:
    """Authentication on vs off at the same profile, process count, concurrency and transport, from rounds run back
    to back. The ratio is the median over rounds of each round's on/off (a paired comparison: the two runs of a
    pair are seconds apart, so a slow phase of the machine lowers both); best-of-each and CPU time per call are
    shown beside it."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("group") == "auth":
            groups.setdefault((row["profile"], row["processes"], row["concurrency"], row["scenario"]), []).append(row)
    for (profile, processes, concurrency, scenario), members in groups.items():
        off = [r for r in members if r["auth"] == "off"]
        if not off:
            continue
        off_by_round = {r.get("round", 0): r for r in off}
        best_off = max(off, key=lambda r: r["rps"])
        off_cpu = min(r["cpu_ms_per_call"] for r in off)
        spread = (max(r["rps"] for r in off) / min(r["rps"] for r in off) - 1) if min(r["rps"] for r in off) else None
        for variant in AUTH_LABELS:
            on = [r for r in members if r["auth"] == variant]
            if not on:
                continue
            paired = sorted(r["rps"] / off_by_round[r.get("round", 0)]["rps"] for r in on
                            if r.get("round", 0) in off_by_round and off_by_round[r.get("round", 0)]["rps"])
            best = max(on, key=lambda r: r["rps"])
            on_cpu = min(r["cpu_ms_per_call"] for r in on)
            out.append({
                "profile": profile, "processes": processes, "concurrency": concurrency, "scenario": scenario,
                "auth": variant, "rounds": len(on), "off_rps": best_off["rps"], "on_rps": best["rps"],
                "ratio": statistics.median(paired) if paired else None,
                "paired_low": paired[0] if paired else None, "paired_high": paired[-1] if paired else None,
                "best_ratio": best["rps"] / best_off["rps"] if best_off["rps"] else None, "off_spread": spread,
                "off_cpu_ms": off_cpu, "on_cpu_ms": on_cpu,
                "cpu_ratio": off_cpu / on_cpu if on_cpu else None,
                "on_p99_ms": best["p99_ms"], "off_p99_ms": best_off["p99_ms"],
                "on_share": best["server_cpu_share"], "off_share": best_off["server_cpu_share"],
                "errors": sum(r["errors"] for r in on),
            })
    return out


def auth_table(rows: list[dict]) -> str:
    lines = [
        "| processes | conc. | profile | transport | authentication | **on/off** (median of rounds) | target "
        "| rounds' on/off low–high | best off/on req/s | best on/off | CPU ms/call off/on | off/on by CPU "
        "| p99 off/on | server's core off/on | errors | rounds | off spread |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in auth_rows(rows):
        target = AUTH_TARGETS[a["auth"]]
        met = a["ratio"] is not None and a["ratio"] >= target
        ratio = f"**{a['ratio']:.2f}×**" if a["ratio"] is not None else "–"
        cpu_ratio = f"{a['cpu_ratio']:.2f}×" if a["cpu_ratio"] is not None else "–"
        spread = f"{a['off_spread']:.0%}" if a["off_spread"] is not None else "–"
        paired = (f"{a['paired_low']:.2f}–{a['paired_high']:.2f}×" if a["paired_low"] is not None else "–")
        best = f"{a['best_ratio']:.2f}×" if a["best_ratio"] is not None else "–"
        lines.append(
            f"| {a['processes']} | {a['concurrency']} | {a['profile']} | {SCENARIOS[a['scenario']]} "
            f"| {AUTH_LABELS[a['auth']]} | {ratio} | ≥ {target:.2f}× {'✓' if met else '✗'} | {paired} "
            f"| {_f(a['off_rps'])}/{_f(a['on_rps'])} | {best} | {_f(a['off_cpu_ms'], 3)}/{_f(a['on_cpu_ms'], 3)} "
            f"| {cpu_ratio} | {_f(a['off_p99_ms'], 1)}/{_f(a['on_p99_ms'], 1)} ms "
            f"| {a['off_share']:.0%}/{a['on_share']:.0%} | {a['errors']} | {a['rounds']} | {spread} |")
    return "\n".join(lines)


def auth_targets(results: dict) -> list[str]:
    rows = auth_rows(results["scenarios"])
    out = []
    for variant, label in AUTH_LABELS.items():
        mine = [a for a in rows if a["auth"] == variant and a["ratio"] is not None]
        if not mine:
            continue
        target = AUTH_TARGETS[variant]
        worst = min(mine, key=lambda a: a["ratio"])
        met = all(a["ratio"] >= target for a in mine)
        out.append(f"- {label} on vs off ≥ {target:.2f}×: **{'met' if met else 'NOT met'}** "
                   f"({sum(a['ratio'] >= target for a in mine)}/{len(mine)} rows; lowest {worst['ratio']:.2f}× — "
                   f"{worst['profile']}, {SCENARIOS[worst['scenario']]}, {worst['processes']} proc., "
                   f"c={worst['concurrency']}).")
    return out


def proxy_rows(rows: list[dict]) -> list[dict]:
    """Per pass (process count), gateway profile and concurrency: each round's proxied run against the direct run
    beside it (seconds apart, so a change in the machine's speed touches both), the median of those, and the best
    of each beside it (other work on a shared machine only ever lowers a run)."""
    out = []
    keys = []
    for row in rows:
        key = (row.get("pair"), row["profile"], row["concurrency"])
        if row.get("group") == "proxy" and row["scenario"] == "proxy" and key not in keys:
            keys.append(key)
    for pair, profile, concurrency in keys:
        def ours(r: dict, scenario: str) -> bool:
            return (r.get("group") == "proxy" and r["scenario"] == scenario and r.get("pair") == pair
                    and r["concurrency"] == concurrency
                    and (r["profile"] if scenario == "proxy" else r.get("paired_with", profile)) == profile)
        proxied = [r for r in rows if ours(r, "proxy")]
        direct = [r for r in rows if ours(r, "proxy-direct")]
        rounds = []
        for r in proxied:
            same = next((d for d in direct if d.get("round", 0) == r.get("round", 0)), None)
            if same is not None and same["rps"]:
                rounds.append((r["rps"] / same["rps"], r["p50_ms"] - same["p50_ms"]))
        if not rounds:
            continue
        best, best_direct = max(proxied, key=lambda r: r["rps"]), max(direct, key=lambda r: r["rps"])
        out.append({"profile": profile, "processes": best["processes"], "concurrency": concurrency,
                    "rounds": len(rounds), "round_ratios": [x for x, _ in rounds],
                    "ratio": statistics.median(x for x, _ in rounds),
                    "added_p50_ms": statistics.median(y for _, y in rounds),
                    "proxy_rps": best["rps"], "direct_rps": best_direct["rps"],
                    "best_ratio": best["rps"] / best_direct["rps"] if best_direct["rps"] else None,
                    "proxy_p50_ms": min(r["p50_ms"] for r in proxied),
                    "direct_p50_ms": min(r["p50_ms"] for r in direct),
                    "proxy_cpu_ms": min(r["cpu_ms_per_call"] for r in proxied),
                    "direct_cpu_ms": min(r["cpu_ms_per_call"] for r in direct),
                    "errors": sum(r["errors"] for r in proxied + direct)})
    return out


def proxy_table(rows: list[dict]) -> str:
    lines = ["| profile | gateway proc. | conc. | rounds | **proxy/direct** (median of rounds) | rounds' ratio low–high "
             "| best proxy/direct req/s | best/best | **added p50** (median of rounds) | lowest p50 proxy/direct "
             "| CPU ms/call gateway / backend direct | errors |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for x in proxy_rows(rows):
        spread = f"{min(x['round_ratios']):.2f}–{max(x['round_ratios']):.2f}×"
        best = f"{x['best_ratio']:.2f}×" if x["best_ratio"] is not None else "–"
        lines.append(f"| {x['profile']} | {x['processes']} | {x['concurrency']} | {x['rounds']} | **{x['ratio']:.2f}×** "
                     f"| {spread} | {_f(x['proxy_rps'])}/{_f(x['direct_rps'])} | {best} "
                     f"| **{x['added_p50_ms']:+.2f} ms** | {_f(x['proxy_p50_ms'], 2)}/{_f(x['direct_p50_ms'], 2)} ms "
                     f"| {_f(x['proxy_cpu_ms'], 2)} / {_f(x['direct_cpu_ms'], 2)} | {x['errors']} |")
    return "\n".join(lines)


def proxy_targets(results: dict) -> list[str]:
    rows = proxy_rows(results["scenarios"])
    loaded = [x for x in rows if x["concurrency"] != PROXY_UNLOADED_C]
    unloaded = [x for x in rows if x["concurrency"] == PROXY_UNLOADED_C]
    out = []
    if loaded:
        ratio_ok = [x for x in loaded if x["ratio"] >= PROXY_RATIO]
        worst_ratio = min(loaded, key=lambda x: x["ratio"])
        out.append(f"- Direct Proxy throughput ≥ {PROXY_RATIO}× the backend's direct: "
                   f"**{'met' if len(ratio_ok) == len(loaded) else 'NOT met'}** ({len(ratio_ok)}/{len(loaded)} loaded "
                   f"rows; lowest {worst_ratio['ratio']:.2f}× — {worst_ratio['profile']}, c={worst_ratio['concurrency']}).")
    if unloaded:
        p50_ok = [x for x in unloaded if x["added_p50_ms"] <= PROXY_ADDED_P50_MS]
        worst_p50 = max(unloaded, key=lambda x: x["added_p50_ms"])
        out.append(f"- Direct Proxy adds ≤ {PROXY_ADDED_P50_MS:g} ms at p50 (one call at a time, c={PROXY_UNLOADED_C}): "
                   f"**{'met' if len(p50_ok) == len(unloaded) else 'NOT met'}** ({len(p50_ok)}/{len(unloaded)} rows; "
                   f"most {worst_p50['added_p50_ms']:+.2f} ms — {worst_p50['profile']}, median of "
                   f"{worst_p50['rounds']} rounds).")
    return out


def detail_table(rows: list[dict]) -> str:
    lines = [
        "| target | profile | proc. | scenario | conc. | req/s | p50 | p90 | p99 | errors | server CPU ms/call "
        "| server CPU share | peak RSS MB per process | load gen CPU | backend CPU | Redis CPU ms/call "
        "| other load (cores) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        rss = ", ".join(f"{v:.0f}" for v in r["peak_rss_mb"].values())
        errors = str(r["errors"]) + (f" {json.dumps(r['error_detail'])}" if r["errors"] else "")
        scenario = f"{r['scenario']} (auth: {r['auth']})" if r.get("group") == "auth" else r["scenario"]
        if r.get("group") == "governance":
            scenario = f"{r['scenario']} (governance: {r['variant']}, round {r['round'] + 1})"
        lines.append(
            f"| {r['target']} | {r['profile']} | {r['processes']} | {scenario} | {r['concurrency']} "
            f"| {_f(r['rps'])} | {_f(r['p50_ms'], 1)} | {_f(r['p90_ms'], 1)} | {_f(r['p99_ms'], 1)} | {errors} "
            f"| {_f(r['cpu_ms_per_call'], 2)} | {r['server_cpu_share']:.0%} | {rss} "
            f"| {r['loadgen_cpu_share']:.0%} | {r['backend_cpu_share']:.0%} "
            f"| {_f(r.get('redis_cpu_ms_per_call'), 3)} | {r.get('foreign_cpu_cores', 0):.2f} |")
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    rows = comparison_rows(results["scenarios"])
    out = []
    with_peer = [c for c in rows if c["ratio"]]
    if with_peer:
        worst = min(with_peer, key=lambda c: c["ratio"])
        met = all(c["ratio"] >= 2 for c in with_peer)
        out.append(f"- Throughput ≥ 2× the peer at equal process count: **{'met' if met else 'NOT met'}** "
                   f"({sum(c['ratio'] >= 2 for c in with_peer)}/{len(with_peer)} rows; lowest "
                   f"{worst['ratio']:.2f}× — {worst['profile']}, {SCENARIOS[worst['scenario']]}, "
                   f"{worst['processes']} proc., c={worst['concurrency']}).")
        p99 = [c for c in with_peer if c["peer_p99_ms"] is not None]
        bad = [c for c in p99 if c["ours_p99_ms"] > c["peer_p99_ms"]]
        out.append(f"- p99 ≤ the peer's: **{'met' if not bad else 'NOT met'}** ({len(p99) - len(bad)}/{len(p99)} rows).")
    out.extend(auth_targets(results))
    from . import governance

    out.extend(governance.targets(results.get("governance", [])))
    out.extend(proxy_targets(results))
    hosted = results.get("hosted")
    if hosted:
        out.append(f"- Hosted stdio ≥ {hosted['target']}× the same server over Streamable HTTP directly: "
                   f"**{'met' if hosted['met'] else 'NOT met'}** ({hosted['ratio']:.2f}×, "
                   f"{hosted['hosted']['calls_per_s']:,.0f} vs {hosted['direct']['calls_per_s']:,.0f} / "
                   f"{hosted['direct-again']['calls_per_s']:,.0f} calls/s, c={hosted['concurrency']}).")
    ours_errors = sum(r["errors"] for r in results["scenarios"] if r["target"] == "ours")
    out.append(f"- Zero errors (ours): **{'met' if ours_errors == 0 else 'NOT met'}** ({ours_errors} errors in "
               f"{sum(r['requests'] for r in results['scenarios'] if r['target'] == 'ours'):,} calls).")
    for idle in results.get("idle_sse", []):
        ok = idle["delta_mb"] <= 100 and idle["streams_open"] >= idle["streams_requested"]
        out.append(f"- {idle['streams_requested']:,} idle SSE sessions on one process ({idle['profile']}) ≤ 100 MB: "
                   f"**{'met' if ok else 'NOT met'}** (+{idle['delta_mb']} MB, {idle['streams_open']} open).")
    for change in results.get("config_change", []):
        worst = max(change["tools_list"]["max_ms"], change["tools_call"]["max_ms"])
        out.append(f"- Configuration change served within 1 s ({change['profile']}, {change['processes']} proc.): "
                   f"**{'met' if worst <= 1000 else 'NOT met'}** (worst {worst:.0f} ms).")
    return out


def markdown(results: dict) -> str:
    meta = results["meta"]
    parts = [
        f"# Benchmark run {meta['stamp']}",
        "",
        f"- Code: {'working tree at ' if meta.get('source', 'worktree') == 'worktree' else 'export of '}commit "
        f"`{meta['commit']}`{' (with uncommitted changes in gateway/ or console/)' if meta['dirty'] else ''}; "
        f"command `{meta['command']}`",
        f"- Machine: {meta['machine']['cpu']} × {meta['machine']['cores']} cores, {meta['machine']['memory_gb']} GB, "
        f"{meta['machine']['kernel']}",
        f"- Pinning: servers (all processes) on core {meta['options']['server_cores']}; wrk / SSE driver and "
        f"nginx on core {meta['options']['load_cores']}; PostgreSQL and Redis unpinned (system services).",
        f"- Each run: {meta['options']['warmup']} s warm-up, then {meta['options']['duration']} s measured; wrk -t1, "
        f"closed loop, one connection (or SSE stream) per unit of concurrency.",
        f"- Ours: {', '.join(f'{k} {v}' for k, v in meta['versions']['ours'].items())}; Daphne `-v 0` (no access log).",
        *([f"- Peer: {', '.join(f'{k} {v}' for k, v in meta['versions']['peer'].items())}; uvicorn "
           "`--no-access-log`."] if meta["versions"]["peer"] else []),
        f"- Load: {meta['versions']['wrk']}; backend {meta['versions']['nginx']}.",
        "",
        "## Targets",
        "",
        *targets(results),
        "",
        *(["## Ours vs peer", "", summary_table(results["scenarios"]), ""]
          if comparison_rows(results["scenarios"]) else []),
        *(["## Consumer Authentication on vs off", "",
           "Same run, same processes and cores, rounds of every variant back to back, each round starting one "
           "variant later (`bench`, no authentication; `bench-key`, API key; `bench-jwt`, JWT with one token per "
           "variant, so verified-token caching applies). **on/off** is the median over rounds of the round's "
           "variant against the same round's unauthenticated run, seconds apart; best-of-each and \"off/on by "
           "CPU\" (the smallest server CPU time per call of each) are shown beside it.", "",
           auth_table(results["scenarios"]), ""] if auth_rows(results["scenarios"]) else []),
        *(["## Call records and a rate limit on vs off", "",
           "Same processes and cores; rounds of off (GATEWAY_CALL_RECORDS=false, no policy) and on (records, and "
           "a policy of 1,000,000 calls a second on `bench`, checked on every call) back to back, stateless "
           "`tools/call`; the processes restart between variants and stop cleanly before the records are "
           "counted. **Lost** is the calls the gateway counted (its own /metrics) minus the records written.", "",
           _governance_table(results), ""] if results.get("governance") else []),
        *(["## Direct Proxy vs the backend directly", "",
           "`tools/call` through a Direct Proxy server (stateless 2026-07-28 client, one backend session shared by "
           "the gateway) vs the same calls straight to the backend MCP server (the MCP SDK's server, stateless "
           "JSON, on the load core), in the same run: rounds of the two back to back, every other round in the "
           "other order; each round's proxied run is compared with the direct run beside it, and the median of "
           "the rounds is the figure. The c=1 rows send one call at a time: their added p50 is "
           "what the relay adds to a call; in the loaded rows p50 is mostly queueing (about concurrency ÷ "
           "throughput).", "", proxy_table(results["scenarios"]), ""]
          if proxy_rows(results["scenarios"]) else []),
        "## Every run",
        "",
        "Latency in ms. CPU shares are of one core over the measured window (server: all its processes).",
        "",
        detail_table(results["scenarios"]),
        "",
    ]
    if results.get("idle_sse"):
        parts += ["## Idle SSE sessions (one process)", "",
                  "| profile | streams | open | RSS before | RSS held (peak) | delta | per session | after close "
                  "| fds | probes answered |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i in results["idle_sse"]:
            parts.append(f"| {i['profile']} | {i['streams_requested']} | {i['streams_open']} | {i['rss_before_mb']} MB "
                         f"| {i['rss_peak_mb']} MB | **+{i['delta_mb']} MB** | {i['kb_per_session']} KB "
                         f"| {i['rss_after_close_mb']} MB | {i['fds_held']} | {i['probes_answered']} |")
        parts.append("")
    if results.get("config_change"):
        parts += ["## Configuration change → endpoint", "",
                  "Time from sending `PUT /api/v1/mcp-servers/<id>/tools/yaml` (to process 0) until the polled "
                  "process shows the change.", "",
                  "| profile | processes | polled | PUT took (median) | tools/list shows it (median / max) "
                  "| tools/call renders it (median / max) |",
                  "|---|---:|---|---:|---:|---:|"]
        for c in results["config_change"]:
            parts.append(f"| {c['profile']} | {c['processes']} | process {c['polled_process']} "
                         f"| {c['put']['median_ms']} ms | {c['tools_list']['median_ms']} / {c['tools_list']['max_ms']} ms "
                         f"| {c['tools_call']['median_ms']} / {c['tools_call']['max_ms']} ms |")
        parts.append("")
    if results.get("profile"):
        p = results["profile"]
        parts += [f"## Profile ({p['what']})", "",
                  f"py-spy, {p['seconds']} s at {p['rate']} Hz; flame graph [`{p['svg']}`]({p['svg']}). "
                  f"Shares are of the {p['hot_spots'].get('main_thread_samples', 0):,} samples of the event-loop "
                  f"thread (of {p['hot_spots']['samples']:,} in all; the rest are thread-pool workers waiting). "
                  f"Throughput while sampled: {_f(p.get('rps'))} req/s (py-spy pauses the process per sample).", "",
                  "Innermost frame of our own code (gateway/, console/), else the library the sample is in:", "",
                  "| share | frame |", "|---:|---|"]
        parts += [f"| {h['share']:.1%} | `{h['frame']}` |" for h in p["hot_spots"]["innermost_own_frame"][:20]]
        parts += ["", "Inclusive (on the stack):", "", "| share | frame |", "|---:|---|"]
        parts += [f"| {h['share']:.1%} | `{h['frame']}` |" for h in p["hot_spots"]["inclusive"][:30]]
        parts += ["", "Self (leaf):", "", "| share | frame |", "|---:|---|"]
        parts += [f"| {h['share']:.1%} | `{h['frame']}` |" for h in p["hot_spots"]["self"][:20]]
        parts.append("")
    if results.get("notes"):
        parts += ["## Notes", "", *[f"- {n}" for n in results["notes"]], ""]
    return "\n".join(parts)


def _governance_table(results: dict) -> str:
    from . import governance

    return governance.table(results["governance"]) + "\n\n" + detail_table(results["governance"])


def write(results: dict, *, update_readme: bool, out_dir: Path | None = None) -> tuple[Path, Path]:
    out_dir = out_dir or BENCH / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["meta"]["stamp"]
    json_path = out_dir / f"{stamp}.json"
    md_path = out_dir / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(markdown(results))
    if update_readme and README.exists():
        text = README.read_text()
        meta = results["meta"]
        latest = (f"Latest run: [{stamp}](results/{stamp}.md) — commit `{meta['commit'][:10]}`, "
                  f"{meta['options']['duration']} s per run, `{meta['command']}`.")
        # A run without the peer (e.g. --only auth) leaves the peer comparison of the last full run in place.
        if START in text and END in text and any(c["ratio"] for c in comparison_rows(results["scenarios"])):
            block = "\n".join([START, latest, "", *targets(results), "", summary_table(results["scenarios"]), END])
            text = _replace_block(text, START, END, block)
        if AUTH_START in text and AUTH_END in text and auth_rows(results["scenarios"]):
            block = "\n".join([AUTH_START, latest, "", *auth_targets(results), "", auth_table(results["scenarios"]),
                               AUTH_END])
            text = _replace_block(text, AUTH_START, AUTH_END, block)
        from . import governance

        if governance.START in text and governance.END in text and governance.summary(results.get("governance", [])):
            block = "\n".join([governance.START, latest, "", *governance.targets(results["governance"]), "",
                               governance.table(results["governance"]), governance.END])
            text = _replace_block(text, governance.START, governance.END, block)
        README.write_text(text)
    return json_path, md_path


def _replace_block(text: str, start: str, end: str, block: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail
