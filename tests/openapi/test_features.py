"""What the conversion keeps of a description (schemas, parameters, bodies, security), and how each call goes out.

features.yaml gathers in one file what published specs do here and there: server variables, path-level parameters
overridden by the operation, parameter references, allOf bodies with readOnly members, nullable, recursive
schemas, oneOf, multipart with a file, form bodies, text bodies, every kind of security scheme, a deprecated
operation, an operationId that is no valid tool name and a path parameter nobody declared.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from asgiref.sync import sync_to_async

from console.openapi import convert
from console.openapi.operations import MULTIPART_BOUNDARY
from console.services import imports as import_services
from console.toolyaml import input_schema_from_args
from gateway.asgi import app
from gateway.backends import close_http_sessions
from gateway.state import close_states

from ..gateway.asgi_client import AsgiClient
from ..gateway.test_http_to_mcp import Backend
from . import helpers as h

FEATURES = Path(__file__).with_name("features.yaml")


@pytest.fixture(scope="module")
def conversion():
    return convert([("features.yaml", FEATURES.read_bytes())])


def tool(conversion, name: str) -> dict:
    return next(d.tool for d in conversion.tools if d.name == name)


def schema_of(conversion, name: str) -> dict:
    return input_schema_from_args(tool(conversion, name)["args"])


def test_names_are_operation_ids_made_valid_else_method_and_path(conversion):
    assert [d.name for d in conversion.tools] == [
        "listPets", "createPet", "getPet", "deletePet", "uploadPhoto", "login", "put_shapes", "update_note"]


def test_server_variables_and_security_become_the_proposed_server_part(conversion):
    assert conversion.server["config"] == {"baseUrl": "https://shop.invalid/v2"}
    assert conversion.server["defaultUpstreamSecurity"] == {"id": "ApiKeyHeader"}
    assert conversion.server["securitySchemes"] == [
        {"id": "ApiKeyHeader", "type": "apiKey", "in": "header", "name": "X-Shop-Key"},
        {"id": "ApiKeyQuery", "type": "apiKey", "in": "query", "name": "key"},
        {"id": "Basic", "type": "http", "scheme": "basic"},
        {"id": "Bearer", "type": "http", "scheme": "bearer"},
    ]
    unsupported = {s["id"]: s["note"] for s in conversion.security if not s["supported"]}
    assert set(unsupported) == {"Cookie", "OAuth"}
    assert "OAuth2 / OpenID Connect is not supported yet" in unsupported["OAuth"]


def test_parameters_merge_with_the_operations_winning_and_keep_their_schema(conversion):
    schema = schema_of(conversion, "listPets")
    assert schema["properties"] == {
        "X-Trace": {"type": "string", "description": "Operation-level trace (wins)."},
        "limit": {"type": "integer", "default": 20, "minimum": 1, "maximum": 100},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
    positions = {a["name"]: a["position"] for a in tool(conversion, "listPets")["args"]}
    assert positions == {"X-Trace": "header", "limit": "query", "tags": "query"}
    pet = tool(conversion, "listPets")["outputSchema"]["properties"]["items"]["items"]
    assert pet["allOf"][0]["required"] == ["name"] and "id" in pet["allOf"][0]["properties"]


def test_an_allof_body_becomes_one_argument_per_property_without_read_only_ones(conversion):
    schema = schema_of(conversion, "createPet")
    assert set(schema["properties"]) == {"X-Trace", "name", "tag", "status", "born", "owner"}  # X-Trace: the path's
    assert schema["required"] == ["name"]
    assert schema["properties"]["name"] == {"type": "string", "minLength": 1, "examples": ["Rex"]}
    assert schema["properties"]["tag"] == {"type": ["string", "null"]}
    assert schema["properties"]["status"] == {"type": "string", "enum": ["available", "sold"], "default": "available"}
    assert schema["properties"]["born"] == {"type": "string", "format": "date"}
    friends = schema["properties"]["owner"]["properties"]["friends"]
    assert friends["items"]["type"] == "object" and "recursive" in friends["items"]["description"]
    # The answer's schema keeps what the server sets.
    assert "id" in json.dumps(tool(conversion, "createPet")["outputSchema"])
    notes = [w["message"] for d in conversion.tools if d.name == "createPet" for w in d.warnings]
    assert any("refers to itself" in n for n in notes), notes


def test_deprecated_multipart_oneof_text_and_undeclared_path_parameters(conversion):
    drafts = {d.name: d for d in conversion.tools}
    assert drafts["deletePet"].deprecated and tool(conversion, "deletePet")["description"].startswith("Deprecated.")
    photo = schema_of(conversion, "uploadPhoto")["properties"]["file"]
    assert photo["contentEncoding"] == "base64" and "base64" in photo["description"]
    shapes = schema_of(conversion, "put_shapes")["properties"]["body"]
    assert [sorted(s["properties"]) for s in shapes["oneOf"]] == [["radius"], ["side"]]
    assert schema_of(conversion, "update_note")["properties"]["noteId"] == {"type": "string"}
    assert any("declares no such parameter" in w["message"] for w in drafts["update_note"].warnings)
    assert any("cannot apply yet" in w["message"] for w in drafts["login"].warnings)
    assert any("cannot apply yet" in w["message"] for w in drafts["update_note"].warnings)


# ---------------------------------------------------------------- the same tools, called through the gateway



@pytest.fixture
async def backend():
    server = Backend()
    await server.start()
    yield server
    await close_http_sessions()
    await close_states()
    await server.stop()


SECRETS = {"ApiKeyHeader": "k-header", "ApiKeyQuery": "k-query", "Basic": "ann:s3cret", "Bearer": "t-bearer"}


def _setup(backend_url: str):
    owner, server = h.server_with_backend(backend_url + "/v2", 1)
    job = h.import_files(owner, server, [("features.yaml", FEATURES.read_bytes())])
    names = [row["name"] for row in job.preview["tools"]]
    import_services.import_job_confirm(actor=owner, job=job, tools=names, credentials=SECRETS)
    return "/instances/inst1/mcp-servers/srv1"


@pytest.mark.django_db(transaction=True)
async def test_each_kind_of_call_goes_out_as_the_description_says(backend):
    url = await sync_to_async(_setup)(backend.url)
    client = AsgiClient(app)

    result = await h.call(client, url, "listPets", {"tags": ["a", "b"], "X-Trace": "t1"})
    assert not result.get("isError"), result
    got = backend.last
    assert (got.method, got.raw_path) == ("GET", "/v2/pets")
    assert parse_qsl(got.query_string) == [("limit", "20"), ("tags", "a"), ("tags", "b")]
    assert got.headers["X-Trace"] == "t1" and got.headers["X-Shop-Key"] == "k-header"

    await h.call(client, url, "createPet", {"name": "Rex", "tag": None, "owner": {"name": "Ann"}})
    got = backend.last
    assert (got.method, got.raw_path) == ("POST", "/v2/pets")
    assert got.json() == {"name": "Rex", "status": "available", "owner": {"name": "Ann"}}

    result = await h.call(client, url, "getPet", {"petId": 7, "session": "abc"})
    assert not result.get("isError"), result
    got = backend.last
    assert got.raw_path == "/v2/pets/7" and parse_qsl(got.query_string) == [("key", "k-query")]
    assert got.headers["Cookie"] == "session=abc"

    await h.call(client, url, "deletePet", {"petId": 7})
    assert backend.last.method == "DELETE"
    assert backend.last.headers["Authorization"] == "Basic " + base64.b64encode(b"ann:s3cret").decode()

    content = base64.b64encode(b"\x89PNG...").decode()
    await h.call(client, url, "uploadPhoto", {"petId": 7, "caption": "hi", "file": content})
    got = backend.last
    assert got.headers["Authorization"] == "Bearer t-bearer"
    assert got.headers["Content-Type"] == f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
    assert got.body.decode() == (
        f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\n'
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{content}\r\n"
        f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nhi\r\n'
        f"--{MULTIPART_BOUNDARY}--\r\n")

    await h.call(client, url, "login", {"user": "ann", "remember": True})
    got = backend.last
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(got.body.decode()) == [("remember", "true"), ("user", "ann")]

    await h.call(client, url, "put_shapes", {"body": {"radius": 2}})
    assert (backend.last.method, backend.last.json()) == ("PUT", {"radius": 2})

    await h.call(client, url, "update_note", {"noteId": "n1", "body": "plain words"})
    got = backend.last
    assert (got.raw_path, got.headers["Content-Type"], got.body) == ("/v2/notes/n1", "text/plain", b"plain words")
