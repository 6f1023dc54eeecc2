"""Consumer Authentication at the gateway's edge: which consumer is calling, decided from the read model alone.

Runs after routing and the origin check and before the transport, on every request to an endpoint whose server
has authentication on (the SSE stream, every POST to its message endpoint, every Streamable HTTP POST, GET and
DELETE). The credential is taken out of the request as it is read, so nothing after the edge (header
passthrough to a backend, templates, call records) can see it. An API key is looked up by its SHA-256 digest in
the server's ConsumerAuthConfig; a JWT is verified by gateway.consumer_jwt; an OAuth access token (method "oauth",
OAuth sign-in, where API keys keep working) is found in gateway.oauth_tokens and must have been issued for this MCP
server (RFC 8707 resource) with its scope. Answers:
- no credential → 401 with `WWW-Authenticate: Bearer realm="<instance>/<server>"`;
- an unknown, revoked, expired or otherwise refused credential → 401 with `error="invalid_token"` and a
  description (a disabled consumer's credentials are not in the read model at all);
- a consumer of the team that the server has not authorized → 403;
- on OAuth sign-in every 401 also names the protected-resource metadata and the scope (RFC 9728 §5.1), so an MCP
  client can discover the authorization server and sign in; a token without the server's scope → 403 with
  `error="insufficient_scope"`.
Each carries a JSON-RPC error body that says how to send the credential. Used API keys are noted in memory and
their `last_used_at` written in one UPDATE per flush interval, off the request path. A stream that stays open
(the SSE stream, the Streamable HTTP GET stream) is checked again at each keepalive (`still_admitted`), so a
revoked key, a deleted credential or a withdrawn authorization also ends the streams it opened.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import protocol as p
from . import routing
from .consumer_jwt import JwtRejected, verify_consumer_jwt
from .oauth_tokens import token_grant
from .jsonrpc import dumps, error_response
from .readmodel import ConsumerAuthConfig, ServerConfig
from .state.outage import database_outage

log = logging.getLogger(__name__)

_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class ConsumerIdentity:
    """The authenticated caller as the call context carries it."""

    id: int
    name: str
    tools: frozenset[str] | None  # the tools it may use on this server; None: all of them
    # What tool templates see as .consumer, built once per config version rather than once per call.
    template: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "template", {"id": self.id, "name": self.name})

    def may_use(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools


# .consumer in templates on an open server: the fields exist and are empty.
OPEN_TEMPLATE: dict[str, Any] = {"id": "", "name": ""}


class Refused(Exception):
    """The request is answered here: 401 or 403, with its headers and JSON-RPC body."""

    def __init__(self, status: int, message: str, *, code: int, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or []

    @property
    def body(self) -> bytes:
        return dumps(error_response(None, self.code, self.message))


def identities_of(auth_consumers: dict[int, str],
                  authorizations: dict[int, frozenset[str] | None]) -> dict[int, ConsumerIdentity]:
    """The identity of each authorized, enabled consumer (the config loader calls this once per version)."""
    return {cid: ConsumerIdentity(id=cid, name=auth_consumers[cid], tools=tools)
            for cid, tools in authorizations.items() if cid in auth_consumers}


# ---------------------------------------------------------------- reading the credential

def take_credential(req, auth: ConsumerAuthConfig) -> str:
    """The presented credential ("" when none), removed from the request's headers or query."""
    if auth.source == "query":
        values = req.query.pop(auth.name, None)
        return values[0].strip() if values else ""
    if auth.source == "header":
        value = req.headers.pop(auth.name.lower(), None)
        if value is None:
            return ""
        value = value.strip()
        # Some clients can only be told "send this header value": a Bearer word in front is tolerated.
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        return value
    value = req.headers.pop("authorization", None)
    if value is None:
        return ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""  # e.g. Basic: not a bearer credential, so none was presented
    return token.strip()


def how_to_send(auth: ConsumerAuthConfig) -> str:
    if auth.method == "oauth":
        return ("This MCP server requires OAuth sign-in: give your MCP client only the endpoint URL and it signs in "
                "through the console (scripts may send an API key as Authorization: Bearer <key>).")
    what = "a JWT" if auth.method == "jwt" else "an API key"
    placeholder = "<token>" if auth.method == "jwt" else "<key>"
    if auth.source == "header":
        how = f"send it in the {auth.name} header"
    elif auth.source == "query":
        how = f"send it as the {auth.name} query parameter"
    else:
        how = f"send it as Authorization: Bearer {placeholder}"
    return f"This MCP server requires {what}: {how}."


def _quoted(text: str) -> bytes:
    # An auth-param value is a quoted-string: no quotes, backslashes or control characters inside.
    clean = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else " " for c in text)
    return b'"' + clean.encode("ascii") + b'"'


def resource_metadata_url(req, server: ServerConfig) -> str:
    """Where this endpoint's protected-resource metadata is: the well-known URI with the endpoint's path inserted."""
    endpoint = routing.match(req.path)
    base = endpoint.base if endpoint is not None else f"/instances/{server.instance}/mcp-servers/{server.name}"
    return f"{req.origin}/.well-known/oauth-protected-resource{base}"


def _unauthenticated(server: ServerConfig, auth: ConsumerAuthConfig, problem: str | None, req=None) -> Refused:
    challenge = b"Bearer realm=" + _quoted(server.key)
    if auth.method == "oauth" and req is not None:
        challenge += (b", resource_metadata=" + _quoted(resource_metadata_url(req, server)) +
                      b", scope=" + _quoted(auth.oauth_scope))
    message = how_to_send(auth)
    if problem is not None:
        challenge += b', error="invalid_token", error_description=' + _quoted(problem)
        message = f"{problem} {message}"
    return Refused(401, message, code=p.UNAUTHORIZED, headers=[(b"www-authenticate", challenge)])


# ---------------------------------------------------------------- deciding

async def authenticate(req, server: ServerConfig) -> ConsumerIdentity:
    """The consumer the request comes from, or Refused. Only called when the server's authentication is on."""
    return await identify(take_credential(req, server.consumer_auth), server, req=req)


# API keys carry this prefix (console.models.ConsumerApiKey.PREFIX), so on OAuth sign-in a key is told from a token
# without a lookup in both tables.
API_KEY_PREFIX = "mck_"


async def identify(credential: str, server: ServerConfig, *, req=None) -> ConsumerIdentity:
    """The consumer a credential taken from the request names on this server, or Refused."""
    auth = server.consumer_auth
    if not credential:
        raise _unauthenticated(server, auth, None, req)
    if auth.method == "jwt":
        consumer_id = await _jwt_consumer(credential, server, auth)
    elif auth.method == "oauth" and not credential.startswith(API_KEY_PREFIX):
        consumer_id = await _oauth_consumer(credential, server, auth, req)
    else:
        key = auth.api_keys.get(_sha256(credential.encode("utf-8", "surrogateescape")).hexdigest())
        if key is None:
            raise _unauthenticated(server, auth, "The API key is not valid: it is unknown or was revoked, or its "
                                                 "consumer is disabled.", req)
        if key.expires_at is not None and key.expires_at <= time.time():
            when = datetime.fromtimestamp(key.expires_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            raise _unauthenticated(server, auth, f"The API key expired at {when}.", req)
        consumer_id = key.consumer_id
        note_key_used(key.id)
    identity = auth.identities.get(consumer_id)
    if identity is not None:
        return identity
    name = auth.consumers.get(consumer_id)
    if name is None:
        raise _unauthenticated(server, auth, "The credential's consumer is disabled or unknown.", req)
    raise Refused(403, f"Forbidden: consumer {name} is not authorized to use MCP server {server.key}; ask an "
                       "admin of the team to authorize it on the server's Consumer Authentication tab.",
                  code=p.FORBIDDEN)


async def still_admitted(req, server: ServerConfig | None) -> bool:
    """Whether a stream that `req` opened may stay open under `server` as configured now (None: it is gone)."""
    if server is None or not server.enabled:
        return False
    auth = server.consumer_auth
    if auth is None or not auth.enabled:
        return True
    if req.consumer is None:
        # Opened while the server was open: the session's next request authenticates, and the first consumer
        # to do so keeps the session (see the transports), so the stream has no credential of its own to lose.
        return True
    # A credential names one consumer for good (the stream's), so admitting it again is the whole check.
    try:
        await identify(req.credential, server, req=req)
    except Refused:
        return False
    return True


async def _oauth_consumer(token: str, server: ServerConfig, auth: ConsumerAuthConfig, req) -> int:
    grant = await token_grant(token)
    if grant is None:
        raise _unauthenticated(server, auth, "The access token is not valid: it is unknown, expired or was revoked.",
                               req)
    if grant.server_id != server.id:
        # RFC 8707: a token minted for another MCP server is never accepted here (no token passthrough).
        raise _unauthenticated(server, auth, "The access token was issued for another resource: "
                                             f"{grant.resource}.", req)
    if auth.oauth_scope not in grant.scopes:
        challenge = b'Bearer error="insufficient_scope", scope=' + _quoted(auth.oauth_scope)
        if req is not None:
            challenge += b", resource_metadata=" + _quoted(resource_metadata_url(req, server))
        challenge += b", error_description=" + _quoted(f"The access token lacks the scope {auth.oauth_scope}.")
        raise Refused(403, f"Forbidden: the access token lacks the scope {auth.oauth_scope} this MCP server needs; "
                           "sign in again to grant it.", code=p.FORBIDDEN,
                      headers=[(b"www-authenticate", challenge)])
    return grant.consumer_id


async def _jwt_consumer(token: str, server: ServerConfig, auth: ConsumerAuthConfig) -> int:
    try:
        credential = await verify_consumer_jwt(token, auth.jwt_credentials, cache_key=server.version)
    except JwtRejected as exc:
        raise _unauthenticated(server, auth, f"The token was refused: {exc.reason}") from None
    return credential.consumer_id


# ---------------------------------------------------------------- API key last use, off the request path

_used: set[int] = set()
_flusher: asyncio.Task | None = None


def note_key_used(key_id: int) -> None:
    global _flusher
    _used.add(key_id)
    if _flusher is None or _flusher.done() or _flusher.get_loop() is not asyncio.get_running_loop():
        _flusher = asyncio.get_running_loop().create_task(_flush_forever())


def _write_last_used(ids: list[int], at: datetime) -> None:
    from django.db import close_old_connections

    from console.models import ConsumerApiKey

    close_old_connections()
    # One statement for every key used since the last flush; no config version bump (nothing routing depends on).
    ConsumerApiKey.objects.filter(pk__in=ids).update(last_used_at=at)


_write_last_used_async = sync_to_async(_write_last_used, thread_sensitive=False)


async def flush_key_usage() -> int:
    """Write last_used_at for the keys used since the last flush; returns how many. Keeps them on failure."""
    if not _used:
        return 0
    ids = list(_used)
    _used.clear()
    try:
        await _write_last_used_async(ids, datetime.now(tz=timezone.utc))
    except (OperationalError, InterfaceError) as exc:
        # The database is down: one line per outage, and the keys wait for the next flush.
        database_outage.failed(f"{type(exc).__name__} while recording API key use")
        _used.update(ids)
        return 0
    except Exception:
        log.exception("Could not record the last use of %d API key(s); trying again at the next flush", len(ids))
        _used.update(ids)
        return 0
    return len(ids)


async def _flush_forever() -> None:
    while _used:
        await asyncio.sleep(max(0.05, settings.GATEWAY_KEY_USAGE_FLUSH_SECONDS))
        await flush_key_usage()
