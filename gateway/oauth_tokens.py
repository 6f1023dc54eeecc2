"""OAuth access tokens at the gateway's edge: each token's introspection cached in shared state, so no query per call.

The console puts an entry when it issues a token (console/oauth/validator.py) and deletes it when the token goes
(revoked at the revocation endpoint or on the consumer's page, rotated away by a refresh, expired and cleared). In
the embedded profile the entry lives in this process. With Redis every process reads the same entry, and keeps what
it read for GATEWAY_CONFIG_POLL_SECONDS (0.25 s): a Redis round trip per call cost a quarter of a busy process,
and a revoked token then stops working on the process that revoked it at once and on every other one within the
same bound as a revoked API key. An entry's TTL is the token's own lifetime. A token the cache
does not know (Redis restarted empty) is looked up once in the database, off the event loop, and cached again; an
unknown one is remembered as unknown for a short while, so a flood of made-up tokens costs no query each.
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

KEY_PREFIX = "mcpgw:oauth:token:"
UNKNOWN = b"-"
UNKNOWN_TTL_SECONDS = 30


def server_scope(instance: str, name: str) -> str:
    """The scope that lets a token call one MCP server (scope-token characters only: the names are slugs)."""
    return f"mcp:{instance}/{name}"


def token_digest(token: str) -> str:
    # The same SHA-256 hex digest the authorization server stores as the token's checksum.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a valid access token allows: whose it is, for which MCP server (RFC 8707 resource) and scopes, until when."""

    consumer_id: int
    server_id: int
    resource: str
    scopes: frozenset[str]
    expires_at: float  # Unix time

    def dumps(self) -> bytes:
        return json.dumps({"c": self.consumer_id, "s": self.server_id, "r": self.resource,
                           "sc": sorted(self.scopes), "e": self.expires_at}).encode()

    @classmethod
    def loads(cls, raw: bytes) -> "TokenGrant | None":
        try:
            data = json.loads(raw)
            return cls(consumer_id=int(data["c"]), server_id=int(data["s"]), resource=str(data["r"]),
                       scopes=frozenset(str(s) for s in data["sc"]), expires_at=float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None


# ---------------------------------------------------------------- this process's table: the embedded profile's
# entries, or with Redis what this process read there

_lock = threading.Lock()
_local: dict[str, tuple[float, bytes]] = {}  # key -> (expires at, monotonic; value)
_LOCAL_LIMIT = 200_000


def _local_put(key: str, value: bytes, ttl: float) -> None:
    now = time.monotonic()
    with _lock:
        if len(_local) >= _LOCAL_LIMIT:  # bounded: expired entries go first, then the table starts over
            for k in [k for k, (exp, _) in _local.items() if exp < now]:
                del _local[k]
            if len(_local) >= _LOCAL_LIMIT:
                _local.clear()
        _local[key] = (now + ttl, value)


def _local_get(key: str) -> bytes | None:
    entry = _local.get(key)
    if entry is None:
        return None
    if entry[0] < time.monotonic():
        _local.pop(key, None)
        return None
    return entry[1]


# ---------------------------------------------------------------- the console's side (synchronous)

def _redis():
    from .state.redis import _sync_client

    return _sync_client(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)


def token_cache_put(*, digest: str, grant: TokenGrant) -> None:
    """Make a newly issued token known to every gateway process."""
    ttl = max(1, math.ceil(grant.expires_at - time.time()))
    if settings.REDIS_URL:
        _redis().set(KEY_PREFIX + digest, grant.dumps(), ex=ttl)
    else:
        _local_put(KEY_PREFIX + digest, grant.dumps(), ttl)


def token_cache_drop(*, digests: list[str]) -> None:
    """Forget tokens everywhere: the next request that presents one is refused, on every process.
    With Redis away this raises (redis.RedisError): a revocation must not report success it did not have."""
    if not digests:
        return
    keys = [KEY_PREFIX + d for d in digests]
    for key in keys:
        _local.pop(key, None)  # with Redis: what this process read of them; it refuses them from its next request
    if settings.REDIS_URL:
        # The unknown marker, not a plain delete: the database fallback would otherwise find a row still being
        # deleted by the same transaction's commit and cache it again.
        pipe = _redis().pipeline(transaction=False)
        for key in keys:
            pipe.set(key, UNKNOWN, ex=UNKNOWN_TTL_SECONDS)
        pipe.execute()
    else:
        for key in keys:
            _local_put(key, UNKNOWN, UNKNOWN_TTL_SECONDS)


# ---------------------------------------------------------------- the gateway's side

def _grant_from_database(digest: str) -> TokenGrant | None:
    from django.db import close_old_connections

    from console.oauth.tokens import token_grant_of

    close_old_connections()
    return token_grant_of(digest=digest)


_grant_from_database_async = sync_to_async(_grant_from_database, thread_sensitive=False)


async def token_grant(token: str) -> TokenGrant | None:
    """The grant of a presented access token, or None (unknown, revoked or expired)."""
    digest = token_digest(token)
    key = KEY_PREFIX + digest
    if settings.REDIS_URL:
        raw = _local_get(key)  # what this process read, kept for the poll interval
        if raw is None:
            from .state import get_state

            raw = await get_state().cache_get(key)
            if raw is not None:
                _local_put(key, raw, settings.GATEWAY_CONFIG_POLL_SECONDS)
    else:
        raw = _local_get(key)
    if raw == UNKNOWN:
        return None
    if raw is not None:
        grant = TokenGrant.loads(raw)
        if grant is not None and grant.expires_at > time.time():
            return grant
        return None
    grant = await _grant_from_database_async(digest)
    value, ttl = (UNKNOWN, UNKNOWN_TTL_SECONDS) if grant is None else (
        grant.dumps(), max(1, math.ceil(grant.expires_at - time.time())))
    if settings.REDIS_URL:
        from .state import get_state

        await get_state().cache_set(key, value, ttl)
    else:
        _local_put(key, value, ttl)
    return grant
