"""Our gateway under test: a fresh database per profile, the `bench` MCP server configured through the REST API,
and N Daphne processes sharing one port (SO_REUSEPORT), each also on a private port of its own."""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .mcp import Api, Http, call_ok, stateless
from .procs import Proc, free_port, reuseport_sockets, run, spawn, wait_http

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
SERVER_NAME = "bench"
PATH = f"/mcp-servers/{SERVER_NAME}"
SSE_PATH = PATH + "/sse"
PROXY_NAME = "bench-proxy"
PROXY_PATH = f"/mcp-servers/{PROXY_NAME}"
# Consumer Authentication on vs off (scenario "auth"): the same tools on servers with authentication on.
KEY_SERVER, JWT_SERVER, OAUTH_SERVER = "bench-key", "bench-jwt", "bench-oauth"
AUTH_CONSUMER = "bench-client"
JWT_ISSUER, JWT_AUDIENCE = "https://idp.bench.invalid", "mcp-bench"
AUTH_VARIANTS = ("off", "api_key", "jwt-hs256", "jwt-rs256", "oauth")
# Variables of the developer's shell that would silently change the profile under test.
_PROFILE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "PUBLIC_BASE_URL",
                 "MCP_ALLOWED_ORIGINS", "DEBUG", "DATA_DIR", "SECRET_KEY", "CREDENTIALS_KEY",
                 "GATEWAY_EGRESS_ALLOW", "GATEWAY_EGRESS_DENY")

PET_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                   "status": {"type": "string", "enum": ["available", "pending", "sold"]}, "tag": {"type": "string"}},
    "required": ["id", "name", "status"],
}


def tools_yaml(base_url: str, *, description: str = "Fetch one pet by its id.", label: str = "v0") -> str:
    """getPet answers the backend's JSON as is (text block + structuredContent: the peer's shape);
    getPetLabel renders a template, so a change to it shows in tools/call answers."""
    arg = {"name": "petId", "description": "The pet's id.", "type": "integer", "required": True,
           "position": "path"}
    request = {"url": "{{.config.baseUrl}}/pets/{petId}", "method": "GET"}
    doc = {
        "server": {"name": SERVER_NAME, "config": {"baseUrl": base_url}},
        "tools": [
            {"name": "getPet", "description": description, "args": [arg], "requestTemplate": request,
             "outputSchema": PET_SCHEMA, "annotations": {"readOnlyHint": True}},
            {"name": "getPetLabel", "description": "One pet as a line of text.", "args": [arg],
             "requestTemplate": request, "responseTemplate": {"body": "Pet {{ .id }}: {{ .name }} [" + label + "]"}},
        ],
    }
    return json.dumps(doc, indent=1)  # JSON is YAML


@dataclass
class Gateway:
    profile: str  # "embedded" | "production"
    workdir: Path
    backend_url: str
    redis_url: str = ""
    pg_url: str = ""
    src: Path = ROOT  # the code under test: the working tree, or a snapshot of a commit
    app: str = "console.asgi:application"  # another module only for experiments (bench/experiments)
    env: dict = field(default_factory=dict)
    database: str = ""
    token: str = ""
    server_id: int | None = None
    port: int = 0
    private_ports: list[int] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    auth: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)  # variant -> (path, headers)

    # ------------------------------------------------------------ database and configuration

    def prepare(self, log) -> None:
        data_dir = self.workdir / self.profile
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _PROFILE_VARS}
        env.update(DATA_DIR=str(data_dir), SECRET_KEY=secrets.token_urlsafe(40), LOG_LEVEL="WARNING",
                   DEBUG="false", MCP_SESSION_TTL="900", ADMIN_PASSWORD=secrets.token_urlsafe(12),
                   DJANGO_SETTINGS_MODULE="console.settings", PYTHONUNBUFFERED="1",
                   # The loopback backend (nginx on 127.0.0.1) must pass the egress policy, as in `make run`.
                   GATEWAY_EGRESS_ALLOW="127.0.0.1")
        if self.app != "console.asgi:application":
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench" / "experiments"),
                                                              os.environ.get("PYTHONPATH", "")]))
        if self.profile == "production":
            self.database = f"mcpgw_bench_{os.getpid()}_{int(time.time())}"
            _pg_admin(self.pg_url, f'CREATE DATABASE "{self.database}"')
            env["DATABASE_URL"] = _with_db(self.pg_url, self.database)
            env["REDIS_URL"] = self.redis_url
        self.env = env
        log(f"[{self.profile}] migrate")
        run([str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=self.src)
        run([str(VENV_BIN / "python"), "manage.py", "seed_demo", "--port", "8000"], env=env, cwd=self.src)
        self.token = run([str(VENV_BIN / "python"), "manage.py", "create_api_token", "admin", "--name", "bench"],
                         env=env, cwd=self.src).stdout.strip().splitlines()[-1]

    def configure(self, log) -> None:
        """Create (or find) the `bench` MCP server and apply its tool YAML, all through the REST API."""
        self.server_id = self._server(SERVER_NAME, "Benchmark: one GET to nginx.")
        log(f"[{self.profile}] MCP server {SERVER_NAME} (id {self.server_id}) -> {self.backend_url}")

    def _instance(self) -> dict:
        instances = self.api().call("GET", "/api/v1/instances/")
        rows = instances.get("results", instances) if isinstance(instances, dict) else instances
        instance = next((i for i in rows if i.get("is_default") or i.get("name") == "default"), None)
        if instance is None:
            raise RuntimeError(f"no default instance in {rows}")
        return instance

    def _server(self, name: str, description: str) -> int:
        """The id of MCP server `name` of the default instance, created if missing, with the bench tools."""
        api = self.api()
        instance = self._instance()
        servers = api.call("GET", f"/api/v1/mcp-servers/?instance={instance['id']}")
        rows = servers.get("results", servers) if isinstance(servers, dict) else servers
        existing = next((s for s in rows if s["name"] == name), None)
        if existing is None:
            existing = api.call("POST", "/api/v1/mcp-servers/", {
                "instance": instance["id"], "name": name, "description": description,
                "config": {"baseUrl": self.backend_url}})
        api.call("PUT", f"/api/v1/mcp-servers/{existing['id']}/tools/yaml", tools_yaml(self.backend_url),
                 content_type="application/yaml")
        return existing["id"]

    def configure_proxy(self, backend_url: str, log) -> None:
        """A Direct Proxy server `bench-proxy` in front of the backend MCP server, through the REST API."""
        api = self.api()
        instance = self._instance()
        servers = api.call("GET", f"/api/v1/mcp-servers/?instance={instance['id']}")
        rows = servers.get("results", servers) if isinstance(servers, dict) else servers
        if any(s["name"] == PROXY_NAME for s in rows):
            return
        service = api.call("POST", "/api/v1/services/", {"instance": instance["id"], "name": "bench-mcp-backend",
                                                         "protocol": "mcp", "base_url": backend_url})
        created = api.call("POST", "/api/v1/mcp-servers/", {
            "instance": instance["id"], "name": PROXY_NAME, "server_type": "direct_proxy",
            "description": "Benchmark: a Direct Proxy in front of an MCP SDK server.",
            "backend_service": service["id"], "backend_transport": "streamable_http", "backend_path": "/mcp"})
        log(f"[{self.profile}] Direct Proxy {PROXY_NAME} (id {created['id']}) -> {backend_url}/mcp")

    def configure_auth(self, log) -> None:
        """Two more servers with the same tools, each with Consumer Authentication on (API key; JWT), one consumer
        authorized on both with an API key, an HS256 secret and an RS256 public key — all through the REST API.
        `self.auth` maps each variant to its endpoint and the header a client sends."""
        import jwt  # the project's dependency (PyJWT): tokens are minted here, as an IdP would
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        api = self.api()
        team = self._instance()["team"]
        consumer = api.call("POST", "/api/v1/consumers/", {
            "team": team, "name": AUTH_CONSUMER, "description": "Benchmark client"})
        key = api.call("POST", f"/api/v1/consumers/{consumer['id']}/api-keys/", {"name": "bench"})["key"]
        secret = secrets.token_urlsafe(48)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        claims = {"iss": JWT_ISSUER, "aud": JWT_AUDIENCE}
        api.call("POST", f"/api/v1/consumers/{consumer['id']}/jwt-credentials/",
                 {"algorithm": "HS256", "secret": secret, "consumer_claim": "sub", "issuer": JWT_ISSUER,
                  "audience": JWT_AUDIENCE})
        api.call("POST", f"/api/v1/consumers/{consumer['id']}/jwt-credentials/",
                 {"algorithm": "RS256", "public_key": public_pem, "consumer_claim": "sub", "issuer": JWT_ISSUER,
                  "audience": JWT_AUDIENCE})
        for name, method in ((KEY_SERVER, "api_key"), (JWT_SERVER, "jwt")):
            server_id = self._server(name, f"Benchmark: one GET to nginx, consumer authentication by {method}.")
            api.call("PUT", f"/api/v1/mcp-servers/{server_id}/consumer-auth",
                     {"enabled": True, "method": method, "source": "bearer", "name": ""})
            api.call("POST", f"/api/v1/mcp-servers/{server_id}/authorizations/",
                     {"consumer": consumer["id"], "tools": None})
        now = int(time.time())
        payload = {"sub": AUTH_CONSUMER, **claims, "iat": now, "exp": now + 24 * 3600}
        hs_token = jwt.encode(payload, secret, algorithm="HS256")
        rs_token = jwt.encode(payload, private, algorithm="RS256")
        oauth_id = self._server(OAUTH_SERVER, "Benchmark: one GET to nginx, OAuth sign-in.")
        api.call("PUT", f"/api/v1/mcp-servers/{oauth_id}/consumer-auth",
                 {"enabled": True, "method": "oauth", "source": "bearer", "name": ""})
        access_token = self._oauth_sign_in(f"/mcp-servers/{OAUTH_SERVER}")
        self.auth = {
            "off": (PATH, {}),
            "oauth": (f"/mcp-servers/{OAUTH_SERVER}", {"Authorization": f"Bearer {access_token}"}),
            "api_key": (f"/mcp-servers/{KEY_SERVER}", {"Authorization": f"Bearer {key}"}),
            "jwt-hs256": (f"/mcp-servers/{JWT_SERVER}", {"Authorization": f"Bearer {hs_token}"}),
            "jwt-rs256": (f"/mcp-servers/{JWT_SERVER}", {"Authorization": f"Bearer {rs_token}"}),
        }
        log(f"[{self.profile}] consumer {AUTH_CONSUMER} (id {consumer['id']}) authorized on {KEY_SERVER} (API key) "
            f"and {JWT_SERVER} (JWT HS256 + RS256)")

    def _oauth_sign_in(self, path: str) -> str:
        """An access token for `path` the way an MCP client gets one: register (RFC 7591), sign in as admin on the
        consent page and approve a new consumer, exchange the code with PKCE S256."""
        import base64
        import hashlib
        import re
        from urllib.parse import parse_qs, urlsplit

        import httpx

        base = f"http://127.0.0.1:{self.private_ports[0]}"
        redirect = "http://127.0.0.1:9/callback"
        with httpx.Client(base_url=base, timeout=30) as http:
            client_id = http.post("/oauth/register/", json={
                "client_name": "Bench Client", "redirect_uris": [redirect], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"]}).raise_for_status().json()["client_id"]
            page = http.get("/login/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            http.post("/login/", data={"csrfmiddlewaretoken": csrf, "username": "admin",
                                       "password": self.env["ADMIN_PASSWORD"]}, headers={"Referer": base + "/login/"})
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": "b",
                     "code_challenge": challenge, "code_challenge_method": "S256", "resource": base + path}
            consent = http.get("/oauth/authorize/", params=query, follow_redirects=True)
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', consent.text))
            answer = http.post(str(consent.url), data={**fields, "consumer": "new", "allow": "Authorize"},
                               headers={"Referer": str(consent.url)})
            code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
            token = http.post("/oauth/token/", data={"grant_type": "authorization_code", "code": code,
                                                     "client_id": client_id, "redirect_uri": redirect,
                                                     "code_verifier": verifier, "resource": base + path})
            return token.raise_for_status().json()["access_token"]

    def put_tools(self, text: str, *, port: int | None = None) -> dict:
        return self.api(port).call("PUT", f"/api/v1/mcp-servers/{self.server_id}/tools/yaml", text,
                                   content_type="application/yaml")

    def api(self, port: int | None = None) -> Api:
        return Api(port or self.private_ports[0], self.token)

    def verify(self) -> None:
        """Every process answers a tools/call correctly before anything is measured."""
        for port in [self.port, *self.private_ports]:
            http = Http(port)
            status, message = stateless(http, PATH, "tools/call", {"name": "getPet", "arguments": {"petId": 1}},
                                        name="getPet")
            http.close()
            if not call_ok(status, message):
                raise RuntimeError(f"[{self.profile}] tools/call on port {port} -> {status} {message}")

    def verify_auth(self) -> None:
        """Every process enforces the authentication being measured: refused without the credential, served with it."""
        for port in [self.port, *self.private_ports]:
            for variant, (path, headers) in self.auth.items():
                http = Http(port)
                status, message = stateless(http, path, "tools/call", {"name": "getPet", "arguments": {"petId": 1}},
                                            name="getPet", headers=headers)
                if not call_ok(status, message):
                    raise RuntimeError(f"[{self.profile}] {variant}: tools/call on port {port} -> {status} {message}")
                if headers:
                    status, message = stateless(http, path, "tools/call",
                                                {"name": "getPet", "arguments": {"petId": 1}}, name="getPet")
                    if status != 401:
                        raise RuntimeError(f"[{self.profile}] {variant}: tools/call without the credential on port "
                                           f"{port} -> {status} {message}, expected 401: authentication is not on")
                http.close()

    # ------------------------------------------------------------ processes

    def start(self, processes: int, *, cores: str | None, log) -> None:
        if processes > 1 and self.profile != "production":
            raise ValueError("more than one process needs the production profile (Redis)")
        self.port, sockets = reuseport_sockets(processes)
        self.private_ports = [free_port() for _ in range(processes)]
        self.procs = []
        for i, (sock, private) in enumerate(zip(sockets, self.private_ports)):
            cmd = [str(VENV_BIN / "daphne"), "-v", "0", "--fd", str(sock.fileno()), "-b", "127.0.0.1",
                   "-p", str(private), self.app]
            self.procs.append(spawn(f"daphne-{i}", cmd, log=self.workdir / "logs" / f"{self.profile}-daphne-{i}.log",
                                    cores=cores, env=self.env, cwd=self.src, pass_fds=(sock.fileno(),)))
        for sock in sockets:
            sock.close()  # the children hold them now
        for proc, private in zip(self.procs, self.private_ports):
            wait_http("127.0.0.1", private, "/healthz", proc=proc, timeout=60)
        log(f"[{self.profile}] {processes} Daphne process(es) on :{self.port} (private {self.private_ports}), "
            f"pids {[p.pid for p in self.procs]}")

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.procs = []

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cleanup(self) -> None:
        self.stop()
        if self.database:
            try:
                _pg_admin(self.pg_url, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except Exception:
                pass
            self.database = ""
        if self.profile == "production" and self.redis_url:
            _redis_forget_sessions(self.redis_url)


def _with_db(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{name}"


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(_with_db(url, "postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def _redis_forget_sessions(url: str) -> None:
    """Sessions the run left in its Redis database (they would expire anyway)."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
        keys = list(client.scan_iter(match="mcpgw:session:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        client.close()
    except Exception:
        pass
