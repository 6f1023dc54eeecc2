"""What Consumer Authentication costs a tools/call, measured in one process where other load on the machine matters
little: the gateway's ASGI app (no Daphne), a fake backend on 127.0.0.1, and process CPU time per call for
authentication off, API key, JWT HS256 and JWT RS256 (one token each, so verified-token cache hits), in 5 rounds.

    .venv/bin/python bench/experiments/auth_cost.py

The CPU time includes the in-process backend and client, which are the same for every variant."""
import asyncio, os, sys, tempfile, time, json
d = tempfile.mkdtemp()
os.environ.update(DATA_DIR=d, DJANGO_SETTINGS_MODULE="console.settings", GATEWAY_EGRESS_ALLOW="127.0.0.1", LOG_LEVEL="WARNING", DEBUG="false")
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model
from asgiref.sync import sync_to_async
from console import services
from gateway.asgi import app
from gateway import protocol as p
from tests.gateway.asgi_client import AsgiClient
from tests.gateway.test_http_to_mcp import Backend

YAML = """
tools:
  - name: getPet
    description: x
    requestTemplate: {{url: {url}/pets/1, method: GET}}
"""
def setup(url):
    owner = get_user_model().objects.create_user("o", password="pw-123456")
    team = services.team_create(name="T", owner=owner)
    inst = services.instance_create(actor=owner, team=team, name="inst")
    c = services.consumer_create(actor=owner, team=team, name="bench-client")
    _, key = services.consumer_api_key_issue(actor=owner, consumer=c)
    secret = "s" * 64
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = r.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    services.jwt_credential_create(actor=owner, consumer=c, algorithm="HS256", secret=secret, issuer="i", audience="a")
    services.jwt_credential_create(actor=owner, consumer=c, algorithm="RS256", public_key=pem, issuer="i", audience="a")
    for name, method in (("open", None), ("key", "api_key"), ("jwt", "jwt")):
        s = services.mcp_server_create(actor=owner, instance=inst, name=name)
        services.tools_apply_yaml(actor=owner, mcp_server=s, text=YAML.format(url=url))
        if method:
            services.consumer_authorize(actor=owner, mcp_server=s, consumer=c)
            services.mcp_server_set_consumer_auth(actor=owner, mcp_server=s, enabled=True, method=method)
    now = int(time.time()); pl = {"sub": "bench-client", "iss": "i", "aud": "a", "iat": now, "exp": now + 3600}
    return {"off": ("open", None), "api_key": ("key", key), "jwt-hs256": ("jwt", jwt.encode(pl, secret, algorithm="HS256")),
            "jwt-rs256": ("jwt", jwt.encode(pl, r, algorithm="RS256"))}

async def main():
    b = Backend(); await b.start()
    b.answer("/pets/1", json_body={"id": 1, "name": "Rex"})
    variants = await sync_to_async(setup)(b.url)
    client = AsgiClient(app)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getPet", "arguments": {},
            "_meta": {p.META_PROTOCOL_VERSION: p.V2026_07_28, p.META_CLIENT_CAPABILITIES: {}}}}
    async def one(v):
        name, cred = variants[v]
        h = {"accept": "application/json, text/event-stream", "mcp-protocol-version": p.V2026_07_28, "mcp-method": "tools/call", "mcp-name": "getPet"}
        if cred: h["authorization"] = f"Bearer {cred}"
        r = await client.post(f"/instances/inst/mcp-servers/{name}", json=body, headers=h)
        assert r.status == 200 and b"Rex" in r.body, (v, r.status, r.body[:300])
    for v in variants:
        for _ in range(200): await one(v)
    res = {v: [] for v in variants}
    N = 500
    for rnd in range(5):
        for v in variants:
            t = time.process_time()
            for _ in range(N): await one(v)
            res[v].append((time.process_time() - t) / N * 1e3)
    base = min(res["off"])
    for v, xs in res.items():
        print(f"{v:10} min {min(xs):.3f} ms/call  median {sorted(xs)[2]:.3f}  ratio(by min cpu) {base/min(xs):.3f}")
    from gateway.backends import close_http_sessions
    await close_http_sessions()
    await b.stop()


asyncio.run(main())
