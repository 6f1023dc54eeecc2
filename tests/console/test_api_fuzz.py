"""Seeded fuzzing of the REST API: hostile JSON, YAML, form and raw bodies on every write endpoint, never a 5xx.

MCP_FUZZ_SEED changes the seed, API_FUZZ_REQUESTS the number of requests. Nothing here connects anywhere:
the reachability endpoint (the one that makes outbound calls) is left out, and URLs generated are loopback.
"""
from __future__ import annotations

import json
import os
import random

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from console import services
from console.models import Instance, McpServer

pytestmark = pytest.mark.django_db

SEED = int(os.environ.get("MCP_FUZZ_SEED", "20261202"))
REQUESTS = int(os.environ.get("API_FUZZ_REQUESTS", "1500"))
TOOLS_YAML = ("tools:\n  - name: getPet\n    description: Fetch one pet.\n    args:\n"
              "      - {name: petId, type: integer, required: true, position: path}\n"
              "    requestTemplate: {url: 'http://127.0.0.1:9/pets/{petId}', method: GET}\n")


class Gen:
    def __init__(self, rnd: random.Random):
        self.r = rnd

    def text(self) -> str:
        r = self.r
        return r.choice([
            "", " ", "ok-name", "Bad Name!", "a" * r.randint(60, 5000), "é😀", "\u202e", "x\ty", "null", "0",
            "http://127.0.0.1:9/api", "http://127.0.0.1:9/" + "p" * 3000, "ftp://127.0.0.1/", "127.0.0.1",
            "{{.config.baseUrl}}", "%00", "<script>", "' OR 1=1", "[" * 200, "\\u0000", "-" * 63, "default",
        ])

    def value(self, depth: int = 0) -> object:
        r = self.r
        roll = r.random()
        if roll < 0.6 or depth > 3:
            return r.choice([None, True, False, 0, -1, 1, 2**63, 10**30, 1.5, self.text(),
                             self.text(), r.randint(1, 50)])
        if roll < 0.8:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        return {self.text()[:30]: self.value(depth + 1) for _ in range(r.randint(0, 4))}

    def payload(self, fields: list[str]) -> dict:
        r = self.r
        body = {f: self.value() for f in r.sample(fields, r.randint(0, len(fields)))}
        if self.r.random() < 0.5:
            body["name"] = r.choice(["fz-" + str(r.randint(1, 10**6)), self.text()])
        return body

    def yaml_doc(self) -> str:
        r = self.r
        return r.choice([
            TOOLS_YAML, TOOLS_YAML.replace("getPet", self.text()[:40] or "x"), "tools: []\n", "tools:\n  - name: [\n",
            "tools: " + "[" * r.randint(60, 20_000) + "]" * r.randint(0, 20_000) + "\n",
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8)),
            "tools: !!python/object/apply:os.system [echo hi]\n", "\x00tools: []", "tools: *nope\n",
            "tools:\n" + "".join("  " * (i + 1) + "- \n" for i in range(r.randint(60, 300))),
            "tools: [" + ", ".join(["1"] * r.randint(100, 20_000)) + "]\n", "%YAML 9.9\n---\ntools: []\n",
            "tools:\n  - name: a\n    description: d\n    requestTemplate: {url: 'http://127.0.0.1:9/{{', method: GET}\n",
        ])

    def body(self, fields: list[str], yaml_endpoint: bool) -> tuple[bytes, str]:
        r = self.r
        roll = r.random()
        if yaml_endpoint and roll < 0.5:
            doc = self.yaml_doc()
            if r.random() < 0.3:
                return json.dumps({"yaml": doc if r.random() < 0.8 else self.value()}).encode(), "application/json"
            return doc.encode("utf-8", "surrogatepass"), r.choice(["application/yaml", "text/plain", "text/yaml"])
        if roll < 0.65:
            return json.dumps(self.payload(fields), ensure_ascii=r.random() < 0.5).encode(), "application/json"
        if roll < 0.72:
            n = r.randint(65, 20_000)
            return r.choice([b"[" * n + b"]" * n, b'{"name":' + b'{"a":' * n + b"1" + b"}" * (n + 1)]), \
                "application/json"
        if roll < 0.76:
            return b"[" + b"0," * r.randint(100_000, 120_000) + b"0]", "application/json"
        if roll < 0.82:
            return r.choice([b'{"name":"\\ud800"}', b'{"name":"a\\u0000"}', b'{"config":{"k":"\\u0000"}}',
                             b'{"name":NaN}', b'{"name":1e999}', b"\xff\xfe", b'{"name":"\xed\xa0\x80"}', b"",
                             b"{", b'{"name": "x"', b"null", b"[]", b'"x"', b"9" * 5000]), "application/json"
        if roll < 0.90:
            pairs = "&".join(f"{r.choice(fields + ['x'])}={r.choice(['1', '', '%ff', 'a' * 300, '%00'])}"
                             for _ in range(r.randint(0, 1200)))
            return pairs.encode(), "application/x-www-form-urlencoded"
        if roll < 0.95:
            return (b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n"
                    if r.random() < 0.5 else b"--b\r\ngarbage"), r.choice(["multipart/form-data; boundary=b",
                                                                          "multipart/form-data"])
        return bytes(r.getrandbits(8) for _ in range(r.randint(0, 300))), r.choice(
            ["application/json", "application/octet-stream", "text/html", "application/x-www-form-urlencoded; charset=bogus",
             "application/json; charset=latin-1"])


def test_api_fuzz():
    """Hostile bodies on every write endpoint: 4xx answers in the API's shape (or success), never a 5xx."""
    print(f"\nREST API fuzz seed {SEED} (set MCP_FUZZ_SEED to change), {REQUESTS} requests")
    gen = Gen(random.Random(SEED))
    user = get_user_model().objects.create_user("fuzz", password="pw-123456")
    team = services.team_create(name="Fuzz", owner=user)
    _, secret = services.api_token_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    api.raise_request_exception = False
    instance = services.instance_create(actor=user, team=team, name="fz")
    service = services.service_create(actor=user, instance=instance, name="svc", base_url="http://127.0.0.1:9/api")
    server = services.mcp_server_create(actor=user, instance=instance, name="srv")
    services.tools_apply_yaml(actor=user, mcp_server=server, text=TOOLS_YAML)
    tool = server.tools.get()
    consumer = services.consumer_create(actor=user, team=team, name="fuzzed")
    endpoints = [
        ("post", "/api/v1/instances/", ["team", "name", "region", "description", "is_default"], False),
        ("patch", f"/api/v1/instances/{instance.pk}/", ["name", "region", "description", "is_default"], False),
        ("post", "/api/v1/services/", ["instance", "name", "base_url", "description"], False),
        ("patch", f"/api/v1/services/{service.pk}/", ["name", "base_url", "description"], False),
        ("post", "/api/v1/mcp-servers/", ["instance", "name", "domains", "config", "server_type", "backend_service",
                                          "backend_transport", "backend_path", "timeout_seconds", "enabled"], False),
        ("patch", f"/api/v1/mcp-servers/{server.pk}/", ["name", "domains", "config", "timeout_seconds", "enabled",
                                                       "description", "backend_path"], False),
        ("put", f"/api/v1/mcp-servers/{server.pk}/tools/yaml", ["yaml"], True),
        ("put", f"/api/v1/tools/{tool.pk}/yaml", ["yaml"], True),
        ("patch", f"/api/v1/tools/{tool.pk}/", ["enabled"], False),
        ("put", f"/api/v1/mcp-servers/{server.pk}/backend-auth", ["kind", "location", "param_name", "credential"],
         False),
        ("post", "/api/v1/consumers/", ["team", "name", "description", "enabled"], False),
        ("patch", f"/api/v1/consumers/{consumer.pk}/", ["name", "description", "enabled"], False),
        ("post", f"/api/v1/consumers/{consumer.pk}/api-keys/", ["name", "expires_at"], False),
        ("post", f"/api/v1/consumers/{consumer.pk}/jwt-credentials/", ["algorithm", "secret", "public_key", "jwks_url",
                                                                       "issuer", "audience", "consumer_claim"], False),
        ("put", f"/api/v1/mcp-servers/{server.pk}/consumer-auth", ["enabled", "method", "source", "name"], False),
        ("post", f"/api/v1/mcp-servers/{server.pk}/authorizations/", ["consumer", "tools"], False),
    ]
    statuses: dict[int, int] = {}
    failures: list[str] = []
    for _ in range(REQUESTS):
        method, url, fields, yaml_endpoint = gen.r.choice(endpoints)
        body, content_type = gen.body(fields, yaml_endpoint)
        if "instance" in fields and gen.r.random() < 0.5 and content_type == "application/json":
            try:
                data = json.loads(body)
                if isinstance(data, dict):
                    data["instance"] = instance.pk
                    body = json.dumps(data).encode()
            except (ValueError, RecursionError):
                pass
        response = getattr(api, method)(url, body, content_type=content_type)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        desc = f"{method.upper()} {url} [{content_type}] {body[:200]!r}"
        if response.status_code >= 500:
            failures.append(f"{response.status_code}: {response.content[:300]!r}\n    {desc}")
            continue
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                failures.append(f"{response.status_code} not JSON: {response.content[:200]!r}\n    {desc}")
                continue
            if not isinstance(answer.get("detail"), str):
                failures.append(f"{response.status_code} without a detail: {answer}\n    {desc}")
            elif response.status_code in (400, 413) and not {"code", "errors"} <= set(answer):
                failures.append(f"{response.status_code} not in the API's error shape: {answer}\n    {desc}")
    print(f"REST API fuzz answers by status: {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} bad answers (seed {SEED}):\n" + "\n".join(failures[:30])
    # Healthy afterwards: the API still creates and lists.
    created = api.post("/api/v1/instances/", {"name": "after-fuzz"}, format="json")
    assert created.status_code == 201, created.content
    assert Instance.objects.filter(name="after-fuzz").exists() and McpServer.objects.filter(pk=server.pk).exists()
