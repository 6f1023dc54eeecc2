"""`make bench`: our gateway vs FastMCP's OpenAPI server, same backend, same process count, same cores.

Starts nginx (the REST backend), our gateway in each profile and the peer, drives tools/call with wrk
(Streamable HTTP) and bench/sse_driver.py (HTTP+SSE), measures idle SSE memory and configuration-change
latency, writes bench/results/<date>.{json,md} and the summary table in bench/README.md.
See bench/README.md for what each scenario means.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import governance as governance_bench, load, probes, report  # noqa: E402
from harness.backend import ensure_packages, start_nginx  # noqa: E402
from harness.mcp import Http, initialize  # noqa: E402
from harness.mcp_backend import McpBackend  # noqa: E402
from harness.ours import AUTH_VARIANTS, PATH, PROXY_PATH, ROOT, SSE_PATH, VENV_BIN, Gateway  # noqa: E402
from harness.peer import Peer, ensure_venv, versions as peer_versions  # noqa: E402
from harness.procs import busy_cores, pid_of, raise_nofile  # noqa: E402

BENCH = Path(__file__).resolve().parent
ALL_SCENARIOS = ("session", "stateless", "sse", "peer", "peer-sse", "auth", "governance", "proxy", "hosted")
AUTH_TRANSPORTS = ("stateless", "session")
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: 5 s runs, concurrency 32, one process, every scenario once")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 12; quick 5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each run (default 3; quick 1)")
    parser.add_argument("--concurrency", help="comma-separated connections/streams (default 16,64,256; quick 32)")
    parser.add_argument("--processes", help="comma-separated process counts (default 1,2; quick 1); more than one "
                                            "process runs the production profile only")
    parser.add_argument("--profiles", default="embedded,production", help="embedded,production")
    parser.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help=",".join(ALL_SCENARIOS))
    parser.add_argument("--governance-rounds", type=int, help="rounds of the governance scenario: each runs call "
                                                              "records + limit off and on once (default 3; quick 2)")
    parser.add_argument("--only", choices=["auth", "governance"],
                        help="auth: only Consumer Authentication on vs off (no peer, no idle SSE, no configuration "
                             "probe); e.g. --quick --only auth")
    parser.add_argument("--auth-transports", help="transports of the auth scenario (default stateless,session; "
                                                  "quick stateless)")
    parser.add_argument("--auth-rounds", type=int, help="rounds of the auth scenario: each runs off, API key, JWT "
                                                        "HS256, JWT RS256 once (default 3; quick 2)")
    parser.add_argument("--idle-sse", type=int, default=1000, help="idle SSE sessions to hold (0: skip)")
    parser.add_argument("--idle-hold", type=float, default=5.0, help="seconds to hold them while sampling RSS")
    parser.add_argument("--proxy-rounds", type=int, help="rounds of the proxy scenario: each runs the proxied and the "
                                                          "direct calls back to back (default 3; quick 2)")
    parser.add_argument("--config-repeats", type=int, help="configuration changes to time (default 5; quick 3; 0: skip)")
    parser.add_argument("--profile", action="store_true",
                        help="also record a py-spy profile of one Daphne process under stateless load")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--server-cores", default="0", help="cores for every server process (taskset list)")
    parser.add_argument("--load-cores", default="1", help="cores for wrk, the SSE driver and nginx")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
                        help="Redis for the production profile (a database of its own)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server; the run creates a database there and drops it afterwards")
    parser.add_argument("--quiet-below", type=float, default=0.3,
                        help="before each run, wait (up to --quiet-wait s) until other work on the machine uses "
                             "less than this many cores")
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait before one run at most")
    parser.add_argument("--quiet-budget", type=float, help="seconds to wait in the whole run at most (default 300; quick 60)")
    parser.add_argument("--max-other", type=float, default=0.3,
                        help="repeat a run (up to --retries times) when other work used more cores than this")
    parser.add_argument("--retries", type=int, default=2, help="repeats of one run at most")
    parser.add_argument("--retry-budget", type=int, help="repeats in the whole run at most (default 10; quick 3)")
    parser.add_argument("--source", default="worktree",
                        help="code to measure: the working tree (default), or a git revision (e.g. HEAD) exported "
                             "to the run's work directory so edits made during the run cannot change it")
    parser.add_argument("--app", default="console.asgi:application",
                        help="ASGI application Daphne serves; other values are experiments from bench/experiments "
                             "(results then go to bench/results/tmp/ and the README is left alone)")
    parser.add_argument("--report-only", metavar="RESULTS_JSON",
                        help="re-render the Markdown file and the README summary from a results JSON, run nothing")
    parser.add_argument("--no-readme", action="store_true", help="do not update the summary table in bench/README.md")
    parser.add_argument("--keep-tmp", action="store_true", help="keep bench/results/tmp/<run> (logs, SQLite, nginx)")
    args = parser.parse_args()
    quick = args.quick
    args.duration = args.duration or (5.0 if quick else 12.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.concurrency = [int(c) for c in (args.concurrency or ("32" if quick else "16,64,256")).split(",")]
    args.processes = [int(n) for n in (args.processes or ("1" if quick else "1,2")).split(",")]
    args.profiles = [p for p in args.profiles.split(",") if p]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.quiet_budget = args.quiet_budget if args.quiet_budget is not None else (60.0 if quick else 300.0)
    args.retry_budget = args.retry_budget if args.retry_budget is not None else (3 if quick else 10)
    args.config_repeats = args.config_repeats if args.config_repeats is not None else (3 if quick else 5)
    if args.only == "auth":
        args.scenarios, args.idle_sse, args.config_repeats = ["auth"], 0, 0
    if args.only == "governance":
        args.scenarios, args.idle_sse, args.config_repeats = ["governance"], 0, 0
    args.governance_rounds = max(1, args.governance_rounds or (2 if quick else 3))
    args.auth_rounds = max(1, args.auth_rounds or (2 if quick else 3))
    args.proxy_rounds = max(1, args.proxy_rounds or (2 if quick else 3))
    args.auth_transports = [t for t in (args.auth_transports or ("stateless" if quick else ",".join(AUTH_TRANSPORTS)))
                            .split(",") if t]
    unknown = (set(args.scenarios) - set(ALL_SCENARIOS) or set(args.profiles) - {"embedded", "production"}
               or set(args.auth_transports) - set(AUTH_TRANSPORTS))
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    return args


# ---------------------------------------------------------------- context for the report

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def our_versions() -> dict:
    names = ["Django", "daphne", "Twisted", "channels", "aiohttp", "redis", "psycopg"]
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- one measured run

def server_pid_names(target) -> dict[str, int]:
    if isinstance(target, Gateway):
        return {p.name: p.pid for p in target.procs}
    pids = target.pids()
    if len(pids) == 1:
        return {"uvicorn": pids[0]}
    names = {"uvicorn-supervisor": pids[0]}
    workers = 0
    for pid in pids[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"resource_tracker" in cmdline:  # multiprocessing's helper, started by uvicorn's supervisor
            names["mp-resource-tracker"] = pid
        else:
            names[f"uvicorn-worker-{workers}"] = pid
            workers += 1
    return names


def wait_quiet(args) -> float:
    """Other jobs may share this machine: start a run when it is (nearly) idle, within a waiting budget."""
    started = time.monotonic()
    deadline = started + min(args.quiet_wait, max(0.0, args.quiet_budget))
    waited = 0
    while True:
        busy = busy_cores(1.0)
        if busy < args.quiet_below or time.monotonic() > deadline:
            args.quiet_budget -= time.monotonic() - started - 1.0
            return busy
        if waited % 5 == 0:
            log(f"  waiting: other work is using {busy:.2f} cores")
        waited += 1


def run_measured(args, **kw) -> dict:
    """run_one, repeated when other work on the machine disturbed it; the least disturbed attempt is kept."""
    attempts = []
    for attempt in range(1 + max(0, args.retries)):
        if attempt and args.retry_budget <= 0:
            break
        if attempt:
            args.retry_budget -= 1
        background = wait_quiet(args)
        row = run_one(args, **kw)
        row["background_cores_before"] = round(background, 2)
        row["attempt"] = attempt + 1
        attempts.append(row)
        # Other work mostly lands on the load core; it matters when the servers did not get their core.
        if row["foreign_cpu_cores"] <= args.max_other or row["server_cpu_share"] >= 0.95:
            break
        log(f"  other work used {row['foreign_cpu_cores']:.2f} cores and the servers got "
            f"{row['server_cpu_share']:.0%} of their core: repeating")
    return max(attempts, key=lambda r: r["server_cpu_share"] - r["foreign_cpu_cores"])


def proxy_rounds(args, gateways: dict, n: int, mcp_backend) -> list[tuple[object, list[tuple[str, int, str]]]]:
    """The proxy pair as rounds: each round runs the gateway's proxied calls and the backend's direct ones back to
    back, every other round in the other order, so a change in the machine's speed lowers both alike."""
    if mcp_backend is None:
        return []
    out: list[tuple[object, list[tuple[str, int, str]]]] = []
    for profile, gw in gateways.items():
        if n > 1 and profile != "production" or not gw.procs:
            continue
        for r in range(args.proxy_rounds):
            pair = [(gw, [("proxy", r, profile)]), (mcp_backend, [("proxy-direct", r, profile)])]
            out += pair if r % 2 == 0 else pair[::-1]
    return out


def run_one(args, *, target, scenario: str, concurrency: int, nginx_pid: int, peer_python: str,
            auth: str | None = None, round: int = 0, mcp_backend: McpBackend | None = None, pair: int = 0) -> dict:
    """One measured run; `auth` (a variant of AUTH_VARIANTS) drives that variant's server with its credential."""
    processes = len(target.procs) if isinstance(target, Gateway) else target.processes
    redis_pids = pid_of("redis-server") if isinstance(target, Gateway) and target.profile == "production" else []
    # Behind the proxy the backend is the MCP server, not nginx.
    backend_pids = mcp_backend.pids() if scenario == "proxy" and mcp_backend else [nginx_pid]
    watch = load.Watch(server_pid_names(target), backend_pids, redis_pids)
    if scenario in ("sse", "peer-sse"):
        path = SSE_PATH if scenario == "sse" else target.path
        with watch:
            result = load.sse_driver(python=peer_python, url=f"http://127.0.0.1:{target.port}{path}",
                                     streams=concurrency, duration=args.duration, warmup=args.warmup,
                                     cores=args.load_cores, watch=watch)
    else:
        env = {}
        path = {"peer": getattr(target, "path", PATH), "proxy": PROXY_PATH,
                "proxy-direct": getattr(target, "path", PATH)}.get(scenario, PATH)
        headers: dict[str, str] = {}
        if auth is not None:
            path, headers = target.auth[auth]
            for name, value in headers.items():
                env.update(BENCH_AUTH_HEADER=name, BENCH_AUTH_VALUE=value)
        if scenario == "session":
            http = Http(target.port)
            env["BENCH_SESSIONS"] = ",".join(initialize(http, path, headers) for _ in range(concurrency))
            http.close()
        script = {"session": "session.lua", "stateless": "stateless.lua", "peer": "peer.lua",
                  "proxy": "stateless.lua", "proxy-direct": "stateless.lua"}[scenario]
        common = dict(script=script, port=target.port, path=path, connections=concurrency, cores=args.load_cores,
                      env_extra=env)
        if args.warmup:
            load.wrk(duration=args.warmup, **common)
        with watch:
            result = load.wrk(duration=args.duration, watch=watch, **common)
    load.finish(result, watch)
    row = {"target": "peer" if isinstance(target, Peer) else "backend" if isinstance(target, McpBackend) else "ours",
           "profile": target.profile if isinstance(target, (Gateway, McpBackend)) else "peer",
           "processes": processes, "scenario": scenario, "concurrency": concurrency, **result}
    if auth is not None:
        row.update(group="auth", auth=auth, round=round)
    if scenario in ("proxy", "proxy-direct"):
        row.update(group="proxy", pair=pair, round=round)
    label = f"{scenario}/{auth}" if auth is not None else scenario
    log(f"  {row['target']:4} {row['profile']:10} x{processes} {label:9} c={concurrency:<4} "
        f"{row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.1f}  p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  "
        f"cpu {row['cpu_ms_per_call']:.2f} ms/call ({row['server_cpu_share']:.0%})  "
        f"load gen {row['loadgen_cpu_share']:.0%}  nginx {row['backend_cpu_share']:.0%}  "
        f"other {row['foreign_cpu_cores']:.2f} cores")
    return row


# ---------------------------------------------------------------- the whole run

def scan_logs(logs: Path) -> list[str]:
    """Exceptions the servers logged (our Daphne processes and the peer), counted by type and message."""
    import collections
    import re

    pattern = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.{0,120})")
    found: collections.Counter = collections.Counter()
    for path in sorted(logs.glob("*.log")):
        if path.name == "nginx.log":
            continue
        server = path.stem.rsplit("-", 1)[0] if "daphne" in path.stem else path.stem
        for line in path.read_text(errors="replace").splitlines():
            m = pattern.match(line)
            if m:
                found[(server, m.group(1), m.group(2))] += 1
    return [f"{server} logged {n:,}× `{kind}: {message}` (warm-ups included)"
            for (server, kind, message), n in found.most_common(10)]


def report_only(args) -> int:
    path = Path(args.report_only)
    results = json.loads(path.read_text())
    logs = ROOT / "bench" / "results" / "tmp" / results["meta"]["stamp"] / "logs"
    if logs.exists():
        results["notes"] = [n for n in results.get("notes", []) if " logged " not in n] + scan_logs(logs)
    profile = results.get("profile")
    if profile and profile.get("raw") and (ROOT / profile["raw"]).exists():
        profile["hot_spots"] = probes.hot_spots(ROOT / profile["raw"])
    json_path, md_path = report.write(results, update_readme=not args.no_readme, out_dir=path.parent)
    log(f"rewrote {md_path} and {json_path.name}")
    return 0


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run like Ctrl-C: servers stopped, databases dropped, results written


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupted)
    if args.report_only:
        return report_only(args)
    raise_nofile()
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M")
    workdir = BENCH / "results" / "tmp" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    command = "bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    log(f"run {stamp}: {command}; work files in {workdir.relative_to(ROOT)}")

    ensure_packages(log)
    want_peer = any(s.startswith("peer") for s in args.scenarios)
    if want_peer or "sse" in args.scenarios or args.idle_sse or "proxy" in args.scenarios:
        ensure_venv(log)  # the SSE driver runs from the peer's venv too (uvloop)
    peer_python = str(BENCH / ".venv-peer" / "bin" / "python")

    results: dict = {
        "meta": {
            "stamp": stamp, "command": command, "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "gateway", "console")),
            "machine": machine(),
            "versions": {"ours": our_versions(), "peer": peer_versions(),
                         "wrk": tool_version(["wrk", "-v"]), "nginx": tool_version(["nginx", "-v"])},
            "options": {"duration": args.duration, "warmup": args.warmup, "concurrency": args.concurrency,
                        "processes": args.processes, "profiles": args.profiles, "scenarios": args.scenarios,
                        "auth_transports": args.auth_transports, "auth_rounds": args.auth_rounds,
                        "server_cores": args.server_cores, "load_cores": args.load_cores},
        },
        "scenarios": [], "idle_sse": [], "config_change": [], "notes": [], "governance": [],
    }
    src = ROOT
    if args.source != "worktree":
        src = workdir / "src"
        src.mkdir()
        archive = subprocess.run(["git", "archive", args.source], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        results["meta"]["commit"] = git("rev-parse", args.source)
        results["meta"]["dirty"] = False
        log(f"measuring {args.source} ({results['meta']['commit'][:10]}) exported to {src.relative_to(ROOT)}")
    results["meta"]["source"] = args.source
    nginx, backend_url = start_nginx(workdir, cores=args.load_cores)
    log(f"nginx on {backend_url} (pid {nginx.pid}, core {args.load_cores})")

    gateways: dict[str, Gateway] = {}
    peers: list[Peer] = []
    failed = False
    mcp_backend = None
    try:
        if "proxy" in args.scenarios:
            # The backend MCP server on the load cores, the gateway on its own: each measured on its core.
            mcp_backend = McpBackend(workdir)
            mcp_backend.start(cores=args.load_cores, log=log)
        for profile in args.profiles:
            gw = Gateway(profile=profile, workdir=workdir, backend_url=backend_url, redis_url=args.redis_url,
                         pg_url=args.pg_url, src=src, app=args.app)
            gateways[profile] = gw
            gw.prepare(log)

        configured: set[str] = set()
        for n in args.processes:
            targets: list[tuple[object, list[str]]] = []
            ours_scenarios = [s for s in args.scenarios if s in ("session", "stateless", "sse")]
            for profile, gw in gateways.items():
                if n > 1 and profile != "production":
                    continue
                gw.start(n, cores=args.server_cores, log=log)
                if profile not in configured:
                    gw.configure(log)
                    if "auth" in args.scenarios:
                        gw.configure_auth(log)
                    configured.add(profile)
                gw.verify()
                if "auth" in args.scenarios:
                    gw.verify_auth()
                if mcp_backend is not None and f"proxy-{profile}" not in configured:
                    gw.configure_proxy(mcp_backend.url, log)
                    configured.add(f"proxy-{profile}")
                targets.append((gw, ours_scenarios + (["auth"] if "auth" in args.scenarios else [])))
            if "peer" in args.scenarios:
                peer = Peer("http", workdir, backend_url, processes=n)
                peer.start(cores=args.server_cores, log=log)
                peers.append(peer)
                targets.append((peer, ["peer"]))
            if "peer-sse" in args.scenarios and n == 1:
                peer_sse = Peer("sse", workdir, backend_url, processes=1)
                peer_sse.start(cores=args.server_cores, log=log)
                peers.append(peer_sse)
                targets.append((peer_sse, ["peer-sse"]))

            # The proxy pair also runs one call at a time: what the relay adds to a call, without queueing.
            unloaded = [report.PROXY_UNLOADED_C] if mcp_backend is not None and \
                report.PROXY_UNLOADED_C not in args.concurrency else []
            for c in args.concurrency + unloaded:
                for target, scenarios in targets + proxy_rounds(args, gateways, n, mcp_backend):
                    if c in unloaded and not (scenarios and isinstance(scenarios[0], tuple)):
                        continue  # one call at a time: only the proxy rounds (their runs are tuples)
                    runs = []
                    for scenario in scenarios:
                        if isinstance(scenario, tuple):  # (scenario, round, profile paired): a proxy round
                            runs.append((scenario[0], None, scenario[1], scenario[2]))
                            continue
                        if scenario != "auth":
                            runs.append((scenario, None, 0, None))
                            continue
                        # Rounds of every variant back to back, each round starting one variant later: a
                        # change of the machine's speed during the run touches all variants alike and favours
                        # no position in a round; each round's variants are compared with its own "off".
                        for transport in args.auth_transports:
                            for r in range(args.auth_rounds):
                                shift = r % len(AUTH_VARIANTS)
                                order = AUTH_VARIANTS[shift:] + AUTH_VARIANTS[:shift]
                                runs += [(transport, variant, r, None) for variant in order]
                    for scenario, auth, round_, paired in runs:
                        try:
                            row = run_measured(args, target=target, scenario=scenario, concurrency=c,
                                               nginx_pid=nginx.pid, peer_python=peer_python, auth=auth,
                                               round=round_, mcp_backend=mcp_backend, pair=n)
                        except Exception as exc:
                            failed = True
                            name = getattr(target, "profile", "peer")
                            label = f"{scenario}/{auth}" if auth else scenario
                            log(f"  FAILED {name} x{n} {label} c={c}: {exc}")
                            results["notes"].append(f"{name} x{n} {label} c={c} failed: {str(exc)[:500]}")
                            continue
                        if paired is not None:
                            row["paired_with"] = paired  # the gateway profile this proxy round compares
                        results["scenarios"].append(row)

            if args.config_repeats:
                for profile, gw in gateways.items():
                    if gw.procs and (profile == "embedded" or n == max(args.processes)):
                        results["config_change"].append(probes.config_change(gw, repeats=args.config_repeats, log=log))

            if args.profile and n == 1 and gateways:
                gw = gateways.get("embedded") or next(iter(gateways.values()))
                results["profile"] = profile_gateway(args, gw, stamp)

            for gw in gateways.values():
                gw.stop()
            for peer in peers:
                peer.stop()
            peers.clear()

        if "governance" in args.scenarios:
            for n in args.processes:
                for profile, gw in gateways.items():
                    if n > 1 and profile != "production":
                        continue
                    if profile not in configured:
                        gw.start(n, cores=args.server_cores, log=log)
                        gw.configure(log)
                        configured.add(profile)
                        gw.stop()
                    try:
                        results["governance"] += governance_bench.measure(
                            args, gw, n, run_measured=run_measured, log=log, nginx_pid=nginx.pid,
                            peer_python=peer_python)
                    except Exception as exc:
                        failed = True
                        gw.stop()
                        log(f"  FAILED {profile} x{n} governance: {exc}")
                        results["notes"].append(f"{profile} x{n} governance failed: {str(exc)[:500]}")
        if "hosted" in args.scenarios:
            # A gateway of its own (tests/live.py) with the catalogue's server-everything, against that server direct.
            import hosted_bench

            try:
                hosted = hosted_bench.measure(duration=args.duration, warmup=args.warmup,
                                              concurrency=hosted_bench.CONCURRENCY, log=log)
                results["hosted"] = hosted
                results["notes"].append(
                    f"hosted: tools/call through a Hosted stdio server-everything at {hosted['ratio']}x of the same "
                    f"server over Streamable HTTP directly (target >= {hosted_bench.TARGET_RATIO}x, "
                    f"c={hosted['concurrency']}): {hosted['hosted']['calls_per_s']} vs "
                    f"{hosted['direct']['calls_per_s']} / {hosted['direct-again']['calls_per_s']} calls/s.")
            except Exception as exc:
                failed = True
                log(f"  FAILED hosted: {exc}")
                results["notes"].append(f"hosted failed: {str(exc)[:500]}")
        if args.idle_sse:
            for profile, gw in gateways.items():
                gw.start(1, cores=args.server_cores, log=log)
                if profile not in configured:
                    gw.configure(log)
                    configured.add(profile)
                results["idle_sse"].append(probes.idle_sse(gw, streams=args.idle_sse, python=peer_python,
                                                           cores=args.load_cores, hold=args.idle_hold, log=log))
                gw.stop()
    except KeyboardInterrupt:
        failed = True
        results["notes"].append("interrupted")
    finally:
        for peer in peers:
            peer.stop()
        if mcp_backend is not None:
            mcp_backend.stop()
        for gw in gateways.values():
            gw.cleanup()
        nginx.stop()

    results["notes"].extend(scan_logs(workdir / "logs"))
    if "sse" in args.scenarios and "peer-sse" in args.scenarios and any(n > 1 for n in args.processes):
        results["notes"].append("The peer's SSE sessions live in one process's memory, so its SSE runs use one "
                                "process; with more processes our SSE is compared with the peer's stateless JSON.")
    if not want_peer:
        results["notes"].append("The peer was not run (--scenarios without peer): no ratios to the peer.")
    experiment = args.app != "console.asgi:application"
    if experiment:
        results["notes"].append(f"Experiment: Daphne served {args.app} (bench/experiments), not the product as is.")
    json_path, md_path = report.write(
        results, update_readme=not (args.no_readme or failed or experiment),
        out_dir=BENCH / "results" / "tmp" / "experiments" if experiment else None)
    log(f"results: {md_path.relative_to(ROOT)} and {json_path.name}")
    print()
    print("\n".join(report.targets(results)))
    print()
    print(report.summary_table(results["scenarios"]))
    if report.auth_rows(results["scenarios"]):
        print()
        print(report.auth_table(results["scenarios"]))
    if results["governance"]:
        print()
        print(governance_bench.table(results["governance"]))
    if not args.keep_tmp:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def profile_gateway(args, gw: Gateway, stamp: str) -> dict:
    """py-spy on Daphne process 0 while wrk drives the stateless scenario at the highest concurrency."""
    binary = probes.ensure_py_spy(VENV_BIN, log)
    c = max(args.concurrency)
    svg = BENCH / "results" / f"profile-{stamp}.svg"
    raw = gw.workdir / f"profile-{stamp}.txt"
    pid = gw.procs[0].pid
    log(f"profiling daphne pid {pid} ({gw.profile}, stateless, c={c}) for {args.profile_seconds} s")
    samplers = probes.py_spy(binary, pid, seconds=args.profile_seconds, svg=svg, raw=raw, cores=args.load_cores)
    result = load.wrk(script="stateless.lua", port=gw.private_ports[0], path=PATH, connections=c,
                      duration=args.profile_seconds + 2, cores=args.load_cores)
    outputs = [p.communicate(timeout=120)[0] for p in samplers]
    if not raw.exists():
        raise RuntimeError("py-spy wrote nothing:\n" + "\n".join(o[-2000:] for o in outputs))
    spots = probes.hot_spots(raw)
    log(f"profile: {spots['samples']} samples; top own frames: "
        + "; ".join(f"{h['share']:.0%} {h['frame']}" for h in spots["innermost_own_frame"][:5]))
    return {"what": f"{gw.profile}, 1 process, stateless tools/call, c={c}", "pid": pid, "seconds": args.profile_seconds,
            "rate": 100, "svg": svg.name, "raw": str(raw.relative_to(ROOT)), "rps": result["rps"],
            "hot_spots": spots}


if __name__ == "__main__":
    sys.exit(main())
