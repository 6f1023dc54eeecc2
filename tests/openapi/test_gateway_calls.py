"""Every sample description imported into a server, then every generated tool called through the real gateway.

The fake backend on 127.0.0.1 records each request; what it must have received (method, path, query, headers,
body) is read from the description itself (tests/openapi/expected.py), not from the generated tools.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest
from asgiref.sync import sync_to_async

from console.services import imports as import_services
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.state import close_states

from ..gateway.asgi_client import AsgiClient
from ..gateway.test_http_to_mcp import Backend
from . import expected as ex
from . import helpers as h

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "openapi-samples"
if not SAMPLES.exists():
    SAMPLES = Path("/work/shared/openapi-samples")
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*/*") if p.suffix in (".json", ".yaml", ".yml"))


def load(path: Path) -> dict:
    import yaml

    return json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())


def _import(backend_url: str, path: Path, index: int):
    owner, server = h.server_with_backend(backend_url, index)
    job = h.import_files(owner, server, [(path.name, path.read_bytes())])
    names = [row["name"] for row in job.preview["tools"]]
    secrets = {s["id"]: f"secret-{s['id']}" for s in job.preview["security"] if s["supported"] and s["used"]}
    result = import_services.import_job_confirm(actor=owner, job=job, tools=names, credentials=secrets)
    assert sorted(result["created"]) == sorted(names)
    return server, job, secrets


@pytest.fixture
async def backend():
    server = Backend()
    await server.start()
    yield server
    await close_http_sessions()
    await close_states()
    await server.stop()


def _check_request(doc: dict, exp: ex.Expected, arguments: dict, received, base: str) -> None:
    assert received.method == exp.method
    path = exp.path
    for name, (where, _) in exp.params.items():
        if where == "path":
            path = path.replace("{" + name + "}", quote(str(arguments[name]), safe="-._~!$&'()*+,;=:@"))
    assert received.raw_path == base + path, (received.raw_path, base + path)
    query = parse_qsl(received.query_string, keep_blank_values=True)
    for name, (where, _) in exp.params.items():
        value = arguments.get(name)
        if value is None:
            continue
        if where == "query":
            values = value if isinstance(value, list) else [value]
            got = [v for k, v in query if k == name]
            assert got == [v if isinstance(v, str) else json.dumps(v) for v in values], (name, got, values)
        elif where == "header" and name.lower() not in ("accept", "content-type", "authorization"):
            assert name.lower() in {k.lower() for k in received.headers}, (name, received.headers)
        elif where == "cookie":
            assert f"{name}=" in received.headers.get("Cookie", "")
    ctype = received.headers.get("Content-Type", "")
    sent = {k: arguments[k] for k in exp.body_props if k in arguments}
    if exp.body_media and "json" in exp.body_media:
        assert "json" in ctype, ctype
        assert json.loads(received.body) == (arguments["body"] if exp.whole_body else sent)
    elif exp.body_media == "form" and "multipart" in ctype or (exp.body_media or "").startswith("multipart/"):
        assert ctype.startswith("multipart/form-data; boundary="), ctype
        for key in sent:
            assert f'name="{key}"'.encode() in received.body, (key, received.body[:300])
    elif exp.body_media == "form" or (exp.body_media or "").startswith("application/x-www-form-urlencoded"):
        assert ctype.startswith("application/x-www-form-urlencoded"), ctype
        assert set(dict(parse_qsl(received.body.decode()))) == set(sent)
    elif exp.body_media:  # any other media type: the body argument is the body, as text
        assert ctype == exp.body_media
        body = arguments["body"]
        # Text goes as it is; an object or array schema under another media type is still written as JSON.
        assert received.body == (body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
                                 .encode())


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
async def test_every_generated_tool_reaches_the_backend_as_described(backend, path):
    index = SAMPLE_FILES.index(path)
    server, job, secrets = await sync_to_async(_import)(backend.url, path, index)
    doc = load(path)
    base = ex.base_path(doc)
    by_operation = {row["operation"]: row["name"] for row in job.preview["tools"]}
    client = AsgiClient(app)
    url = f"/instances/inst{index}/mcp-servers/srv{index}"
    tools = await h.list_tools(client, url)
    operations = ex.operations(doc)
    assert len(tools) == len(operations)
    for exp in operations:
        name = by_operation[f"{exp.method} {exp.path}"]
        schema = tools[name]["inputSchema"]
        arguments = {prop: ex.sample_value(doc, sub, prop) for prop, sub in schema["properties"].items()}
        before = len(backend.requests)
        result = await h.call(client, url, name, arguments)
        assert not result.get("isError"), (name, arguments, result)
        assert len(backend.requests) == before + 1, name
        _check_request(doc, exp, arguments, backend.last, base)
        default = next((s for s in job.preview["security"] if s["default"]), None)
        if default is not None and "security" not in _operation(doc, exp):
            _check_credential(default, secrets[default["id"]], backend.last)


def _operation(doc: dict, exp: ex.Expected) -> dict:
    return ex.resolve(doc, doc["paths"][exp.path])[exp.method.lower()]


def _check_credential(scheme: dict, secret: str, received) -> None:
    """The server's backend credential, where its scheme says it goes."""
    if scheme["type"] == "http":
        assert received.headers["Authorization"] == f"{scheme['scheme'].capitalize()} {secret}"
    elif scheme["in"] == "header":
        assert received.headers[scheme["name"]] == secret
    else:
        assert (scheme["name"], secret) in parse_qsl(received.query_string)


def test_the_samples_are_there():
    """The parametrized test above needs the samples; without them it would quietly run for none."""
    assert len(SAMPLE_FILES) >= 18, SAMPLES
