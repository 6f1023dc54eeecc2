"""The "YAML Example" of the Add Tool page: tools that work against this server's own backend."""
from __future__ import annotations

from urllib.parse import urlsplit

from ..models import McpServer

_DEMO_TOOLS = '''\
tools:
  - name: listPets
    description: List the pets in the store, optionally only those with a given status.
    args:
      - name: status
        description: Only pets with this status.
        type: string
        enum: [available, pending, sold]
        position: query
      - name: limit
        description: How many pets to return (1-100).
        type: integer
        default: 10
        position: query
    requestTemplate:
      url: "{base}/pets"
      method: GET
    responseTemplate:
      body: |-
        {{{{ .total }}}} pet(s) match.
        {{{{- range $i, $pet := .items }}}}
        #{{{{ $pet.id }}}} {{{{ $pet.name }}}} ({{{{ $pet.status }}}})
        {{{{- end }}}}
    annotations:
      readOnlyHint: true

  - name: getPet
    description: Fetch one pet by its id.
    args:
      - name: petId
        description: The pet's id.
        type: integer
        required: true
        position: path
    requestTemplate:
      url: "{base}/pets/{{petId}}"
      method: GET
    responseTemplate:
      body: "Pet {{{{ .id }}}}: {{{{ .name }}}} ({{{{ .status }}}})"
    errorResponseTemplate: "{{{{ .detail }}}}"
'''

_GENERIC_TOOLS = '''\
tools:
  # Works with any HTTP backend: returns what its base URL answers, as is.
  - name: getIndex
    description: Fetch the backend's base URL and return the response body.
    requestTemplate:
      url: "{base}/"
      method: GET

  # Arguments go where "position" says: path ({{id}} in the URL), query, header, cookie or body.
  - name: getItem
    description: Fetch one item by its id.
    args:
      - name: id
        description: The item's id.
        type: string
        required: true
        position: path
      - name: fields
        description: Which fields to return, comma-separated.
        type: string
        position: query
    requestTemplate:
      url: "{base}/items/{{id}}"
      method: GET

  # Without positions, POST/PUT/PATCH send the arguments as a JSON body.
  - name: createItem
    description: Create an item.
    args:
      - name: name
        description: The item's name.
        type: string
        required: true
    requestTemplate:
      url: "{base}/items"
      method: POST
      argsToJsonBody: true
    responseTemplate:
      body: "Created item {{{{ .id }}}}."
'''


def _is_demo_api(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/demo-api")


def yaml_example(server: McpServer) -> str:
    """A `tools:` document (no server: part, so the server's settings and credentials stay as they are)."""
    backend = server.backend_service
    backend_url = backend.base_url.rstrip("/") if backend else "https://api.example.com"
    # {{.config.baseUrl}} follows the server's config; a literal URL when the server has none.
    base = "{{.config.baseUrl}}" if (server.config or {}).get("baseUrl") else backend_url
    target = (server.config or {}).get("baseUrl") or backend_url
    header = (f"# Tools of MCP server {server.name}, calling {target}.\n"
              "# Backend credentials belong under Backend authentication (below), not in this file.\n")
    template = _GENERIC_TOOLS
    if _is_demo_api(target):
        template = _DEMO_TOOLS
        header += ("# The demo API wants the header X-API-Key (DEMO_API_KEY, demo-key by default): choose API key,\n"
                   "# header, name X-API-Key under Backend authentication.\n")
    return header + template.format(base=base)
