"""HTTP-to-MCP executor against a real HTTP backend on loopback: what the backend receives, what the caller sees."""
from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from gateway.backends import close_http_sessions, get_http_session
from gateway.executors.http_to_mcp import call_tool
from gateway.readmodel import SchemeConfig, ServerConfig, ToolConfig, UpstreamSecurity

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@dataclass
class Received:
    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    query_string: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Backend:
    """A REST backend that records every request and answers what each test tells it to."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: dict[str, Answer] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    def answer(self, raw_path: str, *, status: int = 200, json_body: Any = None, body: bytes | str | None = None,
               content_type: str = "application/json", headers: dict[str, str] | None = None,
               delay: float = 0.0) -> None:
        if json_body is not None:
            raw = json.dumps(json_body).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body if body is not None else b""
        self.answers[raw_path] = Answer(status, raw, content_type, headers or {}, delay)

    @property
    def last(self) -> Received:
        assert self.requests, "the backend received no request"
        return self.requests[-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        self.requests.append(Received(
            method=request.method, path=request.path, raw_path=raw_path,
            query=list(request.query.items()), query_string=request.rel_url.raw_query_string,
            headers=dict(request.headers), body=await request.read(),
        ))
        answer = self.answers.get(raw_path, Answer())
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type,
                            headers=answer.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def backend():
    server = Backend()
    await server.start()
    yield server
    await close_http_sessions()
    await server.stop()


def make_tool(*, args=(), url="{{.config.baseUrl}}/items", method="GET", headers=None, body=None,
              response=None, error_template="", output_schema=None, security=None, **request_flags) -> ToolConfig:
    request: dict[str, Any] = {"url": url, "method": method}
    if headers:
        request["headers"] = [{"key": k, "value": v} for k, v in headers.items()]
    if body is not None:
        request["body"] = body
    request.update(request_flags)
    return ToolConfig(name="tool", description="A tool.", input_schema={"type": "object"}, args=tuple(args),
                      request=request, response=response or {}, error_template=error_template,
                      output_schema=output_schema, upstream_security=security)


_server_ids = iter(range(1, 10_000))


def make_server(backend: Backend | None = None, *, timeout: float = 5.0, config=None, schemes=None) -> ServerConfig:
    if config is None:
        config = {"baseUrl": backend.url if backend else "http://127.0.0.1:9"}
    return ServerConfig(id=next(_server_ids), instance="default", name="petstore", description="", type="http_to_mcp",
                        enabled=True, config=config, timeout=timeout, tools={}, tool_order=(), schemes=schemes or {})


def text(result: dict) -> str:
    assert [c["type"] for c in result["content"]] == ["text"], result
    return result["content"][0]["text"]


async def call(backend, tool, arguments=None, **kw):
    server = kw.pop("server", None) or make_server(backend)
    return await call_tool(server=server, tool=tool, arguments=arguments, **kw)


# ------------------------------------------------------------------ argument positions

async def test_every_argument_position_reaches_the_backend(backend):
    backend.answer("/pets/a%20b%2Fc", json_body={"id": 1})
    tool = make_tool(url="{{.config.baseUrl}}/pets/{petId}", args=[
        {"name": "petId", "type": "string", "required": True, "position": "path"},
        {"name": "limit", "type": "integer", "position": "query"},
        {"name": "q", "type": "string", "position": "query"},
        {"name": "X-Trace", "type": "string", "position": "header"},
        {"name": "session", "type": "string", "position": "cookie"},
        {"name": "theme", "type": "string", "position": "cookie"},
    ])
    result = await call(backend, tool, {"petId": "a b/c", "limit": 5, "q": "cats & dogs", "X-Trace": "t-1",
                                        "session": "s1", "theme": "dark mode"})
    assert result == {"content": [{"type": "text", "text": '{"id": 1}'}], "isError": False}
    got = backend.last
    assert got.method == "GET"
    assert got.raw_path == "/pets/a%20b%2Fc"
    assert got.query == [("limit", "5"), ("q", "cats & dogs")]
    assert got.query_string == "limit=5&q=cats+%26+dogs"
    assert got.headers["X-Trace"] == "t-1"
    assert got.headers["Cookie"] == "session=s1; theme=dark%20mode"
    assert got.body == b""
    assert "Content-Type" not in got.headers


async def test_query_args_respect_the_templates_query_string(backend):
    tool = make_tool(url="{{.config.baseUrl}}/search?fixed=yes&limit=100", args=[
        {"name": "limit", "type": "integer", "position": "query"},
        {"name": "tags", "type": "array", "items": {"type": "string"}, "position": "query"},
        {"name": "filter", "type": "object", "position": "query"},
    ])
    await call(backend, tool, {"limit": 5, "tags": ["a", "b c"], "filter": {"x": 1}})
    assert backend.last.path == "/search"
    assert backend.last.query == [("fixed", "yes"), ("limit", "5"), ("tags", "a"), ("tags", "b c"),
                                  ("filter", '{"x":1}')]


async def test_path_argument_in_url_is_required_and_unknown_arguments_are_dropped(backend):
    tool = make_tool(url="{{.config.baseUrl}}/pets/{petId}", args=[{"name": "petId", "position": "path"}])
    result = await call(backend, tool, {})
    assert result == {"content": [{"type": "text", "text": 'Argument "petId" is required'}], "isError": True}
    assert backend.requests == []
    await call(backend, tool, {"petId": "7", "extra": "x"})
    assert backend.last.path == "/pets/7" and backend.last.query == [] and backend.last.body == b""


# ------------------------------------------------------------------ bodies and their precedence

async def test_position_body_arguments_become_a_json_object(backend):
    tool = make_tool(method="POST", url="{{.config.baseUrl}}/pets/{id}", args=[
        {"name": "id", "type": "integer", "position": "path"},
        {"name": "name", "type": "string", "position": "body"},
        {"name": "tags", "type": "array", "position": "body"},
        {"name": "dry", "type": "boolean", "position": "query"},
    ])
    await call(backend, tool, {"id": 3, "name": "Rex", "tags": ["good"], "dry": True})
    got = backend.last
    assert got.method == "POST" and got.path == "/pets/3" and got.query == [("dry", "true")]
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.body == b'{"name":"Rex","tags":["good"]}'


async def test_position_body_arguments_become_a_form_when_content_type_is_form(backend):
    tool = make_tool(method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}, args=[
        {"name": "name", "position": "body"},
        {"name": "age", "type": "integer", "position": "body"},
    ])
    await call(backend, tool, {"name": "Rex & Co", "age": "4"})
    assert backend.last.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert backend.last.body == b"name=Rex+%26+Co&age=4"


async def test_args_to_json_body_carries_every_argument_without_a_place_including_undeclared(backend):
    tool = make_tool(method="POST", url="{{.config.baseUrl}}/pets/{id}", argsToJsonBody=True, args=[
        {"name": "id", "type": "integer", "position": "path"},
        {"name": "name"},
        {"name": "weight", "type": "number", "position": "body"},
        {"name": "debug", "type": "boolean", "position": "query"},
    ])
    await call(backend, tool, {"id": "8", "name": "Rex", "weight": "12.5", "debug": "false", "color": "brown"})
    got = backend.last
    assert got.path == "/pets/8" and got.query == [("debug", "false")]
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.json() == {"name": "Rex", "weight": 12.5, "color": "brown"}


async def test_args_to_form_body(backend):
    tool = make_tool(method="POST", argsToFormBody=True, args=[{"name": "a"}, {"name": "n", "type": "integer"}])
    await call(backend, tool, {"a": "x y", "n": 2, "more": True})
    assert backend.last.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert backend.last.body == b"a=x+y&n=2&more=true"


async def test_args_to_url_param_puts_all_arguments_in_the_query(backend):
    tool = make_tool(argsToUrlParam=True, args=[{"name": "a"}, {"name": "b", "position": "body"},
                                                {"name": "h", "position": "header"}])
    await call(backend, tool, {"a": "1", "b": "2", "h": "3", "z": "4"})
    got = backend.last
    assert got.query == [("a", "1"), ("b", "2"), ("z", "4")]
    assert got.headers["h"] == "3"
    assert got.body == b"" and "Content-Type" not in got.headers


async def test_body_template_wins_over_args_to_json_body_and_is_sent_as_json(backend):
    tool = make_tool(method="POST", argsToJsonBody=True,
                     body='{"pet": {"name": "{{.args.name}}", "owner": "{{.config.owner}}"}}',
                     args=[{"name": "name", "position": "body"}])
    server = make_server(config={"baseUrl": backend.url, "owner": "ana"})
    await call(backend, tool, {"name": "Rex"}, server=server)
    assert backend.last.headers["Content-Type"] == "application/json; charset=utf-8"
    assert backend.last.json() == {"pet": {"name": "Rex", "owner": "ana"}}


async def test_args_to_json_body_wins_over_form_content_type_for_body_args(backend):
    tool = make_tool(method="POST", argsToJsonBody=True, argsToFormBody=False,
                     args=[{"name": "name", "position": "body"}])
    await call(backend, tool, {"name": "Rex"})
    assert backend.last.body == b'{"name":"Rex"}'


async def test_plain_body_template_is_sent_without_a_content_type_unless_configured(backend):
    tool = make_tool(method="PUT", body="name={{.args.name}}", args=[{"name": "name"}])
    await call(backend, tool, {"name": "Rex"})
    assert backend.last.body == b"name=Rex" and "Content-Type" not in backend.last.headers
    tool = make_tool(method="PUT", body="name={{.args.name}}", args=[{"name": "name"}],
                     headers={"Content-Type": "text/plain"})
    await call(backend, tool, {"name": "Rex"})
    assert backend.last.headers["Content-Type"] == "text/plain"


# ------------------------------------------------------------------ templates in the request

async def test_header_templates_and_url_templates_see_args_and_config(backend):
    tool = make_tool(url="{{.config.baseUrl}}/v{{.config.version}}/users/{{.args.user}}",
                     headers={"X-Tenant": "{{.config.tenant}}", "X-User": "user-{{.args.user}}",
                              "Accept": "application/json"},
                     args=[{"name": "user"}])
    server = make_server(config={"baseUrl": backend.url, "version": 2, "tenant": "acme"})
    await call(backend, tool, {"user": "bob"}, server=server)
    got = backend.last
    assert got.path == "/v2/users/bob"
    assert got.headers["X-Tenant"] == "acme" and got.headers["X-User"] == "user-bob"
    assert got.headers["Accept"] == "application/json"


async def test_url_that_is_not_absolute_is_reported(backend):
    tool = make_tool(url="{{.config.baseUrl}}/pets")
    result = await call(backend, tool, {}, server=make_server(config={"baseUrl": "/api"}))
    assert result["isError"] is True
    assert text(result) == ('The tool\'s URL "/api/pets" is not an absolute http:// or https:// URL '
                            "(check the URL template and the MCP server's config)")


async def test_template_errors_are_reported_with_their_line(backend):
    backend.answer("/items", json_body={"items": [1, 2]})
    broken = make_tool(response={"body": "Pet {{.name"})
    assert await call(backend, broken) == {"isError": True, "content": [{"type": "text", "text":
        "The tool's response template is not a valid template: line 1: unclosed action: missing }}"}]}
    assert backend.requests == []
    failing = make_tool(response={"body": "first\n{{index .items 5}}"})
    assert await call(backend, failing) == {"isError": True, "content": [{"type": "text", "text":
        "Could not render the response template: line 2: error calling index: index out of range: 5"}]}


# ------------------------------------------------------------------ coercion, defaults, validation

async def test_values_are_coerced_and_defaults_fill_missing_arguments(backend):
    tool = make_tool(args=[
        {"name": "limit", "type": "integer", "position": "query", "default": 20},
        {"name": "page", "type": "integer", "position": "query"},
        {"name": "ratio", "type": "number", "position": "query"},
        {"name": "all", "type": "boolean", "position": "query"},
        {"name": "ids", "type": "array", "items": {"type": "integer"}, "position": "query"},
        {"name": "sort", "type": "string", "position": "query", "default": "name"},
        {"name": "code", "type": "string", "position": "query"},
    ])
    await call(backend, tool, {"page": " 3 ", "ratio": "0.5", "all": "TRUE", "ids": "[1, \"2\"]", "code": 7,
                               "sort": None})
    assert backend.last.query == [("limit", "20"), ("page", "3"), ("ratio", "0.5"), ("all", "true"),
                                  ("ids", "1"), ("ids", "2"), ("sort", "name"), ("code", "7")]


async def test_argument_errors_are_results_a_person_can_act_on(backend):
    tool = make_tool(args=[
        {"name": "petId", "type": "integer", "required": True, "position": "query"},
        {"name": "limit", "type": "integer", "position": "query"},
        {"name": "status", "enum": ["available", "pending", "sold"], "position": "query"},
        {"name": "ids", "type": "array", "items": {"type": "integer"}, "position": "query"},
        {"name": "flag", "type": "boolean", "position": "query"},
    ])
    result = await call(backend, tool, {"limit": "abc", "status": "gone", "ids": [1, "x"], "flag": "yes"})
    assert result == {"isError": True, "content": [{"type": "text", "text": "\n".join([
        'Argument "petId" is required',
        'Argument "limit" must be an integer, got "abc"',
        'Argument "status" must be one of "available", "pending", "sold"; got "gone"',
        'Argument "ids[1]" must be an integer, got "x"',
        'Argument "flag" must be a boolean (true or false), got "yes"',
    ])}]}
    assert backend.requests == []
    result = await call(backend, tool, {"petId": 1.5})
    assert text(result) == 'Argument "petId" must be an integer, got 1.5'
    result = await call(backend, tool, {"petId": 2.0, "status": "sold"})
    assert result["isError"] is False
    assert backend.last.query == [("petId", "2"), ("status", "sold")]


# ------------------------------------------------------------------ backend security

def scheme(**kw) -> SchemeConfig:
    return SchemeConfig(**kw)


async def test_basic_credentials_user_pass_are_encoded_and_encoded_ones_kept(backend):
    basic = scheme(id="B", type="http", scheme="basic")
    await call(backend, make_tool(security=UpstreamSecurity(scheme=basic, credential="ana:s3cr:et")))
    assert backend.last.headers["Authorization"] == "Basic " + base64.b64encode(b"ana:s3cr:et").decode()
    await call(backend, make_tool(security=UpstreamSecurity(scheme=basic, credential="YW5hOnB3")))
    assert backend.last.headers["Authorization"] == "Basic YW5hOnB3"
    default = scheme(id="B", type="http", scheme="basic", default_credential="bob:pw")
    await call(backend, make_tool(security=UpstreamSecurity(scheme=default)))
    assert backend.last.headers["Authorization"] == "Basic Ym9iOnB3"


async def test_bearer_and_api_key_in_header_and_query(backend):
    bearer = scheme(id="T", type="http", scheme="bearer", default_credential="default-token")
    await call(backend, make_tool(security=UpstreamSecurity(scheme=bearer, credential="tool-token")))
    assert backend.last.headers["Authorization"] == "Bearer tool-token"
    await call(backend, make_tool(security=UpstreamSecurity(scheme=bearer)))
    assert backend.last.headers["Authorization"] == "Bearer default-token"

    header_key = scheme(id="K", type="apiKey", location="header", name="X-API-Key", default_credential="k1")
    await call(backend, make_tool(security=UpstreamSecurity(scheme=header_key)))
    assert backend.last.headers["X-API-Key"] == "k1" and "Authorization" not in backend.last.headers

    query_key = scheme(id="Q", type="apiKey", location="query", name="api_key", default_credential="k&2")
    tool = make_tool(url="{{.config.baseUrl}}/items?x=1", security=UpstreamSecurity(scheme=query_key),
                     args=[{"name": "q", "position": "query"}])
    await call(backend, tool, {"q": "z"})
    assert backend.last.query == [("x", "1"), ("q", "z"), ("api_key", "k&2")]


async def test_query_credential_never_appears_in_messages(backend):
    backend.answer("/items", status=500, body="boom", content_type="text/plain")
    query_key = scheme(id="Q", type="apiKey", location="query", name="api_key", default_credential="sekret")
    result = await call(backend, make_tool(security=UpstreamSecurity(scheme=query_key)))
    assert text(result) == f"Backend returned HTTP 500 Internal Server Error for GET {backend.url}/items: boom"


async def test_passthrough_forwards_the_clients_credential_else_the_configured_one(backend):
    bearer = scheme(id="T", type="http", scheme="bearer", default_credential="configured")
    tool = make_tool(security=UpstreamSecurity(scheme=bearer, passthrough=True))
    await call(backend, tool, request_headers={"authorization": "Bearer client-token"})
    assert backend.last.headers["Authorization"] == "Bearer client-token"
    await call(backend, tool, request_headers={})
    assert backend.last.headers["Authorization"] == "Bearer configured"


async def test_passthrough_of_basic_and_of_a_client_api_key_header(backend):
    basic = scheme(id="B", type="http", scheme="basic", default_credential="svc:pw")
    tool = make_tool(security=UpstreamSecurity(scheme=basic, passthrough=True))
    await call(backend, tool, request_headers={"authorization": "Basic YW5hOnB3"})
    assert backend.last.headers["Authorization"] == "Basic YW5hOnB3"
    # A Bearer token is not a Basic credential: the configured one is used instead.
    await call(backend, tool, request_headers={"authorization": "Bearer gateway-key"})
    assert backend.last.headers["Authorization"] == "Basic " + base64.b64encode(b"svc:pw").decode()

    key = scheme(id="K", type="apiKey", location="header", name="X-API-Key", default_credential="configured")
    tool = make_tool(security=UpstreamSecurity(scheme=key, passthrough=True))
    await call(backend, tool, request_headers={"x-api-key": "client-key", "authorization": "Bearer gateway-key"})
    assert backend.last.headers["X-API-Key"] == "client-key" and "Authorization" not in backend.last.headers


async def test_client_authorization_is_never_forwarded_without_passthrough(backend):
    await call(backend, make_tool(), request_headers={"authorization": "Bearer gateway-key", "x-api-key": "k"})
    assert "Authorization" not in backend.last.headers and "X-Api-Key" not in backend.last.headers
    key = scheme(id="K", type="apiKey", location="header", name="X-API-Key", default_credential="backend-key")
    await call(backend, make_tool(security=UpstreamSecurity(scheme=key)),
               request_headers={"authorization": "Bearer gateway-key", "x-api-key": "client"})
    assert backend.last.headers["X-API-Key"] == "backend-key" and "Authorization" not in backend.last.headers


async def test_missing_credential_is_reported_before_calling(backend):
    bearer = scheme(id="T", type="http", scheme="bearer")
    result = await call(backend, make_tool(security=UpstreamSecurity(scheme=bearer)))
    assert text(result) == ('No credential is configured for the backend security scheme "T" '
                            "(set one on the MCP server or the tool)")
    assert backend.requests == []


# ------------------------------------------------------------------ responses

async def test_response_template_renders_over_the_json_body(backend):
    backend.answer("/pets/12", json_body={"id": 12, "name": "Rex", "status": "available"})
    tool = make_tool(url="{{.config.baseUrl}}/pets/{petId}", args=[{"name": "petId", "type": "integer",
                                                                      "required": True, "position": "path"}],
                     response={"body": "Pet {{.id}}: {{.name}} ({{.status}})"})
    assert await call(backend, tool, {"petId": "12"}) == {
        "content": [{"type": "text", "text": "Pet 12: Rex (available)"}], "isError": False}


async def test_response_template_over_a_body_that_is_not_json_sees_it_as_body(backend):
    backend.answer("/items", body="plain words", content_type="text/plain")
    tool = make_tool(response={"body": "Backend said: {{._body}}"})
    assert text(await call(backend, tool)) == "Backend said: plain words"


async def test_prepend_and_append_wrap_the_raw_body(backend):
    backend.answer("/items", json_body=[1, 2])
    tool = make_tool(response={"prependBody": "Items:\n", "appendBody": "\n(end)"})
    assert text(await call(backend, tool)) == "Items:\n[1, 2]\n(end)"


async def test_empty_success_body_answers_success(backend):
    backend.answer("/items", status=204, body=b"", content_type="text/plain")
    assert await call(backend, make_tool()) == {"content": [{"type": "text", "text": "success"}], "isError": False}


async def test_non_2xx_is_an_error_with_status_and_body(backend):
    backend.answer("/pets/99", status=404, json_body={"detail": "Pet 99 not found"})
    tool = make_tool(url="{{.config.baseUrl}}/pets/{petId}", args=[{"name": "petId", "position": "path"}])
    result = await call(backend, tool, {"petId": "99"})
    assert result == {"isError": True, "content": [{"type": "text", "text":
        f'Backend returned HTTP 404 Not Found for GET {backend.url}/pets/99: {{"detail": "Pet 99 not found"}}'}]}


async def test_redirects_are_reported_not_followed(backend):
    backend.answer("/items", status=302, body=b"", headers={"Location": "https://elsewhere.example/items"})
    result = await call(backend, make_tool())
    assert text(result) == (f"Backend returned HTTP 302 Found for GET {backend.url}/items "
                            "(redirects are not followed; Location: https://elsewhere.example/items)")
    assert len(backend.requests) == 1


async def test_error_template_sees_body_headers_and_status(backend):
    backend.answer("/items", status=429, json_body={"message": "slow down"}, headers={"X-Request-Id": "r-9"})
    tool = make_tool(error_template='{{._status}} {{.message}} (request {{index ._headers "x-request-id"}})')
    assert await call(backend, tool) == {"content": [{"type": "text", "text": "429 slow down (request r-9)"}],
                                         "isError": True}


async def test_error_template_that_renders_blank_falls_back_to_the_plain_account(backend):
    backend.answer("/items", status=503, body="down for maintenance", content_type="text/plain")
    tool = make_tool(error_template="{{.message}}")
    assert text(await call(backend, tool)) == (
        f"Backend returned HTTP 503 Service Unavailable for GET {backend.url}/items: down for maintenance")
    tool = make_tool(error_template="Backend is unhappy ({{._status}}): {{._body}}")
    assert text(await call(backend, tool)) == "Backend is unhappy (503): down for maintenance"


async def test_refused_connection_is_reported(backend):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = make_server(config={"baseUrl": f"http://127.0.0.1:{port}"})
    result = await call(None, make_tool(url="{{.config.baseUrl}}/pets/1"), server=server)
    assert result == {"isError": True, "content": [{"type": "text", "text":
        f"Backend http://127.0.0.1:{port}/pets/1 refused the connection"}]}


async def test_backend_slower_than_the_server_timeout_is_reported_in_time(backend):
    backend.answer("/slow", delay=3, json_body={})
    started = time.monotonic()
    result = await call(backend, make_tool(url="{{.config.baseUrl}}/slow"), server=make_server(backend, timeout=0.3))
    assert time.monotonic() - started < 1.0
    assert result == {"isError": True, "content": [{"type": "text", "text":
        f"Backend did not answer within 0.3 s (GET {backend.url}/slow)"}]}


async def test_image_response_becomes_image_content(backend):
    backend.answer("/photo", body=PNG, content_type="image/png")
    result = await call(backend, make_tool(url="{{.config.baseUrl}}/photo", response={"body": "ignored"}))
    assert result == {"isError": False, "content": [
        {"type": "image", "data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}]}


async def test_audio_response_becomes_audio_content(backend):
    backend.answer("/say", body=b"RIFF....WAVE", content_type="audio/wav")
    result = await call(backend, make_tool(url="{{.config.baseUrl}}/say"))
    assert result["content"] == [{"type": "audio", "data": base64.b64encode(b"RIFF....WAVE").decode(),
                                  "mimeType": "audio/wav"}]


async def test_output_schema_gives_structured_content(backend):
    backend.answer("/pets/1", json_body={"id": 1, "name": "Rex"})
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    tool = make_tool(url="{{.config.baseUrl}}/pets/1", output_schema=schema)
    assert await call(backend, tool) == {"isError": False, "structuredContent": {"id": 1, "name": "Rex"},
                                         "content": [{"type": "text", "text": '{"id": 1, "name": "Rex"}'}]}
    templated = make_tool(url="{{.config.baseUrl}}/pets/1", output_schema=schema, response={"body": "Pet {{.name}}"})
    assert await call(backend, templated) == {
        "isError": False, "structuredContent": {"id": 1, "name": "Rex"},
        "content": [{"type": "text", "text": "Pet Rex"}, {"type": "text", "text": '{"id": 1, "name": "Rex"}'}]}
    # Revisions before 2025-06-18 have no structuredContent.
    older = await call(backend, tool, protocol_version="2025-03-26")
    assert older == {"isError": False, "content": [{"type": "text", "text": '{"id": 1, "name": "Rex"}'}]}


async def test_oversized_response_is_an_error(backend, settings):
    settings.GATEWAY_MAX_BACKEND_RESPONSE_BYTES = 1024
    backend.answer("/big", body=b"x" * 5000, content_type="text/plain")
    result = await call(backend, make_tool(url="{{.config.baseUrl}}/big"))
    assert result == {"isError": True, "content": [{"type": "text", "text":
        f"Backend response is larger than the gateway's limit of 1 KiB (GET {backend.url}/big)"}]}
    backend.answer("/fits", body=b"y" * 1024, content_type="text/plain")
    assert text(await call(backend, make_tool(url="{{.config.baseUrl}}/fits"))) == "y" * 1024


async def test_compressed_response_is_decompressed_and_capped_by_its_decompressed_size(backend, settings):
    settings.GATEWAY_MAX_BACKEND_RESPONSE_BYTES = 1024
    backend.answer("/small", body=gzip.compress(b"hello " * 10), content_type="text/plain",
                   headers={"Content-Encoding": "gzip"})
    assert text(await call(backend, make_tool(url="{{.config.baseUrl}}/small"))) == "hello " * 10
    backend.answer("/bomb", body=gzip.compress(b"0" * 100_000), content_type="text/plain",
                   headers={"Content-Encoding": "gzip"})
    result = await call(backend, make_tool(url="{{.config.baseUrl}}/bomb"))
    assert text(result) == f"Backend response is larger than the gateway's limit of 1 KiB (GET {backend.url}/bomb)"


async def test_direct_response_needs_no_backend(backend):
    tool = make_tool(url="", args=[{"name": "who", "default": "world"}],
                     response={"body": "Hello, {{.args.who}} from {{.config.site}}"})
    server = make_server(config={"site": "petstore"})
    assert await call(None, tool, {}, server=server) == {
        "content": [{"type": "text", "text": "Hello, world from petstore"}], "isError": False}
    assert backend.requests == []


# ------------------------------------------------------------------ the shared client

async def test_one_shared_session_per_loop_without_cookies_or_env_proxies(backend, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    session = get_http_session()
    assert get_http_session() is session
    assert session.trust_env is False
    backend.answer("/items", body="ok", content_type="text/plain", headers={"Set-Cookie": "sid=abc; Path=/"})
    await call(backend, make_tool())
    await call(backend, make_tool())
    assert "Cookie" not in backend.last.headers
    assert len(session.cookie_jar) == 0


# ------------------------------------------------------------------ templates that take long, answers nested deep

async def test_a_template_past_its_inline_slice_finishes_on_a_worker_with_the_same_answer(backend):
    backend.answer("/sum", json_body={"n": 100_000})
    # Tens of milliseconds of steps: more than the event loop's slice, well within the time limit.
    tool = make_tool(url="{{.config.baseUrl}}/sum",
                     response={"body": "{{ $t := 0 }}{{ range .n }}{{ $t = add $t 1 }}{{ end }}total {{ $t }}"})
    assert text(await call(backend, tool)) == "total 100000"
    body = make_tool(url="{{.config.baseUrl}}/echo", method="POST",
                     body='{{ range 50000 }}{{ if regexMatch "^a+$" "aaaa" }}a{{ end }}{{ end }}')
    assert text(await call(backend, body)) == '{"ok": true}'
    assert backend.last.body == b"a" * 50_000


async def test_a_template_past_its_time_limit_is_an_error_result(backend):
    # "(a|b)c" makes RE2 scan the whole argument (~100 µs a call), so the clock runs out long before the
    # step budget; an end-anchored pattern would be matched backwards in microseconds and race the budget.
    tool = make_tool(url="{{.config.baseUrl}}/x", method="POST", args=[{"name": "s", "position": "body"}],
                     body='{{ range 100000000 }}{{ if regexMatch "(a|b)c" $.args.s }}x{{ end }}{{ end }}')
    result = await call(backend, tool, {"s": "a" * 99_999 + "!"})
    assert result == {"isError": True, "content": [{"type": "text", "text": (
        "Could not render the body template: line 1: rendering took longer than 1 seconds")}]}
    assert backend.requests == []


async def test_a_deeply_nested_backend_answer_reaches_the_template_as_text(backend):
    nested = "[" * 100_000 + "]" * 100_000
    backend.answer("/deep", body=nested)
    tool = make_tool(url="{{.config.baseUrl}}/deep", response={"body": "{{ len ._body }} characters"})
    assert text(await call(backend, tool)) == "200000 characters"
