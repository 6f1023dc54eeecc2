"""The peer: FastMCP's OpenAPI server over the same backend operation, as uvicorn serves it (`peer_app:app`).

BENCH_BACKEND_URL names the backend; PEER_TRANSPORT is `http` (stateless, JSON responses: the shape a
load generator can drive) or `sse` (2024-11-05 HTTP+SSE, one process only: its sessions live in memory).
"""
from __future__ import annotations

import os

import httpx2
from fastmcp import FastMCP

BACKEND = os.environ.get("BENCH_BACKEND_URL", "http://127.0.0.1:8080")
TRANSPORT = os.environ.get("PEER_TRANSPORT", "http")

PET_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": ["available", "pending", "sold"]},
        "tag": {"type": "string"},
    },
    "required": ["id", "name", "status"],
}

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1"},
    "servers": [{"url": BACKEND}],
    "paths": {
        "/pets/{petId}": {
            "get": {
                "operationId": "getPet",
                "summary": "Fetch one pet by its id.",
                "parameters": [{"name": "petId", "in": "path", "required": True, "description": "The pet's id.",
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "The pet.",
                                      "content": {"application/json": {"schema": PET_SCHEMA}}}},
            }
        }
    },
}

client = httpx2.AsyncClient(base_url=BACKEND, timeout=30.0)
mcp = FastMCP.from_openapi(openapi_spec=OPENAPI, client=client, name="bench")

if TRANSPORT == "sse":
    app = mcp.http_app(transport="sse")
else:
    app = mcp.http_app(path="/mcp", stateless_http=True, json_response=True)
