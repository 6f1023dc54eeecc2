"""Raw HTTP against a live gateway: every status-code and protocol rule, per MCP revision."""
from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.live

ACCEPT = "application/json, text/event-stream"
HANDSHAKE = ["2025-03-26", "2025-06-18", "2025-11-25"]


def rpc(method, params=None, id=1):
    message = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    if params is not None:
        message["params"] = params
    return message


@pytest.fixture
def http(demo_server):
    with httpx.Client(base_url=demo_server.url, timeout=15, headers={"Accept": ACCEPT}) as client:
        yield client


def initialize(http, version, path="/mcp-servers/petstore"):
    response = http.post(path, json=rpc("initialize", {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}))
    assert response.status_code == 200, response.text
    return response


def session_headers(http, version, path="/mcp-servers/petstore"):
    sid = initialize(http, version, path).headers["mcp-session-id"]
    return {"Mcp-Session-Id": sid, "MCP-Protocol-Version": version}


# ------------------------------------------------------------ handshake revisions (Streamable HTTP)

@pytest.mark.parametrize("version", HANDSHAKE)
def test_initialize_echoes_version_and_mints_a_session(http, version):
    response = initialize(http, version)
    body = response.json()
    assert body["result"]["protocolVersion"] == version
    assert body["result"]["serverInfo"]["name"] == "petstore"
    sid = response.headers["mcp-session-id"]
    assert len(sid) >= 32 and all(0x21 <= ord(c) <= 0x7E for c in sid)


def test_unknown_version_negotiates_latest(http):
    assert initialize(http, "1999-01-01").json()["result"]["protocolVersion"] == "2025-11-25"


@pytest.mark.parametrize("version", HANDSHAKE)
def test_session_lifecycle(http, version):
    headers = session_headers(http, version)
    initialized = http.post("/mcp-servers/petstore", json=rpc("notifications/initialized", id=None), headers=headers)
    assert initialized.status_code == 202 and initialized.content == b""
    ping = http.post("/mcp-servers/petstore", json=rpc("ping", id=7), headers=headers)
    assert ping.status_code == 200 and ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}

    missing = http.post("/mcp-servers/petstore", json=rpc("tools/list"), headers={"MCP-Protocol-Version": version})
    assert missing.status_code == 400
    unknown = http.post("/mcp-servers/petstore", json=rpc("tools/list"),
                        headers={"Mcp-Session-Id": "no-such-session", "MCP-Protocol-Version": version})
    assert unknown.status_code == 404

    assert http.delete("/mcp-servers/petstore", headers={"MCP-Protocol-Version": version}).status_code == 400
    assert http.delete("/mcp-servers/petstore", headers=headers).status_code == 204
    ended = http.post("/mcp-servers/petstore", json=rpc("tools/list"), headers=headers)
    assert ended.status_code == 404
    assert http.delete("/mcp-servers/petstore", headers=headers).status_code == 404


def test_session_is_bound_to_its_server(http, api):
    instance = api.get("/instances/").json()["results"][0]["id"]
    api.post("/mcp-servers/", json={"instance": instance, "name": "other-server"})
    headers = session_headers(http, "2025-11-25")
    response = http.post("/mcp-servers/other-server", json=rpc("tools/list"), headers=headers)
    assert response.status_code == 404


def test_batches_only_in_2025_03_26(http):
    headers = session_headers(http, "2025-03-26")
    batch = [rpc("ping", id=1), rpc("tools/list", id=2), rpc("notifications/initialized", id=None)]
    response = http.post("/mcp-servers/petstore", json=batch, headers=headers)
    assert response.status_code == 200
    answers = {item["id"]: item for item in response.json()}
    assert set(answers) == {1, 2}
    assert answers[1]["result"] == {}
    assert any(t["name"] == "getPet" for t in answers[2]["result"]["tools"])

    for version in ("2025-06-18", "2025-11-25"):
        headers = session_headers(http, version)
        refused = http.post("/mcp-servers/petstore", json=batch, headers=headers)
        assert refused.status_code == 400
        assert "batch" in refused.json()["error"]["message"].lower()


def test_initialize_in_a_batch_is_refused(http):
    response = http.post("/mcp-servers/petstore", json=[rpc("initialize", {"protocolVersion": "2025-03-26"})])
    assert response.status_code == 400


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_protocol_version_header_checks(http, version):
    headers = session_headers(http, version)
    bogus = http.post("/mcp-servers/petstore", json=rpc("ping"), headers={**headers, "MCP-Protocol-Version": "bogus"})
    assert bogus.status_code == 400
    other = "2025-03-26"
    mismatch = http.post("/mcp-servers/petstore", json=rpc("ping"), headers={**headers, "MCP-Protocol-Version": other})
    assert mismatch.status_code == 400
    # Without the header the request is still served (assumed 2025-03-26 by older clients).
    headerless = http.post("/mcp-servers/petstore", json=rpc("ping"), headers={"Mcp-Session-Id": headers["Mcp-Session-Id"]})
    assert headerless.status_code == 200


@pytest.mark.parametrize("version", HANDSHAKE)
def test_origin_validation(http, version):
    evil = http.post("/mcp-servers/petstore", json=rpc("initialize", {"protocolVersion": version}),
                     headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    local = http.post("/mcp-servers/petstore", json=rpc("initialize", {"protocolVersion": version}),
                      headers={"Origin": "http://localhost:6274"})
    assert local.status_code == 200
    assert local.headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "mcp-session-id" in local.headers["access-control-expose-headers"]


def test_a_rebound_host_is_refused_and_a_claimed_domain_is_not(http, api):
    # DNS rebinding: a page of evil.example.com whose name now resolves to the gateway sends a Host and an Origin that
    # match each other; only a host the gateway answers for (its domains, its own names) earns that trust.
    init = rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                              "clientInfo": {"name": "raw", "version": "1"}})
    rebound = http.post("/mcp-servers/petstore", json=init,
                        headers={"Host": "evil.example.com", "Origin": "http://evil.example.com"})
    assert rebound.status_code == 403
    assert rebound.json()["error"]["message"] == "Forbidden: origin http://evil.example.com is not allowed."
    instance = api.get("/instances/").json()["results"][0]["id"]
    created = api.post("/mcp-servers/", json={"instance": instance, "name": "claimed", "domains": ["tools.example.test"]})
    assert created.status_code == 201, created.text
    claimed = http.post("/mcp-servers/claimed", json=init,
                        headers={"Host": "tools.example.test", "Origin": "https://tools.example.test"})
    assert claimed.status_code == 200, claimed.text
    assert claimed.headers["access-control-allow-origin"] == "https://tools.example.test"


def test_get_stream_rules(http, demo_server):
    assert http.get("/mcp-servers/petstore", headers={"Accept": "text/event-stream"}).status_code == 400
    assert http.get("/mcp-servers/petstore", headers={"Accept": "text/event-stream",
                                                       "Mcp-Session-Id": "nope"}).status_code == 404
    headers = session_headers(http, "2025-11-25")
    assert http.get("/mcp-servers/petstore", headers={**headers, "Accept": "application/json"}).status_code == 405
    with http.stream("GET", "/mcp-servers/petstore", headers={**headers, "Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line == "" and any(l.startswith("id:") for l in lines):
                break
        assert any(l.startswith("id:") for l in lines)  # the 2025-11-25 priming event
        assert "data:" in lines or "data: " in lines


def test_malformed_input_gets_jsonrpc_errors(http):
    headers = session_headers(http, "2025-11-25")
    parse = http.post("/mcp-servers/petstore", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert parse.status_code == 400 and parse.json()["error"]["code"] == -32700
    invalid = http.post("/mcp-servers/petstore", json={"id": 1, "method": "ping"}, headers=headers)
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == -32600
    not_object = http.post("/mcp-servers/petstore", json="hello", headers=headers)
    assert not_object.status_code == 400 and not_object.json()["error"]["code"] == -32600
    unknown = http.post("/mcp-servers/petstore", json=rpc("resources/list"), headers=headers)
    assert unknown.json()["error"]["code"] == -32601
    bad_cursor = http.post("/mcp-servers/petstore", json=rpc("tools/list", {"cursor": "zzz"}), headers=headers)
    assert bad_cursor.json()["error"]["code"] == -32602
    no_tool = http.post("/mcp-servers/petstore", json=rpc("tools/call", {"name": "nope", "arguments": {}}), headers=headers)
    assert no_tool.json()["error"]["code"] == -32602
    empty = http.post("/mcp-servers/petstore", content=b"", headers=headers)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == -32700
    huge = http.post("/mcp-servers/petstore", content=b"[" + b"1," * 3_000_000 + b"1]", headers=headers)
    assert huge.status_code == 413


def test_not_acceptable_and_unknown_paths(http):
    response = http.post("/mcp-servers/petstore", json=rpc("initialize", {"protocolVersion": "2025-11-25"}),
                         headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert http.post("/mcp-servers/no-such-server", json=rpc("ping")).status_code == 404
    assert http.post("/mcp-servers/petstore/elsewhere", json=rpc("ping")).status_code == 404
    assert http.put("/mcp-servers/petstore", json=rpc("ping")).status_code == 405


def test_tools_list_is_paginated(http, api):
    instance = api.get("/instances/").json()["results"][0]["id"]
    server = api.post("/mcp-servers/", json={"instance": instance, "name": "many-tools"}).json()
    doc = "tools:\n" + "".join(
        f"  - name: tool_{i:03d}\n    description: Tool {i}\n    requestTemplate: {{url: '', method: GET}}\n"
        f"    responseTemplate: {{body: 'n{i}'}}\n" for i in range(130))
    assert api.put(f"/mcp-servers/{server['id']}/tools/yaml", content=doc).status_code == 200
    headers = session_headers(http, "2025-11-25", "/mcp-servers/many-tools")
    names, cursor, pages = [], None, 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        result = http.post("/mcp-servers/many-tools", json=rpc("tools/list", params), headers=headers).json()["result"]
        names += [t["name"] for t in result["tools"]]
        pages += 1
        cursor = result.get("nextCursor")
        if not cursor:
            break
    assert pages == 2
    assert names == [f"tool_{i:03d}" for i in range(130)]


def test_host_routing(http, api):
    instance = api.get("/instances/").json()["results"][0]["id"]
    created = api.post("/mcp-servers/", json={"instance": instance, "name": "by-domain",
                                               "domains": ["api.example.test"]})
    assert created.status_code == 201, created.text
    init = rpc("initialize", {"protocolVersion": "2025-11-25"})
    assert http.post("/mcp-servers/by-domain", json=init, headers={"Host": "api.example.test"}).status_code == 200
    # A host that names a domain only serves that domain's servers.
    assert http.post("/mcp-servers/petstore", json=init, headers={"Host": "api.example.test"}).status_code == 404
    # Any other host falls to the default instance.
    assert http.post("/mcp-servers/petstore", json=init, headers={"Host": "unknown.example"}).status_code == 200


# ------------------------------------------------------------ 2024-11-05 (HTTP+SSE)

def test_sse_transport_rules(http, demo_server):
    with http.stream("GET", "/mcp-servers/petstore/sse", headers={"Accept": "text/event-stream"}) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "event: endpoint"
        endpoint = next(lines)[len("data: "):]
        assert endpoint.startswith("/mcp-servers/petstore/message?sessionId=")
        assert next(lines) == ""
        accepted = http.post(endpoint, json=rpc("initialize", {"protocolVersion": "2024-11-05"}, id=1))
        assert accepted.status_code == 202
        event = [next(lines), next(lines)]
        assert event[0] == "event: message"
        answer = json.loads(event[1][len("data: "):])
        assert answer["id"] == 1 and answer["result"]["protocolVersion"] == "2024-11-05"

        assert http.post(endpoint, json=rpc("notifications/initialized", id=None)).status_code == 202
        assert http.post(endpoint, json=rpc("tools/call", {"name": "getPet", "arguments": {"petId": 1}}, id=2)).status_code == 202
        event = [next(lines), next(lines)]
        while event[0] != "event: message":  # skip keepalives and blank lines
            event = [event[1], next(lines)]
        answer = json.loads(event[1][len("data: "):])
        assert answer["id"] == 2 and answer["result"]["isError"] is False

        assert http.post(endpoint, content=b"{oops").status_code == 400
        assert http.post(endpoint, json=[rpc("ping")]).status_code == 400
    assert http.post("/mcp-servers/petstore/message", json=rpc("ping")).status_code == 400
    assert http.post("/mcp-servers/petstore/message?sessionId=unknown", json=rpc("ping")).status_code == 404


# ------------------------------------------------------------ 2026-07-28 (stateless)

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def stateless(http, method, params=None, headers=None, id=1):
    params = dict(params or {})
    params.setdefault("_meta", META)
    base = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if method == "tools/call":
        base["Mcp-Name"] = params.get("name", "")
    base.update(headers or {})
    return http.post("/mcp-servers/petstore", json=rpc(method, params, id=id), headers=base)


def test_stateless_discover_and_call(http):
    discover = stateless(http, "server/discover")
    assert discover.status_code == 200
    result = discover.json()["result"]
    assert result["supportedVersions"] == ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
    assert result["resultType"] == "complete" and "tools" in result["capabilities"]
    assert "mcp-session-id" not in discover.headers

    call = stateless(http, "tools/call", {"name": "getPet", "arguments": {"petId": 1}},
                     headers={"Mcp-Session-Id": "ignored"})
    assert call.status_code == 200
    assert call.json()["result"]["isError"] is False and "Rex" in call.json()["result"]["content"][0]["text"]
    assert "mcp-session-id" not in call.headers


def test_stateless_header_checks(http):
    wrong_method = stateless(http, "tools/list", headers={"Mcp-Method": "tools/call"})
    assert wrong_method.status_code == 400 and wrong_method.json()["error"]["code"] == -32020
    wrong_name = stateless(http, "tools/call", {"name": "getPet", "arguments": {"petId": 1}},
                           headers={"Mcp-Name": "listPets"})
    assert wrong_name.status_code == 400 and wrong_name.json()["error"]["code"] == -32020
    no_method = http.post("/mcp-servers/petstore", json=rpc("tools/list", {"_meta": META}),
                          headers={"MCP-Protocol-Version": "2026-07-28"})
    assert no_method.status_code == 400 and no_method.json()["error"]["code"] == -32020
    meta_mismatch = stateless(http, "tools/list", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}})
    assert meta_mismatch.status_code == 400 and meta_mismatch.json()["error"]["code"] == -32020
    no_header = http.post("/mcp-servers/petstore", json=rpc("tools/list", {"_meta": META}), headers={"Mcp-Method": "tools/list"})
    assert no_header.status_code == 400 and no_header.json()["error"]["code"] == -32020


def test_stateless_unsupported_version_and_methods(http):
    unsupported = stateless(http, "tools/list", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}},
                            headers={"MCP-Protocol-Version": "2099-01-01"})
    assert unsupported.status_code == 400
    error = unsupported.json()["error"]
    assert error["code"] == -32022 and "2026-07-28" in error["data"]["supported"]
    for method in ("ping", "resources/list", "initialize"):
        response = stateless(http, method)
        assert response.status_code == 404 and response.json()["error"]["code"] == -32601, method
    for verb in ("GET", "DELETE"):
        response = http.request(verb, "/mcp-servers/petstore", headers={"MCP-Protocol-Version": "2026-07-28",
                                                                         "Accept": "text/event-stream"})
        assert response.status_code == 405
    batch = http.post("/mcp-servers/petstore", json=[rpc("tools/list", {"_meta": META})],
                      headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
    assert batch.status_code == 400


# ------------------------------------------------------------ request body limits (both transports)

@pytest.fixture
def sse_endpoint(http):
    """An SSE session's message endpoint, its stream held open for the test."""
    with http.stream("GET", "/mcp-servers/petstore/sse", headers={"Accept": "text/event-stream"}) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: endpoint"
        yield next(lines)[len("data: "):]


HOSTILE_BODIES = [
    (b"[" * 5000 + b"]" * 5000, "nesting deeper than 64 levels"),
    (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":' + b'{"a":' * 70 + b"1" + b"}" * 71, "nesting deeper than 64"),
    (b"[" + b"0," * 150_000 + b"0]", "more than 100,000 values"),
    (b'{"jsonrpc":"2.0","id":1,"method":"\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"jsonrpc":"2.0","id":1,"method":"p\xffing"}', "not valid UTF-8"),
    (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":NaN}}', "NaN is not a JSON value"),
    (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1e999}}', "out of range"),
]


@pytest.mark.parametrize("body,message", HOSTILE_BODIES)
def test_hostile_bodies_are_parse_errors_on_streamable_http(http, body, message):
    headers = {**session_headers(http, "2025-11-25"), "Content-Type": "application/json"}
    response = http.post("/mcp-servers/petstore", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32700 and message in error["message"], error


@pytest.mark.parametrize("body,message", HOSTILE_BODIES[:3])
def test_hostile_bodies_are_parse_errors_on_the_sse_transport(http, sse_endpoint, body, message):
    response = http.post(sse_endpoint, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32700 and message in error["message"], error


def test_deep_nesting_just_inside_the_limit_is_served(http):
    headers = session_headers(http, "2025-11-25")
    # params(1) + _meta(2) + 62 nested lists = 64 levels below the message object's 1: accepted as a ping.
    nested = json.loads("[" * 61 + "]" * 61)
    response = http.post("/mcp-servers/petstore", json=rpc("ping", {"_meta": {"x": nested}}), headers=headers)
    assert response.status_code == 200 and response.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_escaped_surrogate_pairs_are_characters(http):
    headers = {**session_headers(http, "2025-11-25"), "Content-Type": "application/json"}
    body = b'{"jsonrpc":"2.0","id":"\\ud83d\\ude00","method":"ping"}'
    response = http.post("/mcp-servers/petstore", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["id"] == "\U0001F600"


def test_batch_length_is_bounded(http):
    headers = session_headers(http, "2025-03-26")
    response = http.post("/mcp-servers/petstore", json=[rpc("ping", id=i) for i in range(101)], headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == {"code": -32600, "message": "Invalid request: a batch of 101 messages; at "
                                                                   "most 100 are accepted in one request."}
    assert http.post("/mcp-servers/petstore", json=[rpc("ping", id=i) for i in range(100)],
                     headers=headers).status_code == 200


def test_invalid_ids_in_a_batch_are_answered_with_null(http):
    headers = session_headers(http, "2025-03-26")
    batch = [{"jsonrpc": "2.0", "id": 1.5, "method": 7}, {"jsonrpc": "2.0", "id": {}, "method": ""},
             {"jsonrpc": "1.0", "id": "kept", "method": "ping"}, rpc("ping", id=3)]
    response = http.post("/mcp-servers/petstore", json=batch, headers=headers)
    assert response.status_code == 200
    assert [(a["id"], a.get("error", {}).get("code")) for a in response.json()] == [
        (None, -32600), (None, -32600), ("kept", -32600), (3, None)]
