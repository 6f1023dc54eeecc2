"""The official MCP Python SDK against a live gateway: both transports, legacy handshake and stateless 2026-07-28."""
from __future__ import annotations


import httpx2
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from ..live import free_port
from .consumer_setup import guarded_petstore_api

pytestmark = pytest.mark.live


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def exercise_petstore(session: ClientSession) -> None:
    tools = await session.list_tools()
    by_name = {tool.name: tool for tool in tools.tools}
    assert {"listPets", "getPet", "createPet", "updatePet", "deletePet"} <= set(by_name)
    get_pet = by_name["getPet"]
    assert get_pet.input_schema["properties"]["petId"]["type"] == "integer"
    assert get_pet.input_schema["required"] == ["petId"]

    found = await session.call_tool("getPet", {"petId": 1})
    assert found.is_error is False
    assert "Rex" in text_of(found)

    missing = await session.call_tool("getPet", {"petId": 99999})
    assert missing.is_error is True
    assert "404" in text_of(missing) or "not found" in text_of(missing).lower()

    listed = await session.call_tool("listPets", {"status": "available"})
    assert listed.is_error is False
    assert "Rex" in text_of(listed) and "Tom" not in text_of(listed)


async def test_streamable_http_legacy_handshake(demo_server):
    async with streamable_http_client(demo_server.url + "/mcp-servers/petstore") as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.protocol_version == "2025-11-25"
            assert init.server_info.name == "petstore"
            assert init.capabilities.tools is not None
            await exercise_petstore(session)


async def test_streamable_http_stateless_2026(demo_server):
    async with streamable_http_client(demo_server.url + "/mcp-servers/petstore") as (read, write):
        async with ClientSession(read, write) as session:
            discovered = await session.discover()
            assert "2026-07-28" in discovered.supported_versions
            assert "2024-11-05" in discovered.supported_versions
            await exercise_petstore(session)


async def test_sse_transport(demo_server):
    async with sse_client(demo_server.url + "/mcp-servers/petstore/sse") as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "petstore"
            await exercise_petstore(session)


async def test_instance_path_form(demo_server):
    async with streamable_http_client(demo_server.url + "/instances/default/mcp-servers/petstore") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert (await session.call_tool("getPet", {"petId": 2})).is_error is False


async def test_backend_down_is_a_tool_error(demo_server, api):
    closed = free_port()
    instance = api.get("/instances/").json()["results"][0]["id"]
    created = api.post("/mcp-servers/", json={"instance": instance, "name": "down-backend",
                                               "description": "A backend that is not running"})
    assert created.status_code == 201, created.text
    yaml_doc = f"""
tools:
  - name: ping_backend
    description: Calls a backend that refuses connections.
    requestTemplate:
      url: http://127.0.0.1:{closed}/health
      method: GET
"""
    applied = api.put(f"/mcp-servers/{created.json()['id']}/tools/yaml", content=yaml_doc,
                      headers={"Content-Type": "application/yaml"})
    assert applied.status_code == 200, applied.text
    assert applied.json()["created"] == ["ping_backend"]

    async with streamable_http_client(demo_server.url + "/mcp-servers/down-backend") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("ping_backend", {})
            assert result.is_error is True
            message = text_of(result)
            assert f"127.0.0.1:{closed}" in message
            assert "refused" in message.lower() or "connect" in message.lower()


async def test_tool_change_shows_in_next_tools_list(demo_server, api):
    instance = api.get("/instances/").json()["results"][0]["id"]
    server = api.post("/mcp-servers/", json={"instance": instance, "name": "changing"}).json()
    doc = "tools:\n  - name: first\n    description: v1\n    requestTemplate: {url: '', method: GET}\n" \
          "    responseTemplate: {body: 'one'}\n"
    assert api.put(f"/mcp-servers/{server['id']}/tools/yaml", content=doc).status_code == 200
    async with streamable_http_client(demo_server.url + "/mcp-servers/changing") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert [t.description for t in (await session.list_tools()).tools] == ["v1"]
            assert api.put(f"/mcp-servers/{server['id']}/tools/yaml",
                           content=doc.replace("v1", "v2")).status_code == 200
            assert [t.description for t in (await session.list_tools()).tools] == ["v2"]
            assert text_of(await session.call_tool("first", {})) == "one"


async def test_tool_urls_relative_to_the_backend_service(demo_server, api):
    instance = api.get("/instances/").json()["results"][0]["id"]
    backend = next(s for s in api.get("/services/").json()["results"] if s["name"] == "demo-api")
    created = api.post("/mcp-servers/", json={"instance": instance, "name": "relative", "backend_service": backend["id"]})
    assert created.status_code == 201, created.text
    doc = """
server:
  name: relative
  securitySchemes:
    - {id: Key, type: apiKey, in: header, name: X-API-Key, defaultCredential: demo-key}
  defaultUpstreamSecurity: {id: Key}
tools:
  - name: petByPath
    description: A URL relative to the backend service.
    args: [{name: petId, type: integer, required: true, position: path}]
    requestTemplate: {url: "/pets/{petId}", method: GET}
    responseTemplate: {body: "{{.name}}"}
  - name: petByBaseUrl
    description: The backend service's URL as .config.baseUrl.
    args: [{name: petId, type: integer, required: true, position: path}]
    requestTemplate: {url: "{{.config.baseUrl}}/pets/{petId}", method: GET}
    responseTemplate: {body: "{{.name}}"}
"""
    applied = api.put(f"/mcp-servers/{created.json()['id']}/tools/yaml", content=doc)
    assert applied.status_code == 200, applied.text
    async with streamable_http_client(demo_server.url + "/mcp-servers/relative") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert text_of(await session.call_tool("petByPath", {"petId": 3})) == "Nemo"
            assert text_of(await session.call_tool("petByBaseUrl", {"petId": 4})) == "Kiwi"


# ------------------------------------------------------------ Consumer Authentication

@pytest.fixture(scope="module")
def guarded(demo_server, api_token) -> str:
    """A copy of petstore with API-key authentication on; its one consumer's key."""
    setup = guarded_petstore_api(demo_server, api_token, "guarded-sdk")
    return setup["consumers"]["agent"]["key"]


GUARDED = "/mcp-servers/guarded-sdk"
NO_KEY = "This MCP server requires an API key: send it as Authorization: Bearer <key>."


async def test_streamable_http_with_an_api_key(demo_server, guarded):
    headers = {"Authorization": f"Bearer {guarded}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(demo_server.url + GUARDED, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "guarded-sdk"
                await exercise_petstore(session)
        async with streamable_http_client(demo_server.url + GUARDED, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.discover()
                await exercise_petstore(session)


async def test_sse_with_an_api_key(demo_server, guarded):
    async with sse_client(demo_server.url + GUARDED + "/sse",
                          headers={"Authorization": f"Bearer {guarded}"}) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await exercise_petstore(session)


async def test_streamable_http_without_a_key_gets_the_401(demo_server, guarded):
    async with httpx2.AsyncClient(timeout=30) as http:
        async with streamable_http_client(demo_server.url + GUARDED, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                with pytest.raises(MCPError) as refused:
                    await session.initialize()
    assert refused.value.error.code == -32001
    assert refused.value.error.message == NO_KEY
    # what the SDK read: the status and challenge, as any HTTP client sees them
    async with httpx2.AsyncClient(timeout=30) as http:
        raw = await http.post(demo_server.url + GUARDED, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                                                "params": {"protocolVersion": "2025-11-25"}},
                              headers={"Accept": "application/json, text/event-stream",
                                       "Authorization": "Bearer mck_wrong"})
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"].startswith('Bearer realm="default/guarded-sdk", error="invalid_token"')


async def test_sse_without_a_key_gets_the_401(demo_server, guarded):
    with pytest.raises(BaseException) as refused:
        async with sse_client(demo_server.url + GUARDED + "/sse") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
    errors = [refused.value]
    while isinstance(errors[-1], BaseExceptionGroup):
        errors.append(errors[-1].exceptions[0])
    status_errors = [e for e in errors if isinstance(e, httpx2.HTTPStatusError)]
    assert status_errors, repr(refused.value)
    assert status_errors[0].response.status_code == 401
