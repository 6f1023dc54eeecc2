"""The REST-to-MCP tool YAML: what loads, what is refused (with field and line), and what an export looks like."""
from __future__ import annotations

import copy
import hashlib
import textwrap

import pytest
import yaml

from console.toolyaml import (
    MASKED_CREDENTIAL,
    SchemeSpec,
    ServerSpec,
    ToolDocument,
    ToolSpec,
    ToolYamlError,
    export_tool_yaml,
    input_schema_from_args,
    parse_tool_yaml,
    tool_to_yaml,
)


def _errors(text: str, **kwargs) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ToolYamlError) as info:
        parse_tool_yaml(textwrap.dedent(text), **kwargs)
    return [(e["field"], e["line"], e["message"]) for e in info.value.errors]


def _only_error(text: str, **kwargs) -> tuple[str, int | None, str]:
    errors = _errors(text, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]


SPEC_EXAMPLE = """\
server:
  name: petstore
  config: {baseUrl: "http://127.0.0.1:8000/demo-api"}
  securitySchemes:
    - {id: BackendKey, type: apiKey, in: header, name: X-API-Key, defaultCredential: "demo-key"}
  defaultUpstreamSecurity: {id: BackendKey}
tools:
  - name: getPet
    description: Fetch one pet by id.
    args:
      - {name: petId, description: Pet id, type: integer, required: true, position: path}
    requestTemplate:
      url: "{{.config.baseUrl}}/pets/{petId}"
      method: GET
    responseTemplate:
      body: "Pet {{.id}}: {{.name}} ({{.status}})"
"""


def test_the_reference_example_loads():
    doc = parse_tool_yaml(SPEC_EXAMPLE)
    assert doc == ToolDocument(
        server=ServerSpec(
            name="petstore",
            config={"baseUrl": "http://127.0.0.1:8000/demo-api"},
            security_schemes=[SchemeSpec(scheme_id="BackendKey", type="apiKey", location="header",
                                         param_name="X-API-Key", default_credential="demo-key")],
            default_downstream_security={},
            default_upstream_security={"id": "BackendKey"},
            default_upstream_credential="",
            allow_tools=None,
        ),
        tools=[ToolSpec(
            name="getPet",
            description="Fetch one pet by id.",
            args=[{"name": "petId", "description": "Pet id", "type": "integer", "required": True,
                   "position": "path"}],
            request_template={"url": "{{.config.baseUrl}}/pets/{petId}", "method": "GET"},
            response_template={"body": "Pet {{.id}}: {{.name}} ({{.status}})"},
        )],
    )


HIGRESS_FILE = """\
server:
  name: crm-api
  config:
    baseUrl: https://crm.example.com/v2
    region: eu
  securitySchemes:
    - id: BasicAuth
      type: http
      scheme: basic
      defaultCredential: "svc:s3cret"
    - id: BearerAuth
      type: http
      scheme: Bearer
    - id: QueryKey
      type: apiKey
      in: query
      name: api_key
      defaultCredential: k-123
  defaultDownstreamSecurity:
    id: BearerAuth
    passthrough: true
  defaultUpstreamSecurity:
    id: BasicAuth
    credential: "admin:pw"
allowTools:
  - listContacts
  - createContact
  - updateContactForm
  - hello
tools:
  - name: listContacts
    description: List contacts, optionally filtered.
    args:
      - name: q
        description: Free-text search
        type: string
        position: query
      - name: limit
        type: integer
        default: 20
        position: query
      - name: X-Tenant
        type: string
        required: true
        position: header
      - name: session
        position: cookie
      - name: tags
        type: array
        items: {type: string}
        enum: [[a], [b]]
    requestTemplate:
      url: "{{.config.baseUrl}}/contacts"
      method: get
      headers:
        - key: Accept
          value: application/json
        - key: X-Region
          value: "{{.config.region}}"
    responseTemplate:
      body: |
        {{- range $i, $c := .items }}
        {{ add $i 1 }}. {{ $c.name }}{{ if $c.email }} <{{ $c.email }}>{{ else }} (no email){{ end }}
        {{- end }}
    errorResponseTemplate: 'CRM error {{gjson "_headers.\\\\:status"}}: {{.message}}'
    outputSchema:
      type: object
      properties:
        items: {type: array}
  - name: getContact
    description: One contact.
    args:
      - {name: id, type: integer, required: true, position: path}
    requestTemplate:
      url: "{{.config.baseUrl}}/contacts/{id}"
      security: {id: QueryKey, credential: tool-key}
    responseTemplate:
      prependBody: "Contact:\\n"
      appendBody: "\\n--"
  - name: createContact
    title: Create contact
    description: Create a contact from a JSON body.
    args:
      - {name: name, type: string, required: true}
      - {name: vip, type: boolean, default: false}
      - {name: address, type: object, properties: {city: {type: string}}}
    requestTemplate:
      url: "{{.config.baseUrl}}/contacts"
      method: POST
      argsToJsonBody: true
    annotations: {destructiveHint: false, idempotentHint: false}
    security: {id: BearerAuth, passthrough: true}
  - name: updateContactForm
    description: Update a contact with a form post.
    args:
      - {name: id, type: integer, required: true, position: path}
      - {name: note, type: string, position: body}
      - {name: score, type: number, position: BODY}
    requestTemplate:
      url: "{{.config.baseUrl}}/contacts/{id}/form"
      method: put
      argsToFormBody: true
  - name: renameContact
    description: Rename with an explicit body template.
    args:
      - {name: id, type: integer, required: true, position: path}
      - {name: name, type: string, required: true}
    requestTemplate:
      url: "{{.config.baseUrl}}/contacts/{id}"
      method: PATCH
      headers:
        - {key: Content-Type, value: application/json}
      body: |
        {"name": {{ toJson .args.name }}, "requestId": "{{ uuidv4 }}"}
  - name: hello
    description: Answers without calling a backend.
    args:
      - {name: who, default: world}
    responseTemplate:
      body: "Hello, {{.args.who}}!"
"""


def test_a_realistic_higress_file_loads_and_is_normalised():
    doc = parse_tool_yaml(HIGRESS_FILE, require_server=True)
    server = doc.server
    assert server.name == "crm-api"
    assert server.config == {"baseUrl": "https://crm.example.com/v2", "region": "eu"}
    assert server.security_schemes == [
        SchemeSpec(scheme_id="BasicAuth", type="http", scheme="basic", default_credential="svc:s3cret"),
        SchemeSpec(scheme_id="BearerAuth", type="http", scheme="bearer"),
        SchemeSpec(scheme_id="QueryKey", type="apiKey", location="query", param_name="api_key",
                   default_credential="k-123"),
    ]
    assert server.default_downstream_security == {"id": "BearerAuth", "passthrough": True}
    assert server.default_upstream_security == {"id": "BasicAuth"}
    assert server.default_upstream_credential == "admin:pw"
    assert server.allow_tools == ["listContacts", "createContact", "updateContactForm", "hello"]
    assert [t.name for t in doc.tools] == [
        "listContacts", "getContact", "createContact", "updateContactForm", "renameContact", "hello"]

    listing, get, create, form, rename, hello = doc.tools
    assert listing.args == [
        {"name": "q", "description": "Free-text search", "type": "string", "position": "query"},
        {"name": "limit", "type": "integer", "default": 20, "position": "query"},
        {"name": "X-Tenant", "type": "string", "required": True, "position": "header"},
        {"name": "session", "type": "string", "position": "cookie"},
        {"name": "tags", "type": "array", "enum": [["a"], ["b"]], "items": {"type": "string"}},
    ]
    assert listing.request_template == {
        "url": "{{.config.baseUrl}}/contacts",
        "method": "GET",
        "headers": [{"key": "Accept", "value": "application/json"},
                    {"key": "X-Region", "value": "{{.config.region}}"}],
    }
    assert listing.response_template["body"].startswith("{{- range $i, $c := .items }}\n")
    assert listing.error_response_template == 'CRM error {{gjson "_headers.\\\\:status"}}: {{.message}}'
    assert listing.output_schema == {"type": "object", "properties": {"items": {"type": "array"}}}

    assert get.request_template == {"url": "{{.config.baseUrl}}/contacts/{id}", "method": "GET",
                                    "security": {"id": "QueryKey"}}
    assert get.request_credential == "tool-key"
    assert get.response_template == {"prependBody": "Contact:\n", "appendBody": "\n--"}

    assert create.title == "Create contact"
    assert create.request_template == {"url": "{{.config.baseUrl}}/contacts", "method": "POST",
                                       "argsToJsonBody": True}
    assert create.args[1] == {"name": "vip", "type": "boolean", "default": False}
    assert create.args[2] == {"name": "address", "type": "object", "properties": {"city": {"type": "string"}}}
    assert create.annotations == {"destructiveHint": False, "idempotentHint": False}
    assert create.security == {"id": "BearerAuth", "passthrough": True}

    assert form.request_template == {"url": "{{.config.baseUrl}}/contacts/{id}/form", "method": "PUT",
                                     "argsToFormBody": True}
    assert [a["position"] for a in form.args] == ["path", "body", "body"]

    assert rename.request_template["body"] == (
        '{"name": {{ toJson .args.name }}, "requestId": "{{ uuidv4 }}"}\n')
    assert hello.request_template == {"url": "", "method": "GET"}
    assert hello.response_template == {"body": "Hello, {{.args.who}}!"}


def test_a_tools_only_document_and_a_bare_list_load():
    only_tools = parse_tool_yaml("tools:\n  - {name: a, description: A, responseTemplate: {body: hi}}\n")
    bare = parse_tool_yaml("- {name: a, description: A, responseTemplate: {body: hi}}\n")
    assert only_tools.server is None and bare.server is None
    assert only_tools.tools == bare.tools == [
        ToolSpec(name="a", description="A", request_template={"url": "", "method": "GET"},
                 response_template={"body": "hi"})]


def test_an_empty_document_has_no_tools_but_a_server_may_be_required():
    assert parse_tool_yaml("") == ToolDocument(server=None, tools=[])
    assert parse_tool_yaml("tools:\n") == ToolDocument(server=None, tools=[])
    assert _only_error("", require_server=True)[:2] == ("server", None)
    assert _only_error("tools: []\n", require_server=True) == (
        "server", 1, "A server: part (with its name) is required here.")


def test_allow_tools_is_read_under_server_too():
    doc = parse_tool_yaml("server:\n  name: s\n  allowTools: [a, b]\ntools: []\n")
    assert doc.server.allow_tools == ["a", "b"]
    same = parse_tool_yaml("server:\n  name: s\n  allowTools: [a, b]\nallowTools: [a, b]\ntools: []\n")
    assert same.server.allow_tools == ["a", "b"]


def test_scalars_are_read_as_yaml_1_2_like_higress_does():
    doc = parse_tool_yaml(textwrap.dedent("""\
        tools:
          - name: t
            description: d
            args:
              - {name: answer, enum: [yes, no, on, off], default: yes}
              - {name: time, default: 1:30}
              - {name: n, type: integer, default: 0x1F}
              - {name: flag, type: boolean, default: True}
            responseTemplate: {body: ok}
        """))
    assert [a.get("enum") for a in doc.tools[0].args] == [["yes", "no", "on", "off"], None, None, None]
    assert [a["default"] for a in doc.tools[0].args] == ["yes", "1:30", 31, True]


def test_yaml_anchors_and_merge_keys_are_resolved():
    doc = parse_tool_yaml(textwrap.dedent("""\
        tools:
          - &base
            name: a
            description: shared
            responseTemplate: {body: ok}
          - <<: *base
            name: b
        """))
    assert [(t.name, t.description) for t in doc.tools] == [("a", "shared"), ("b", "shared")]


# --------------------------------------------------------------------------------------------------------------------
# Each rule: the exact field path and YAML line

HEAD = """\
server:
  name: s
  securitySchemes:
    - {id: Key, type: apiKey, in: header, name: X-Key}
tools:
  - name: t
    description: d
"""  # appended lines start at line 8


def _tool(extra: str) -> str:
    return HEAD + textwrap.indent(textwrap.dedent(extra), "    ")


@pytest.mark.parametrize("text, field, line, message", [
    ("server:\n  config: {}\ntools: []\n", "server.name", 1, "The server name is required."),
    ("tools:\n  - description: d\n    responseTemplate: {body: ok}\n", "tools[0].name", 2,
     "The tool name is required."),
    ("tools:\n  - name: get pet\n    description: d\n    responseTemplate: {body: ok}\n", "tools[0].name", 2,
     "Tool name “get pet” must be 1-128 letters, digits, '_', '-' or '.'."),
    ("tools:\n  - name: " + "x" * 129 + "\n    description: d\n    responseTemplate: {body: ok}\n",
     "tools[0].name", 2, "Tool name “" + "x" * 129 + "” must be 1-128 letters, digits, '_', '-' or '.'."),
    ("tools:\n  - {name: a, description: d, responseTemplate: {body: ok}}\n"
     "  - {name: a, description: e, responseTemplate: {body: ok}}\n", "tools[1].name", 3,
     "Tool “a” is already defined as tools[0]."),
    ("tools:\n  - name: t\n    responseTemplate: {body: ok}\n", "tools[0].description", 2,
     "The tool description is required."),
    ("tools:\n  - name: t\n    description: '  '\n    responseTemplate: {body: ok}\n", "tools[0].description", 3,
     "The tool description is required."),
    ("tools:\n  - name: t\n    description: 12\n    responseTemplate: {body: ok}\n", "tools[0].description", 3,
     "Must be text, not a number; put it in quotes."),
    (_tool("args:\n  - {description: x}\nresponseTemplate: {body: ok}\n"), "tools[0].args[0].name", 9,
     "The argument name is required."),
    (_tool("args:\n  - {name: a}\n  - {name: a}\nresponseTemplate: {body: ok}\n"), "tools[0].args[1].name", 10,
     "Argument “a” is already declared as args[0]."),
    (_tool("args:\n  - {name: a, type: str}\nresponseTemplate: {body: ok}\n"), "tools[0].args[0].type", 9,
     "type must be one of string, number, integer, boolean, array, object, not “str”."),
    (_tool("args:\n  - {name: a, position: form}\nresponseTemplate: {body: ok}\n"), "tools[0].args[0].position", 9,
     "position must be one of query, path, header, cookie, body, not “form”."),
    (_tool("args:\n  - name: a\n    required: \"true\"\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].required", 10, "Must be true or false (without quotes), not the text “true”."),
    (_tool("args:\n  - name: a\n    required: 1\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].required", 10, "Must be true or false, not a number."),
    (_tool("args:\n  - {name: a, enum: x}\nresponseTemplate: {body: ok}\n"), "tools[0].args[0].enum", 9,
     "Must be a list (lines starting with “- ”), not the text “x”."),
    (_tool("args:\n  - {name: a, type: integer, enum: [1, two]}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].enum[1]", 9, "The text “two” is not a valid integer."),
    (_tool("args:\n  - {name: a, items: {type: string}}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].items", 9, "items applies to type array only (this argument is string)."),
    (_tool("args:\n  - name: a\n    type: array\n    properties: {x: {type: string}}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].properties", 11, "properties applies to type object only (this argument is array)."),
    (_tool("args:\n  - {name: a, type: integer, default: \"3\"}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].default", 9, "default must be an integer, not the text “3”."),
    (_tool("args:\n  - {name: a, type: integer, default: 2.5}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].default", 9, "default must be an integer, not a number."),
    (_tool("args:\n  - {name: a, type: boolean, default: 0}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].default", 9, "default must be a boolean, not a number."),
    (_tool("args:\n  - {name: a, type: number, default: true}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].default", 9, "default must be a number, not a boolean."),
    (_tool("args:\n  - {name: a, type: array, default: x}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].default", 9, "default must be an array, not the text “x”."),
    (_tool("args:\n  - {name: a, enum: [x, y], default: z}\nresponseTemplate: {body: ok}\n"),
     "tools[0].args[0].default", 9, "default must be one of the enum values."),
    (_tool("requestTemplate:\n  url: http://h/x\n  method: FETCH\n"), "tools[0].requestTemplate.method", 10,
     "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, not “FETCH”."),
    (_tool("requestTemplate:\n  url: http://h/x\n  argsToJsonBody: true\n  argsToUrlParam: true\n"),
     "tools[0].requestTemplate.argsToUrlParam", 11,
     "Only one of argsToJsonBody, argsToUrlParam, argsToFormBody may be true (argsToJsonBody is already)."),
    (_tool("requestTemplate:\n  url: http://h/x\n  argsToFormBody: 'yes'\n"),
     "tools[0].requestTemplate.argsToFormBody", 10, "Must be true or false, not the text “yes”."),
    (_tool("requestTemplate:\n  url: http://h/x\n  method: POST\n  body: '{}'\n  argsToJsonBody: true\n"),
     "tools[0].requestTemplate.body", 11,
     "body cannot be used together with argsToJsonBody: the body template already says what is sent."),
    (_tool("requestTemplate:\n  url: http://h/x\n  headers: {Accept: text/plain}\n"),
     "tools[0].requestTemplate.headers", 10, "Must be a list (lines starting with “- ”), not a mapping."),
    (_tool("requestTemplate:\n  url: http://h/x\n  headers:\n    - {value: v}\n"),
     "tools[0].requestTemplate.headers[0].key", 11, "The header key is required."),
    (_tool("requestTemplate:\n  url: http://h/x\n  headers:\n    - {key: X-N, value: 5}\n"),
     "tools[0].requestTemplate.headers[0].value", 11, "Must be text, not a number; put it in quotes."),
    (_tool("requestTemplate:\n  method: POST\n"), "tools[0].responseTemplate.body", 6,
     "A tool without requestTemplate.url answers directly: responseTemplate.body is required."),
    (_tool("requestTemplate:\n  url: ''\nresponseTemplate:\n  appendBody: x\n"), "tools[0].responseTemplate.body", 10,
     "A tool without requestTemplate.url answers directly: responseTemplate.body is required."),
    (_tool("requestTemplate:\n  url: \"{{.config.base}}/pets/{petId}\"\n"), "tools[0].requestTemplate.url", 9,
     "The url uses {petId} but no argument “petId” is declared."),
    (_tool("args:\n  - {name: petId}\nrequestTemplate:\n  url: http://h/pets/{petId}\n"),
     "tools[0].requestTemplate.url", 11, "The url uses {petId} but argument “petId” does not have position: path."),
    (_tool("args:\n  - {name: q, position: query}\n  - {name: id, position: path}\nrequestTemplate:\n"
           "  url: http://h/pets\n"), "tools[0].args[1].position", 10,
     "Path argument “id” is not used in requestTemplate.url as {id}."),
    (_tool("requestTemplate:\n  url: http://h/x\nresponseTemplate:\n  body: b\n  appendBody: a\n"),
     "tools[0].responseTemplate.appendBody", 12, "appendBody cannot be used together with body."),
    (_tool("requestTemplate:\n  url: http://h/x\nresponseTemplate:\n  prependBody: p\n  body: b\n"),
     "tools[0].responseTemplate.prependBody", 11, "prependBody cannot be used together with body."),
    (_tool("requestTemplate:\n  url: http://h/x\n  security: {id: Nope}\n"), "tools[0].requestTemplate.security.id",
     10, "No security scheme “Nope” in server.securitySchemes."),
    (_tool("requestTemplate:\n  url: http://h/x\n  security: {credential: c}\n"),
     "tools[0].requestTemplate.security.id", 10, "The security scheme id is required."),
    (_tool("security: {id: Nope}\nresponseTemplate: {body: ok}\n"), "tools[0].security.id", 8,
     "No security scheme “Nope” in server.securitySchemes."),
    ("server:\n  name: s\n  defaultUpstreamSecurity:\n    id: Gone\ntools: []\n",
     "server.defaultUpstreamSecurity.id", 4, "No security scheme “Gone” in server.securitySchemes."),
    ("server:\n  name: s\n  defaultDownstreamSecurity: {id: Gone}\ntools: []\n",
     "server.defaultDownstreamSecurity.id", 3, "No security scheme “Gone” in server.securitySchemes."),
    ("server:\n  name: s\n  securitySchemes:\n    - {id: A, type: http, scheme: basic}\n"
     "    - {id: A, type: http, scheme: bearer}\n", "server.securitySchemes[1].id", 5,
     "Security scheme id “A” is already used by securitySchemes[0]."),
    ("server:\n  name: s\n  securitySchemes:\n    - {id: A, type: oauth2}\n", "server.securitySchemes[0].type", 4,
     "type must be http or apiKey, not “oauth2”."),
    ("server:\n  name: s\n  securitySchemes:\n    - {id: A, type: http, scheme: digest}\n",
     "server.securitySchemes[0].scheme", 4, "scheme must be basic or bearer, not “digest”."),
    ("server:\n  name: s\n  securitySchemes:\n    - id: A\n      type: http\n", "server.securitySchemes[0].scheme", 4,
     "scheme (basic or bearer) is required."),
    ("server:\n  name: s\n  securitySchemes:\n    - {id: A, type: apiKey, in: cookie, name: k}\n",
     "server.securitySchemes[0].in", 4, "in must be header or query, not “cookie”."),
    ("server:\n  name: s\n  securitySchemes:\n    - id: A\n      type: apiKey\n      in: header\n",
     "server.securitySchemes[0].name", 4, "name (the header or query parameter that carries the key) is required."),
    ("server:\n  name: s\n  securitySchemes:\n    - {type: http, scheme: basic}\n", "server.securitySchemes[0].id", 4,
     "The scheme id is required."),
    (_tool("responseTemplate: {body: ok}\noutputSchema: [1]\n"), "tools[0].outputSchema", 9,
     "Must be a JSON Schema mapping (key: value lines), not a list."),
    (_tool("responseTemplate: {body: ok}\noutputSchema:\n  type: array\n"), "tools[0].outputSchema.type", 10,
     "outputSchema must be a JSON Schema with type: object."),
    (_tool("responseTemplate: {body: ok}\noutputSchema: {properties: {}}\n"), "tools[0].outputSchema", 9,
     "outputSchema must be a JSON Schema with type: object."),
    (_tool("responseTemplate: {body: ok}\nannotations: read-only\n"), "tools[0].annotations", 9,
     "Must be a mapping (key: value lines), not the text “read-only”."),
    (_tool("responseTemplate: {body: ok}\nannotations: {readOnlyHint: 'true'}\n"),
     "tools[0].annotations.readOnlyHint", 9, "Must be true or false (without quotes), not the text “true”."),
    (_tool("responseTemplate: {body: ok}\ndescription: again\n"), "tools[0].description", 9,
     "Duplicate key “description” (first given on line 7)."),
])
def test_each_rule_names_the_field_and_the_line(text, field, line, message):
    assert _only_error(text) == (field, line, message)


def test_placeholders_ignore_template_actions_and_accept_args_used_by_the_template():
    doc = parse_tool_yaml(_tool("""\
        args:
          - {name: id, position: path}
          - {name: org, position: path}
        requestTemplate:
          url: "{{.config.base}}/orgs/{{.args.org}}/items/{id}?x={{ if .args.id }}1{{ end }}"
        """))
    assert doc.tools[0].request_template["url"].endswith("{id}?x={{ if .args.id }}1{{ end }}")


def test_scheme_references_without_a_server_part_use_the_target_servers_schemes():
    text = textwrap.dedent("""\
        tools:
          - name: t
            description: d
            requestTemplate:
              url: http://h/x
              security: {id: OnServer}
            security: {id: Missing}
        """)
    assert _only_error(text, known_scheme_ids={"OnServer"}) == (
        "tools[0].security.id", 7, "No security scheme “Missing” in the server's security schemes.")
    # Without the target server's schemes the references cannot be checked, so they are accepted.
    assert parse_tool_yaml(text).tools[0].security == {"id": "Missing"}


def test_a_server_part_is_checked_against_its_own_schemes_only():
    text = "server:\n  name: s\n  defaultUpstreamSecurity: {id: OnServer}\ntools: []\n"
    assert _only_error(text, known_scheme_ids={"OnServer"}) == (
        "server.defaultUpstreamSecurity.id", 3, "No security scheme “OnServer” in server.securitySchemes.")


def test_allow_tools_conflicts_and_misplacement_are_reported():
    assert _only_error("server: {name: s, allowTools: [a]}\nallowTools: [b]\ntools: []\n") == (
        "allowTools", 2, "allowTools is given both here and under server, with different names.")
    assert _only_error("allowTools: [a]\ntools: []\n") == (
        "allowTools", 1, "allowTools belongs to a server: add a server: part.")


def test_all_errors_are_reported_together_in_line_order():
    text = textwrap.dedent("""\
        server:
          securitySchemes:
            - {id: K, type: apiKey, in: header}
        tools:
          - name: bad name
            description: d
            args:
              - {name: a, type: int, required: "yes"}
            requestTemplate:
              url: "http://h/{b}"
              method: fetch
          - description: no name
            responseTemplate: {body: ok}
        """)
    with pytest.raises(ToolYamlError) as info:
        parse_tool_yaml(text)
    error = info.value
    assert [(e["line"], e["field"]) for e in error.errors] == [
        (1, "server.name"),
        (3, "server.securitySchemes[0].name"),
        (5, "tools[0].name"),
        (8, "tools[0].args[0].type"),
        (8, "tools[0].args[0].required"),
        (10, "tools[0].requestTemplate.url"),
        (11, "tools[0].requestTemplate.method"),
        (12, "tools[1].name"),
    ]
    assert error.message == "The tool YAML has 8 error(s)."
    assert error.code == "invalid_yaml"
    assert error.details["tools[0].requestTemplate.url"] == [
        "line 10: The url uses {b} but no argument “b” is declared."]
    body = error.as_dict()
    assert body["detail"] == "The tool YAML has 8 error(s)."
    assert body["code"] == "invalid_yaml"
    assert body["errors"] == error.errors
    assert body["fields"]["server.name"] == ["line 1: The server name is required."]


# --------------------------------------------------------------------------------------------------------------------
# Templates are compiled with the gateway's template engine


def test_a_template_error_points_at_the_yaml_line_of_the_template_line():
    text = _tool("""\
        requestTemplate:
          url: http://h/x
        responseTemplate:
          body: |
            {{ range .items }}
            {{ .name }
            {{ end }}
        """)
    field, line, message = _only_error(text)
    assert (field, line) == ("tools[0].responseTemplate.body", 13)  # body: on line 11, template line 2
    assert message.startswith("Template error (template line 2): ")


@pytest.mark.parametrize("extra, field, line", [
    ("requestTemplate:\n  url: \"http://h/{{ .args.x \"\n", "tools[0].requestTemplate.url", 9),
    ("requestTemplate:\n  url: http://h/x\n  headers:\n    - {key: X, value: \"{{ if }}\"}\n",
     "tools[0].requestTemplate.headers[0].value", 11),
    ("requestTemplate:\n  url: http://h/x\n  method: POST\n  body: \"{{ end }}\"\n",
     "tools[0].requestTemplate.body", 11),
    ("requestTemplate:\n  url: http://h/x\nerrorResponseTemplate: \"{{ .a \"\n", "tools[0].errorResponseTemplate", 10),
    ("requestTemplate:\n  url: http://h/x\nresponseTemplate:\n  prependBody: \"{{ \"\n",
     "tools[0].responseTemplate.prependBody", 11),
])
def test_every_template_field_is_compiled(extra, field, line):
    got_field, got_line, message = _only_error(_tool(extra))
    assert (got_field, got_line) == (field, line)
    assert message.startswith("Template error (template line 1): ")


# --------------------------------------------------------------------------------------------------------------------
# Unsafe or malformed YAML


def test_yaml_syntax_errors_give_the_line():
    field, line, message = _only_error("tools:\n  - name: a\n    description: [unclosed\n")
    assert (field, line) == ("non_field", 4)
    assert message.startswith("YAML syntax: ")


@pytest.mark.parametrize("text, error", [
    ("just text\n", ("non_field", 1, "The document must be a mapping with server: and tools:, or a list of tools.")),
    ("42\n", ("non_field", 1, "The document must be a mapping with server: and tools:, or a list of tools.")),
    ("openapi: 3.0.0\ninfo: {title: x}\n", ("non_field", 1, "Expected a server: part and/or tools:. This looks "
                                                         "like an OpenAPI document: import it as OpenAPI instead.")),
    ("tools: !!python/object/apply:os.system [echo hi]\n",
     ("tools", 1, "Unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system; use plain values.")),
    ("tools: {name: a}\n", ("tools", 1, "Must be a list (lines starting with “- ”), not a mapping.")),
    ("tools:\n  - just a name\n", ("tools[0]", 2, "Must be a mapping (key: value lines), not the text “just a name”.")),
])
def test_documents_that_are_not_tool_yaml_are_refused(text, error):
    assert _only_error(text) == error


def test_documents_over_the_size_limit_are_refused_before_parsing():
    assert _only_error("tools: []\n" + "#" * 100 + "\n", max_bytes=64) == (
        "non_field", None, "The document is 111 bytes; the limit is 64.")


def test_alias_bombs_are_refused():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    lines.append("tools: []")
    assert _only_error("\n".join(lines) + "\n") == (
        "non_field", None, "The document expands to more than 200000 values (YAML aliases?).")


def test_too_many_aliases_are_refused():
    text = "x: &x 1\nlist: [" + ", ".join(["*x"] * 201) + "]\ntools: []\n"
    field, line, message = _only_error(text)
    assert (field, line) == ("non_field", 2)
    assert "more than 200 YAML aliases" in message


def test_a_recursive_alias_is_refused():
    assert ("tools[0]", 1, "A YAML alias refers to its own anchor (a recursive value).") in _errors(
        "tools: &t [*t]\n")


def test_non_finite_numbers_are_refused():
    assert _only_error(_tool("args:\n  - {name: n, type: number, default: .inf}\nresponseTemplate: {body: ok}\n")) == (
        "tools[0].args[0].default", 9, "Infinite and NaN numbers cannot be used (they have no JSON form).")


# --------------------------------------------------------------------------------------------------------------------
# inputSchema and content hash


def test_input_schema_from_args():
    args = parse_tool_yaml(HIGRESS_FILE).tools[0].args + [
        {"name": "address", "type": "object", "properties": {"city": {"type": "string"}}, "required": True},
        {"name": "kind", "enum": ["a", "b"], "default": "a", "description": "Kind", "position": "query"},
    ]
    assert input_schema_from_args(args) == {
        "type": "object",
        "properties": {
            "q": {"type": "string", "description": "Free-text search"},
            "limit": {"type": "integer", "default": 20},
            "X-Tenant": {"type": "string"},
            "session": {"type": "string"},
            "tags": {"type": "array", "enum": [["a"], ["b"]], "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
            "kind": {"type": "string", "description": "Kind", "enum": ["a", "b"], "default": "a"},
        },
        "required": ["X-Tenant", "address"],
    }


def test_input_schema_of_a_tool_without_args_is_an_empty_object_schema():
    assert input_schema_from_args([]) == {"type": "object", "properties": {}}


def test_input_schema_is_a_copy():
    args = [{"name": "tags", "type": "array", "items": {"type": "string"}}]
    input_schema_from_args(args)["properties"]["tags"]["items"]["type"] = "integer"
    assert args[0]["items"] == {"type": "string"}


def test_content_hash_covers_every_field_and_the_credential_without_exposing_it():
    spec = parse_tool_yaml(HIGRESS_FILE).tools[1]
    same = parse_tool_yaml(HIGRESS_FILE).tools[1]
    assert spec.content_hash() == same.content_hash()
    assert len(spec.content_hash()) == 64
    same.request_credential = "other-key"
    assert same.content_hash() != spec.content_hash()
    for name, value in [("description", "x"), ("title", "T"), ("args", []), ("error_response_template", "e"),
                        ("response_template", {"body": "b"}), ("output_schema", {"type": "object"}),
                        ("annotations", {"readOnlyHint": True}), ("security", {"id": "QueryKey"}),
                        ("request_template", {"url": "http://other", "method": "GET"})]:
        changed = parse_tool_yaml(HIGRESS_FILE).tools[1]
        setattr(changed, name, value)
        assert changed.content_hash() != spec.content_hash(), name
    # The canonical JSON carries the credential only as its digest.
    assert hashlib.sha256(b"tool-key").hexdigest() != spec.content_hash()


# --------------------------------------------------------------------------------------------------------------------
# Export


def _store(doc: ToolDocument):
    """Write a parsed document into rows the way the tools service does."""
    from console.models import Instance, McpServer, SecurityScheme, Team, Tool

    team = Team.objects.create(name="Acme", slug="acme")
    instance = Instance.objects.create(team=team, name="main")
    spec = doc.server
    server = McpServer.objects.create(
        instance=instance, name=spec.name, config=spec.config,
        default_downstream_security=spec.default_downstream_security,
        default_upstream_security=spec.default_upstream_security,
        default_upstream_credential=spec.default_upstream_credential, allow_tools=spec.allow_tools)
    for s in spec.security_schemes:
        SecurityScheme.objects.create(mcp_server=server, scheme_id=s.scheme_id, type=s.type, scheme=s.scheme,
                                      location=s.location, param_name=s.param_name,
                                      default_credential=s.default_credential)
    for t in doc.tools:
        Tool.objects.create(
            mcp_server=server, name=t.name, title=t.title, description=t.description, args=t.args,
            request_template=t.request_template, request_credential=t.request_credential,
            response_template=t.response_template, error_response_template=t.error_response_template,
            output_schema=t.output_schema, annotations=t.annotations, security=t.security,
            content_hash=t.content_hash())
    return McpServer.objects.get(pk=server.pk)


def _ordered_tools(server):
    names = [t["name"] for t in yaml.safe_load(HIGRESS_FILE)["tools"]]
    tools = {t.name: t for t in server.tools.all()}
    return [tools[n] for n in names]


def _masked(doc: ToolDocument) -> ToolDocument:
    """The document as an export carries it: every credential replaced by the mask."""
    doc = copy.deepcopy(doc)
    if doc.server.default_upstream_credential:
        doc.server.default_upstream_credential = MASKED_CREDENTIAL
    for scheme in doc.server.security_schemes:
        if scheme.default_credential:
            scheme.default_credential = MASKED_CREDENTIAL
    for tool in doc.tools:
        if tool.request_credential:
            tool.request_credential = MASKED_CREDENTIAL
    return doc


@pytest.mark.django_db
def test_export_round_trips_through_the_parser():
    # Exports never carry a secret (there is no way to ask for one), so the round trip is exact but for the masks.
    doc = parse_tool_yaml(HIGRESS_FILE)
    server = _store(doc)
    text = export_tool_yaml(server=server, tools=_ordered_tools(server))
    again = parse_tool_yaml(text, require_server=True)
    assert again == _masked(doc)
    assert [t.content_hash() for t in again.tools if not t.request_credential] == [
        t.content_hash for t in _ordered_tools(server) if not t.request_credential]


@pytest.mark.django_db
def test_importing_an_export_keeps_the_stored_secrets():
    from django.contrib.auth import get_user_model

    from console import services
    from console.models import TeamMembership

    server = _store(parse_tool_yaml(HIGRESS_FILE))
    user = get_user_model().objects.create_user("owner", password="pw-123456")
    TeamMembership.objects.create(team=server.instance.team, user=user, role=TeamMembership.Role.OWNER)
    text = export_tool_yaml(server=server, tools=_ordered_tools(server))
    services.tools_apply_yaml(actor=user, mcp_server=server, text=text)
    server.refresh_from_db()
    assert server.default_upstream_credential == "admin:pw"
    assert {s.scheme_id: s.default_credential for s in server.security_schemes.all()} == {
        "BasicAuth": "svc:s3cret", "BearerAuth": "", "QueryKey": "k-123"}
    assert server.tools.get(name="getContact").request_credential == "tool-key"


@pytest.mark.django_db
def test_export_uses_higress_field_names_and_masks_credentials():
    server = _store(parse_tool_yaml(HIGRESS_FILE))
    text = export_tool_yaml(server=server, tools=_ordered_tools(server))
    for secret in ("svc:s3cret", "k-123", "admin:pw", "tool-key"):
        assert secret not in text
    data = yaml.safe_load(text)
    assert list(data) == ["server", "allowTools", "tools"]
    assert data["server"]["securitySchemes"] == [
        {"id": "BasicAuth", "type": "http", "scheme": "basic", "defaultCredential": MASKED_CREDENTIAL},
        {"id": "BearerAuth", "type": "http", "scheme": "bearer"},
        {"id": "QueryKey", "type": "apiKey", "in": "query", "name": "api_key", "defaultCredential": MASKED_CREDENTIAL},
    ]
    assert data["server"]["defaultDownstreamSecurity"] == {"id": "BearerAuth", "passthrough": True}
    assert data["server"]["defaultUpstreamSecurity"] == {"id": "BasicAuth", "credential": MASKED_CREDENTIAL}
    assert data["allowTools"] == ["listContacts", "createContact", "updateContactForm", "hello"]
    get_contact = data["tools"][1]
    assert get_contact["requestTemplate"] == {"url": "{{.config.baseUrl}}/contacts/{id}", "method": "GET",
                                              "security": {"id": "QueryKey", "credential": MASKED_CREDENTIAL}}
    assert list(data["tools"][0]) == ["name", "description", "args", "requestTemplate", "responseTemplate",
                                      "errorResponseTemplate", "outputSchema"]
    # A masked export still loads; the masked values are recognisable so the stored secrets are kept.
    again = parse_tool_yaml(text)
    assert again.server.default_upstream_credential == MASKED_CREDENTIAL
    assert again.tools[1].request_credential == MASKED_CREDENTIAL


@pytest.mark.django_db
def test_export_without_credentials_has_no_mask_note():
    server = _store(parse_tool_yaml(SPEC_EXAMPLE.replace(', defaultCredential: "demo-key"', "")))
    text = export_tool_yaml(server=server, tools=server.tools.all())
    assert text == textwrap.dedent("""\
        server:
          name: petstore
          config:
            baseUrl: http://127.0.0.1:8000/demo-api
          securitySchemes:
          - id: BackendKey
            type: apiKey
            in: header
            name: X-API-Key
          defaultUpstreamSecurity:
            id: BackendKey
        tools:
        - name: getPet
          description: Fetch one pet by id.
          args:
          - name: petId
            description: Pet id
            type: integer
            required: true
            position: path
          requestTemplate:
            url: '{{.config.baseUrl}}/pets/{petId}'
            method: GET
          responseTemplate:
            body: 'Pet {{.id}}: {{.name}} ({{.status}})'
        """)


@pytest.mark.django_db
def test_one_tool_exports_as_a_tools_only_document():
    server = _store(parse_tool_yaml(HIGRESS_FILE))
    rename = server.tools.get(name="renameContact")
    assert tool_to_yaml(rename) == textwrap.dedent("""\
        tools:
        - name: renameContact
          description: Rename with an explicit body template.
          args:
          - name: id
            type: integer
            required: true
            position: path
          - name: name
            type: string
            required: true
          requestTemplate:
            url: '{{.config.baseUrl}}/contacts/{id}'
            method: PATCH
            headers:
            - key: Content-Type
              value: application/json
            body: |
              {"name": {{ toJson .args.name }}, "requestId": "{{ uuidv4 }}"}
        """)
    get_contact = server.tools.get(name="getContact")
    masked = tool_to_yaml(get_contact)
    assert "tool-key" not in masked
    assert masked.startswith(f"# Credentials are shown as {MASKED_CREDENTIAL}")
    assert parse_tool_yaml(masked).tools == _masked(parse_tool_yaml(HIGRESS_FILE)).tools[1:2]


@pytest.mark.django_db
def test_exported_text_that_looks_like_numbers_stays_text():
    doc = parse_tool_yaml(textwrap.dedent("""\
        server: {name: s, config: {octal: "0o17", exp: "1e5", yes: "yes", multi: "a\\nb  \\n"}}
        tools:
          - name: t
            description: "0x10"
            args: [{name: v, enum: ["1.0", "true", "null", "~"]}]
            responseTemplate: {body: "007"}
        """))
    server = _store(doc)
    assert parse_tool_yaml(export_tool_yaml(server=server, tools=server.tools.all())) == doc


def test_a_regular_expression_go_rejects_is_reported_when_the_tool_is_saved():
    field, line, message = _only_error("""\
        tools:
          - name: t
            description: d
            requestTemplate:
              url: "http://127.0.0.1/x"
              method: POST
              body: '{{ regexReplaceAll "(a)\\\\1" .args.s "b" }}'
        """)
    assert (field, line) == ("tools[0].requestTemplate.body", 7)
    assert message == ('Template error (template line 1): regexReplaceAll: error parsing regexp "(a)\\\\1": '
                       "invalid escape sequence: `\\1` (backreferences are not supported by Go's linear-time regexp)")
