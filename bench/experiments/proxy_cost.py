"""Gateway CPU per tools/call relayed by a Direct Proxy: the ASGI app in-process, the bench's MCP SDK backend in another.

    .venv/bin/python bench/experiments/proxy_cost.py [--profile]

The backend (bench/mcp_backend_app.py under uvicorn on 127.0.0.1) runs in its own process, so this process's CPU
time (user + system, getrusage) is the gateway's plus the in-process test client's, whatever else loads the machine.
Per round of N calls, three variants: `proxied` (a stateless 2026-07-28 tools/call relayed to the backend),
`discover` (server/discover on the same server: client, transport and dispatch, answered without the backend) and
`straight` (one aiohttp POST of the tools/call to the backend, the least the relay's upstream leg can cost).
Each variant's CPU time of the backend process is read from /proc beside it.
`--profile` runs cProfile on CPU time over the proxied calls instead and keeps the stats in $PROXY_COST_PSTATS."""
import asyncio, json, os, resource, socket, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
d = tempfile.mkdtemp()
os.environ.update(DATA_DIR=d, DJANGO_SETTINGS_MODULE="console.settings", GATEWAY_EGRESS_ALLOW="127.0.0.1",
                  LOG_LEVEL="WARNING", DEBUG="false")
sys.path.insert(0, str(ROOT))
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
import aiohttp
from asgiref.sync import sync_to_async
from console import services
from gateway.asgi import app
from gateway import protocol as p
from tests.gateway.asgi_client import AsgiClient

ROUNDS, N = 7, 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu(pid: int) -> float:
    """Another process's CPU seconds (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup(url):
    owner = get_user_model().objects.create_user("o", password="pw-123456")
    team = services.team_create(name="T", owner=owner)
    inst = services.instance_create(actor=owner, team=team, name="inst")
    svc = services.service_create(actor=owner, instance=inst, name="backend", base_url=url, protocol="mcp")
    services.mcp_server_create(actor=owner, instance=inst, name="proxy", server_type="direct_proxy",
                               backend_service=svc, backend_transport="streamable_http", backend_path="/mcp")


async def main(profile: bool):
    port = free_port()
    backend = subprocess.Popen([sys.executable, "-m", "uvicorn", "mcp_backend_app:app", "--app-dir", str(ROOT / "bench"),
                                "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        await sync_to_async(setup)(f"http://127.0.0.1:{port}")
        client = AsgiClient(app)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "getPet", "arguments": {"petId": 7},
            "_meta": {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}}}
        headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": p.V2026_07_28,
                   "mcp-method": "tools/call", "mcp-name": "getPet"}

        async def one():
            r = await client.post("/instances/inst/mcp-servers/proxy", json=body, headers=headers)
            assert r.status == 200 and b"Rex" in r.body and b"isError\":true" not in r.body, (r.status, r.body[:300])

        for _ in range(200):
            await one()
        if profile:
            import cProfile, pstats
            prof = cProfile.Profile(time.process_time)  # CPU time, not the wall clock
            prof.enable()
            for _ in range(N):
                await one()
            prof.disable()
            prof.dump_stats(os.environ.get("PROXY_COST_PSTATS", "/tmp/proxy_cost.pstats"))
            pstats.Stats(prof).sort_stats("tottime").print_stats(35)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
            from gateway.backends import close_http_sessions
            await close_http_sessions()
            return
        ping = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": body["params"]["_meta"]}}
        direct = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": 7}}}
        session = aiohttp.ClientSession()

        async def gateway_ping():
            r = await client.post("/instances/inst/mcp-servers/proxy", json=ping,
                                  headers=headers | {"mcp-method": "server/discover"})
            assert r.status == 200, (r.status, r.body[:300])

        async def straight():
            async with session.post(f"http://127.0.0.1:{port}/mcp", data=json.dumps(direct),
                                    headers={"Accept": "application/json, text/event-stream",
                                             "Content-Type": "application/json"}) as r:
                assert r.status == 200 and b"Rex" in await r.read()

        # proxied: the whole relayed call; discover: the test client and the gateway's HTTP/dispatch path, answered
        # without the backend; straight: one aiohttp POST to the backend, what the relay's upstream leg costs at least.
        variants = {"proxied": one, "discover": gateway_ping, "straight": straight}
        for fn in variants.values():
            for _ in range(100):
                await fn()
        cpu = {name: [] for name in variants}
        backend_cpu = {name: [] for name in variants}
        for _ in range(ROUNDS):
            for name, fn in variants.items():
                before, backend_before = resource.getrusage(resource.RUSAGE_SELF), process_cpu(backend.pid)
                for _ in range(N):
                    await fn()
                after, backend_after = resource.getrusage(resource.RUSAGE_SELF), process_cpu(backend.pid)
                cpu[name].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / N * 1e3)
                backend_cpu[name].append((backend_after - backend_before) / N * 1e3)
        for label, table in (("gateway", cpu), ("backend", backend_cpu)):
            for name, xs in table.items():
                print(f"{label} {name:9} CPU ms/call: min {min(xs):.3f}  median {sorted(xs)[len(xs) // 2]:.3f}   "
                      "rounds " + " ".join(f"{x:.3f}" for x in xs))
        gw = sorted(cpu["proxied"])[ROUNDS // 2] - sorted(cpu["discover"])[ROUNDS // 2] - sorted(cpu["straight"])[ROUNDS // 2]
        print(f"relay's own CPU beyond discover + straight (medians): {gw:.3f} ms/call")
        await session.close()
        from gateway.backends import close_http_sessions
        await close_http_sessions()
    finally:
        backend.terminate()
        backend.wait()


asyncio.run(main("--profile" in sys.argv))
