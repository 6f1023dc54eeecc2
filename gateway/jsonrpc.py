"""JSON-RPC 2.0 message shapes: parsing, validation and building responses."""
from __future__ import annotations

import json
from typing import Any

import orjson
from django.conf import settings

from . import boundedjson
from .protocol import INVALID_REQUEST, PARSE_ERROR

Message = dict[str, Any]


class RpcError(Exception):
    """A JSON-RPC error to answer with; `http_status` is used when it ends the whole HTTP exchange."""

    def __init__(self, code: int, message: str, data: Any = None, *, http_status: int = 400, msg_id: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status
        self.msg_id = msg_id  # the offending message's id when it has a valid one

    def response(self, msg_id: Any = None) -> Message:
        return error_response(self.msg_id if msg_id is None else msg_id, self.code, self.message, self.data)


def error_response(msg_id: Any, code: int, message: str, data: Any = None) -> Message:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": error}


def result_response(msg_id: Any, result: Any) -> Message:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def parse_body(body: bytes) -> Any:
    """The body's JSON within MCP_MAX_JSON_DEPTH and MCP_MAX_JSON_VALUES; RpcError -32700 (HTTP 400) otherwise."""
    if not body.strip():
        raise RpcError(PARSE_ERROR, "Parse error: the request body is empty.")
    try:
        return boundedjson.loads(body, max_depth=settings.MCP_MAX_JSON_DEPTH, max_values=settings.MCP_MAX_JSON_VALUES)
    except ValueError as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None


def kind(message: Any) -> str:
    """'request', 'notification' or 'response'; raises RpcError for anything else."""
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "Invalid request: a JSON-RPC message must be an object.")
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0".', msg_id=_id(message))
    if "method" in message:
        if not isinstance(message["method"], str) or not message["method"]:
            raise RpcError(INVALID_REQUEST, 'Invalid request: "method" must be a non-empty string.',
                           msg_id=_id(message))
        if "params" in message and not isinstance(message["params"], (dict, list)):
            raise RpcError(INVALID_REQUEST, 'Invalid request: "params" must be an object.', msg_id=_id(message))
        if "id" not in message:
            return "notification"
        if not _valid_id(message["id"]):
            raise RpcError(INVALID_REQUEST, 'Invalid request: "id" must be a string or an integer.')
        return "request"
    if "id" in message and ("result" in message or "error" in message):
        return "response"
    raise RpcError(INVALID_REQUEST, 'Invalid request: no "method", and not a response.',
                   msg_id=_id(message))


def params_of(message: Any) -> dict[str, Any]:
    """The message's params as an object ({} when absent or not an object)."""
    params = message.get("params") if isinstance(message, dict) else None
    return params if isinstance(params, dict) else {}


def meta_of(message: Any) -> dict[str, Any]:
    """params._meta as an object ({} when absent)."""
    meta = params_of(message).get("_meta")
    return meta if isinstance(meta, dict) else {}


def _valid_id(value: Any) -> bool:
    # MCP forbids null ids; booleans are ints in Python but not in JSON-RPC.
    return (isinstance(value, str) or isinstance(value, int)) and not isinstance(value, bool)


def _id(message: dict) -> Any:
    value = message.get("id")
    return value if _valid_id(value) else None


# Dates and dataclasses are not JSON: refused as the standard library refuses them, not turned into strings.
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes it (about twenty times the standard library's speed on a tool call's answer);
    what it cannot write — a key that is not a string, an integer past 64 bits, a lone surrogate — the standard
    library writes as before."""
    try:
        return orjson.dumps(obj, option=_ORJSON_STRICT)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (a client may send the escape \\ud800) has no UTF-8 form; an ASCII-only dump escapes it.
        return json.dumps(obj, separators=(",", ":")).encode()
