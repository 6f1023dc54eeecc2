"""What governance costs a tools/call, in one process where other load on the machine matters little: the gateway's
ASGI app (no Daphne), a fake REST backend on 127.0.0.1, and process CPU time per call (every thread: the call
records writer included, each round ending with its records written) for four variants: nothing, call records,
a generous rate limit, both.

    .venv/bin/python bench/experiments/governance_cost.py                       # embedded
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mcpgw_govcost REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/experiments/governance_cost.py                   # production (the database is created)

`--profile VARIANT` runs cProfile (CPU time, every call) over that variant's calls instead."""
import asyncio, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.update(DATA_DIR=tempfile.mkdtemp(), DJANGO_SETTINGS_MODULE="console.settings",
                  GATEWAY_EGRESS_ALLOW="127.0.0.1", LOG_LEVEL="WARNING", DEBUG="false")
if os.environ.get("DATABASE_URL", "").startswith("postgres"):
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"drop database if exists {name}"], check=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"create database {name}"], check=True)
sys.path.insert(0, str(ROOT))
import django; django.setup()
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from asgiref.sync import sync_to_async
from console import services
from gateway.asgi import app
from gateway import protocol as p
from gateway.governance import flush_records
from tests.gateway.asgi_client import AsgiClient
from tests.gateway.test_http_to_mcp import Backend

YAML = """
tools:
  - name: getPet
    description: x
    requestTemplate: {{url: {url}/pets/1, method: GET}}
"""
ROUNDS, N = 5, 500
VARIANTS = {"off": ("plain", False), "records": ("plain", True), "limit": ("limited", False), "on": ("limited", True)}


def setup(url):
    owner = get_user_model().objects.create_user("o", password="pw-123456")
    team = services.team_create(name="T", owner=owner)
    inst = services.instance_create(actor=owner, team=team, name="inst")
    for name in ("plain", "limited"):
        server = services.mcp_server_create(actor=owner, instance=inst, name=name)
        services.tools_apply_yaml(actor=owner, mcp_server=server, text=YAML.format(url=url))
        if name == "limited":
            services.rate_limit_create(actor=owner, mcp_server=server, requests=1_000_000, window="second",
                                       burst=1_000_000)


async def main(profile: str | None):
    backend = Backend()
    await backend.start()
    backend.answer("/pets/1", json_body={"id": 1, "name": "Rex"})
    await sync_to_async(setup)(backend.url)
    client = AsgiClient(app)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getPet", "arguments": {},
            "_meta": {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}}}
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": p.V2026_07_28,
               "mcp-method": "tools/call", "mcp-name": "getPet"}

    async def one(server):
        r = await client.post(f"/instances/inst/mcp-servers/{server}", json=body, headers=headers)
        assert r.status == 200 and b"Rex" in r.body, (r.status, r.body[:300])

    async def run(variant):
        server, records = VARIANTS[variant]
        settings.GATEWAY_CALL_RECORDS = records
        for _ in range(N):
            await one(server)
        await sync_to_async(flush_records, thread_sensitive=False)()

    for variant in VARIANTS:
        await run(variant)
    if profile:
        import cProfile, pstats
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        await run(profile)
        prof.disable()
        if os.environ.get("GOVERNANCE_COST_PSTATS"):
            prof.dump_stats(os.environ["GOVERNANCE_COST_PSTATS"])
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(50)
    else:
        cpu = {v: [] for v in VARIANTS}
        for _ in range(ROUNDS):
            for variant in VARIANTS:
                before = time.process_time()
                await run(variant)
                cpu[variant].append((time.process_time() - before) / N * 1e3)
        base = min(cpu["off"])
        print(f"profile: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[1]}, "
              f"state {'redis' if os.environ.get('REDIS_URL') else 'memory'}")
        for variant, xs in cpu.items():
            print(f"{variant:8} CPU ms/call: min {min(xs):.3f}  median {sorted(xs)[ROUNDS // 2]:.3f}  "
                  f"+{min(xs) - base:.3f} over off;  off/this by min {base / min(xs):.3f}")
    from gateway.backends import close_http_sessions
    await close_http_sessions()
    await backend.stop()


asyncio.run(main(sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None))
