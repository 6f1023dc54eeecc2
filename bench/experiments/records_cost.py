"""CPU time per call record written by the gateway's records writer (the batch thread), on the configured database.

    DATABASE_URL=... .venv/bin/python bench/experiments/records_cost.py [N]

Adds N records as the gateway does and times RecordBuffer.flush() on this thread (time.thread_time), in batches of
GATEWAY_CALL_RECORD_BATCH, three rounds: what each record costs the serving process's GIL, whatever else runs."""
import os, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp())
os.environ.update(DJANGO_SETTINGS_MODULE="console.settings", LOG_LEVEL="WARNING")
sys.path.insert(0, str(ROOT))
import django; django.setup()
from django.core.management import call_command
from django.db import connection
from django.test.utils import setup_test_environment
from django.test.utils import get_runner  # noqa: F401

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
if connection.vendor != "sqlite":
    from django.test.utils import setup_databases
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
else:
    call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from console import services
from gateway.governance.records import RecordBuffer

owner = get_user_model().objects.create_user("o", password="pw-123456")
team = services.team_create(name="T", owner=owner)
inst = services.instance_create(actor=owner, team=team, name="inst")
svc = services.service_create(actor=owner, instance=inst, name="b", base_url="http://127.0.0.1:9", protocol="http")
server = services.mcp_server_create(actor=owner, instance=inst, name="s", backend_service=svc)


def record(i):
    return {"at": datetime.now(tz=timezone.utc), "mcp_server_id": server.id, "instance": "inst", "consumer_id": None,
            "consumer_name": "", "method": "tools/call", "tool": "getPet", "transport": "streamable_http",
            "revision": "2026-07-28", "session_id": "", "client_name": "wrk", "outcome": "ok", "backend_status": 200,
            "latency_ms": 1.234, "request_bytes": 180, "response_bytes": 240, "arguments": {"petId": i}, "error": ""}


for round_ in range(3):
    buffer = RecordBuffer()
    buffer._start = lambda: None  # this thread writes, not the flusher
    for i in range(N):
        buffer.add(record(i))
    before = time.thread_time()
    written = buffer.flush()
    spent = time.thread_time() - before
    print(f"{connection.vendor} round {round_}: {written} records, {spent / written * 1e6:.1f} µs CPU per record")
