"""Consumer JWTs: which consumer credential a bearer token verifies with (PyJWT), JWKS fetched through the egress policy.

`verify_consumer_jwt(token, credentials, cache_key=...)` answers with the JwtCredentialConfig the token verified with,
or raises JwtRejected with a reason a person can act on. In request order:

1. the verified-token cache: SHA-256 of the token -> (credential, expiry), valid for the same `cache_key` (the
   config version) only; a hit costs one hash and one dict lookup, which is what keeps JWT cheap on the hot path;
2. the token is parsed without trusting it (bounded size, base64url + JSON of two small parts) to choose the
   candidates: credentials whose one algorithm is the header's `alg`, whose issuer (if set) is the token's `iss`, and
   whose consumer's name is the value of the token's consumer claim — so a forged token never causes a JWKS fetch
   unless it already names a consumer that uses a JWKS;
3. each candidate (a bounded number) is verified with PyJWT, with the credential's algorithm as the only one
   allowed: signature, `exp` (required), `nbf`, `iat`, issuer and audience, with CLOCK_SKEW_SECONDS of leeway.

JWKS documents are fetched with the gateway's shared aiohttp session, so every connection passes the egress policy;
they are cached per URL, served stale while the IdP fails, refreshed on an unknown `kid` at most once per
JWKS_REFRESH_MIN_SECONDS, and concurrent fetches of one URL share one request.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from jwt import algorithms as jwt_algorithms

from . import egress
from .backends import get_http_session
from .readmodel import JwtCredentialConfig

logger = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 30  # leeway for exp, nbf and iat: clocks of IdPs and gateways drift a little
MAX_TOKEN_BYTES = 8192  # a JWT larger than this is not a credential anyone issues; parsing stays cheap
MAX_VERIFY_ATTEMPTS = 4  # signature checks per token, whatever the number of candidate credentials or keys
VERIFIED_CACHE_SIZE = 10_000  # verified tokens remembered per event loop (LRU)

JWKS_TIMEOUT_SECONDS = 5.0
JWKS_MAX_BYTES = 1024 * 1024
JWKS_TTL_SECONDS = 300.0  # a JWKS is fetched again after this long
JWKS_STALE_SECONDS = 24 * 3600.0  # while refreshing fails, keys this old still verify (stale-while-error)
JWKS_REFRESH_MIN_SECONDS = 30.0  # an unknown kid refreshes a URL at most this often: random kids cannot hammer the IdP
JWKS_RETRY_SECONDS = 5.0  # after a failed fetch, the next attempt waits this long (requests meanwhile get the error)
JWKS_MAX_KEYS = 100

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_KEY_KINDS = {
    "RS256": "an RSA", "RS384": "an RSA", "RS512": "an RSA", "PS256": "an RSA", "PS384": "an RSA",
    "PS512": "an RSA", "ES256": "an EC P-256", "ES384": "an EC P-384", "ES512": "an EC P-521",
    "EdDSA": "an Ed25519 or Ed448",
}
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
SUPPORTED_ALGORITHMS = HMAC_ALGORITHMS | frozenset(_KEY_KINDS)
_ALGORITHMS = jwt_algorithms.get_default_algorithms()
monotonic = time.monotonic  # JWKS scheduling's clock (a module attribute so tests can move time on)


class JwtRejected(Exception):
    """A token that does not authenticate a consumer; `reason` says why, for the person sending it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- state (per event loop: futures belong to one loop)


@dataclass
class _Jwks:
    """One JWKS URL: its keys as last fetched, and when it was fetched or tried."""

    keys: tuple[dict[str, Any], ...] = ()
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float = -math.inf  # monotonic time the last fetch started
    error: str = ""  # why the last fetch failed ("" when it succeeded)
    inflight: asyncio.Future | None = None
    prepared: dict[tuple[int, str], jwt.PyJWK | None] = field(default_factory=dict)  # (key index, alg) -> key


@dataclass
class _State:
    verified: OrderedDict[bytes, tuple[object, int, float]] = field(default_factory=OrderedDict)
    jwks: dict[str, _Jwks] = field(default_factory=dict)
    keys: dict[tuple[str, str], Any] = field(default_factory=dict)  # (algorithm, PEM or secret) -> prepared key


_states: dict[int, tuple[asyncio.AbstractEventLoop, _State]] = {}


def _state() -> _State:
    loop = asyncio.get_running_loop()
    entry = _states.get(id(loop))
    if entry is not None and entry[0] is loop:
        return entry[1]
    for key, (other, _) in list(_states.items()):
        if other.is_closed():
            del _states[key]
    state = _State()
    _states[id(loop)] = (loop, state)
    return state


# ---------------------------------------------------------------- the entry point


async def verify_consumer_jwt(token: str, credentials: tuple[JwtCredentialConfig, ...], *,
                              cache_key: object) -> JwtCredentialConfig:
    """The credential `token` verifies with (so its consumer), or JwtRejected saying why not."""
    if not isinstance(token, str) or not token:
        raise JwtRejected("no token was sent")
    if len(token) > MAX_TOKEN_BYTES:
        raise JwtRejected(f"the token is {len(token):,} bytes long; at most {MAX_TOKEN_BYTES:,} are accepted")
    if not token.isascii():
        raise JwtRejected("the token is not a JWT: it contains characters outside base64url")
    state = _state()
    digest = hashlib.sha256(token.encode("ascii")).digest()
    hit = state.verified.get(digest)
    if hit is not None:
        hit_key, credential_id, valid_until = hit
        if hit_key == cache_key and time.time() < valid_until:
            for credential in credentials:
                if credential.id == credential_id:
                    state.verified.move_to_end(digest)
                    return credential
        del state.verified[digest]

    header, payload = _parse(token)
    credential, valid_until = await _verify(state, token, header, payload, credentials)
    state.verified[digest] = (cache_key, credential.id, valid_until)
    if len(state.verified) > VERIFIED_CACHE_SIZE:
        state.verified.popitem(last=False)
    return credential


# ---------------------------------------------------------------- parsing without trusting


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = token.split(".")
    if len(parts) == 5:
        raise JwtRejected("the token is an encrypted JWT (JWE); only signed JWTs (JWS) are accepted")
    if len(parts) != 3:
        raise JwtRejected(f"the token is not a JWT: expected three dot-separated parts (header.payload.signature), "
                          f"found {len(parts)}")
    header = _json_part(parts[0], "header")
    payload = _json_part(parts[1], "payload")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise JwtRejected("the token's header names no algorithm (alg)")
    if alg.lower() == "none":
        raise JwtRejected("unsigned tokens (alg: none) are not accepted")
    if not parts[2]:
        raise JwtRejected("the token has no signature")
    return header, payload


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        # validate=True: the lenient default would skip characters outside the alphabet instead of refusing them.
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise JwtRejected(f"the token is not a JWT: its {what} is not base64url") from None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; nesting is bounded by MAX_TOKEN_BYTES
        raise JwtRejected(f"the token is not a JWT: its {what} is not JSON") from None
    if not isinstance(value, dict):
        raise JwtRejected(f"the token is not a JWT: its {what} is not a JSON object")
    return value


# ---------------------------------------------------------------- choosing and verifying


def _quoted(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _expected(values: list[str]) -> str:
    unique = list(dict.fromkeys(values))
    shown = " or ".join(unique[:3]) + (" …" if len(unique) > 3 else "")
    return shown


async def _verify(state: _State, token: str, header: dict[str, Any], payload: dict[str, Any],
                  credentials: tuple[JwtCredentialConfig, ...]) -> tuple[JwtCredentialConfig, float]:
    if not credentials:
        raise JwtRejected("no consumer of this MCP server has a JWT credential")
    alg = header["alg"]
    candidates = [c for c in credentials if c.algorithm == alg]
    if not candidates:
        expected = _expected(sorted({c.algorithm for c in credentials}))
        raise JwtRejected(f"algorithm {alg} is not allowed (expected {expected})")

    iss = payload.get("iss")
    by_issuer = [c for c in candidates if not c.issuer or c.issuer == iss]
    if not by_issuer:
        expected = _expected([repr(c.issuer) for c in candidates])
        if iss is None:
            raise JwtRejected(f"the token has no iss claim; the issuer must be {expected}")
        raise JwtRejected(f"issuer {_quoted(iss)} is not accepted (expected {expected})")

    named = [c for c in by_issuer if payload.get(c.consumer_claim) == c.consumer_name]
    if not named:
        claims = list(dict.fromkeys(c.consumer_claim for c in by_issuer))
        claim = claims[0]
        if len(claims) == 1 and claim not in payload:
            raise JwtRejected(f"the token has no {claim} claim; it must be the consumer's name")
        shown = ", ".join(f"{name} is {_quoted(payload[name])}" if name in payload else f"no {name}"
                          for name in claims[:3])
        raise JwtRejected(f"the token's consumer claim ({shown}) names no consumer with an {alg} credential "
                          "for this MCP server")

    failures: list[tuple[int, str]] = []  # (rank, reason): a signature that verified outranks one that did not
    attempts = 0
    for credential in named:
        if attempts >= MAX_VERIFY_ATTEMPTS:
            break
        try:
            keys = await _keys_for(state, credential, header)
        except JwtRejected as exc:
            failures.append((0, exc.reason))
            continue
        for key in keys:
            if attempts >= MAX_VERIFY_ATTEMPTS:
                break
            attempts += 1
            try:
                return credential, _decode(token, key, credential, payload)
            except _ClaimsRejected as exc:
                failures.append((2, exc.reason))
            except JwtRejected as exc:
                failures.append((1, exc.reason))
    if not failures:
        raise JwtRejected("no credential could be tried")
    best = max(rank for rank, _ in failures)
    reasons = list(dict.fromkeys(reason for rank, reason in failures if rank == best))
    raise JwtRejected("; ".join(reasons[:3]))


class _ClaimsRejected(JwtRejected):
    """The signature verified, a claim did not: the most useful thing to tell."""


def _decode(token: str, key: Any, credential: JwtCredentialConfig, payload: dict[str, Any]) -> float:
    """Verify with PyJWT; the time until which the verified token may be served from the cache."""
    whose = f"consumer {credential.consumer_name}'s"
    try:
        claims = jwt.decode(
            token, key, algorithms=[credential.algorithm],
            audience=credential.audience or None, issuer=credential.issuer or None, leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp"], "verify_aud": bool(credential.audience)},
        )
    except jwt.InvalidSignatureError:
        raise JwtRejected(f"the signature does not verify with {whose} key") from None
    except jwt.ExpiredSignatureError:
        raise _ClaimsRejected(f"the token expired {_span(time.time() - _number(payload.get('exp')))} ago") from None
    except jwt.ImmatureSignatureError:
        now = time.time()
        nbf = _number(payload.get("nbf"))
        if nbf is not None and nbf > now + CLOCK_SKEW_SECONDS:
            raise _ClaimsRejected(f"the token is not valid yet: nbf is {_span(nbf - now)} from now") from None
        iat = _number(payload.get("iat"))
        raise _ClaimsRejected(f"the token was issued in the future: iat is {_span((iat or now) - now)} ahead of "
                              "the gateway's clock") from None
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "exp":
            raise _ClaimsRejected("the token has no exp claim; only tokens that expire are accepted") from None
        if exc.claim == "aud":
            raise _ClaimsRejected(f"the audience must include {credential.audience!r}; the token has no aud claim") \
                from None
        if exc.claim == "iss":
            raise _ClaimsRejected(f"the issuer must be {credential.issuer!r}; the token has no iss claim") from None
        raise _ClaimsRejected(f"the token has no {exc.claim} claim") from None
    except jwt.InvalidAudienceError:
        raise _ClaimsRejected(f"the audience must include {credential.audience!r} (the token has "
                              f"{_quoted(payload.get('aud'))})") from None
    except jwt.InvalidIssuerError:
        raise _ClaimsRejected(f"the issuer must be {credential.issuer!r} (the token has "
                              f"{_quoted(payload.get('iss'))})") from None
    except jwt.InvalidIssuedAtError:
        raise _ClaimsRejected("the token's iat claim is not a number") from None
    except jwt.InvalidKeyError:
        raise JwtRejected(f"{whose} key cannot verify {credential.algorithm} tokens") from None
    except jwt.InvalidAlgorithmError:
        raise JwtRejected(f"algorithm {credential.algorithm} does not match {whose} key") from None
    except jwt.DecodeError as exc:
        raise JwtRejected(f"the token is malformed: {exc}") from None
    except jwt.PyJWTError as exc:
        raise _ClaimsRejected(f"the token is not accepted: {exc}") from None
    except Exception:  # the token is attacker-controlled input to a third-party parser: refuse, never fail the request
        logger.warning("JWT verification failed unexpectedly for consumer %s", credential.consumer_name, exc_info=True)
        raise JwtRejected(f"the token could not be verified with {whose} key") from None
    if claims.get(credential.consumer_claim) != credential.consumer_name:  # chosen on the same bytes; kept as a guard
        raise _ClaimsRejected(f"the token's {credential.consumer_claim} claim must be {credential.consumer_name!r}")
    try:
        valid_until = float(int(claims["exp"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _ClaimsRejected("the token's exp claim is not a number") from None
    if credential.jwks_url:
        # A key the IdP drops from its JWKS stops verifying cached tokens once the JWKS would have been refreshed.
        valid_until = min(valid_until, time.time() + JWKS_TTL_SECONDS)
    return valid_until


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _span(seconds: float | None) -> str:
    """A duration as people say it: "45 seconds", "2 minutes", "3 hours", "5 days"."""
    if seconds is None:
        return "some time"
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


# ---------------------------------------------------------------- keys


async def _keys_for(state: _State, credential: JwtCredentialConfig, header: dict[str, Any]) -> list[Any]:
    """The keys to try for this credential: its secret or PEM key, or the JWKS keys that fit the token's kid."""
    alg = credential.algorithm
    whose = f"consumer {credential.consumer_name}'s"
    if alg not in SUPPORTED_ALGORITHMS:
        raise JwtRejected(f"{whose} JWT credential names an unsupported algorithm {alg}")
    if alg in HMAC_ALGORITHMS:
        if not credential.secret:
            raise JwtRejected(f"{whose} {alg} credential has no secret")
        return [_prepared(state, alg, credential.secret, whose)]
    if credential.public_key:
        return [_prepared(state, alg, credential.public_key, whose)]
    if credential.jwks_url:
        return await _jwks_keys(state, credential.jwks_url, header.get("kid"), alg)
    raise JwtRejected(f"{whose} {alg} credential has neither a public key nor a JWKS URL")


def _prepared(state: _State, alg: str, material: str, whose: str) -> Any:
    """The key object for a secret or PEM, parsed once per process (parsing an RSA key costs more than verifying)."""
    cache_key = (alg, material)
    key = state.keys.get(cache_key)
    if key is None:
        try:
            key = _ALGORITHMS[alg].prepare_key(material)
        except (jwt.InvalidKeyError, ValueError, TypeError):
            if alg in HMAC_ALGORITHMS:
                # An asymmetric key used as an HMAC secret is the key-confusion attack: never accepted.
                raise JwtRejected(f"{whose} {alg} secret is an asymmetric key or not usable as an HMAC secret") \
                    from None
            raise JwtRejected(f"{whose} public key is not {_KEY_KINDS[alg]} public key in PEM form, as {alg} "
                              "needs") from None
        if len(state.keys) >= 1024:
            state.keys.clear()
        state.keys[cache_key] = key
    return key


async def _jwks_keys(state: _State, url: str, kid: Any, alg: str) -> list[jwt.PyJWK]:
    entry = state.jwks.get(url)
    if entry is None:
        entry = state.jwks[url] = _Jwks()
    now = monotonic()
    if entry.fetched_at is None or now - entry.fetched_at >= JWKS_TTL_SECONDS:
        if not entry.error or now - entry.attempted_at >= JWKS_RETRY_SECONDS or entry.inflight is not None:
            await _refresh(entry, url)
    usable = entry.fetched_at is not None and monotonic() - entry.fetched_at < JWKS_STALE_SECONDS
    if not usable:
        raise JwtRejected(f"the JWKS at {url} could not be fetched: {entry.error or 'no keys yet'}")
    if kid is not None and not isinstance(kid, str):
        raise JwtRejected("the token's kid is not a string")
    keys = _select(entry, kid, alg)
    if not keys and kid is not None:
        if monotonic() - entry.attempted_at >= JWKS_REFRESH_MIN_SECONDS or entry.inflight is not None:
            await _refresh(entry, url)  # the IdP may have rotated its keys since
            keys = _select(entry, kid, alg)
    if not keys:
        failing = f" (refreshing it failed: {entry.error})" if entry.error else ""
        if kid is not None:
            raise JwtRejected(f"no key with kid {kid!r} in the JWKS at {url}{failing}")
        raise JwtRejected(f"no {alg} key in the JWKS at {url} (the token names no kid){failing}")
    return keys


def _select(entry: _Jwks, kid: str | None, alg: str) -> list[jwt.PyJWK]:
    found: list[jwt.PyJWK] = []
    for index, data in enumerate(entry.keys):
        if kid is not None and data.get("kid") != kid:
            continue
        if data.get("use") not in (None, "sig") or data.get("alg") not in (None, alg):
            continue
        key_id = (index, alg)
        if key_id not in entry.prepared:
            try:
                key = jwt.PyJWK(data, algorithm=alg)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                key = None  # a key of another type, or malformed: not one for this algorithm
            curve = _EC_CURVES.get(alg)
            if key is not None and curve is not None and getattr(getattr(key.key, "curve", None), "name", "") != curve:
                key = None  # PyJWK takes the algorithm's word for it; ES384 needs a P-384 key
            entry.prepared[key_id] = key
        key = entry.prepared[key_id]
        if key is not None:
            found.append(key)
            if len(found) >= MAX_VERIFY_ATTEMPTS:
                break
    return found


async def _refresh(entry: _Jwks, url: str) -> None:
    """Fetch the JWKS again, or wait for the fetch already running; the result (or error) lands in `entry`."""
    if entry.inflight is None:
        entry.attempted_at = monotonic()
        entry.inflight = asyncio.ensure_future(_fetch_into(entry, url))
    # Shielded: a request that gives up must not cancel the fetch the others wait for.
    await asyncio.shield(entry.inflight)


async def _fetch_into(entry: _Jwks, url: str) -> None:
    try:
        keys = await _fetch(url)
    except JwtRejected as exc:
        entry.error = exc.reason
        logger.info("JWKS %s: %s", url, exc.reason)
    else:
        entry.keys, entry.prepared = keys, {}
        entry.fetched_at, entry.error = monotonic(), ""
    finally:
        entry.inflight = None


async def _fetch(url: str) -> tuple[dict[str, Any], ...]:
    session = get_http_session()
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=JWKS_TIMEOUT_SECONDS),
                               allow_redirects=False,  # the configured URL is the one trusted for keys
                               headers={"Accept": "application/jwk-set+json, application/json"}) as response:
            if response.status != 200:
                raise JwtRejected(f"it answered HTTP {response.status}")
            if response.content_length is not None and response.content_length > JWKS_MAX_BYTES:
                raise JwtRejected(f"it is larger than {JWKS_MAX_BYTES // 1024} KB")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise JwtRejected(f"it is larger than {JWKS_MAX_BYTES // 1024} KB")
    except aiohttp.ClientConnectorError as exc:
        refusal = egress.refusal_of(exc)
        if refusal is not None:
            raise JwtRejected(refusal.describe("JWKS")) from None
        raise JwtRejected(f"cannot connect: {exc.os_error or exc}") from None
    except asyncio.TimeoutError:
        raise JwtRejected(f"no answer within {JWKS_TIMEOUT_SECONDS:g} s") from None
    except aiohttp.InvalidURL:
        raise JwtRejected("it is not a valid http(s) URL") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise JwtRejected(f"the request failed: {exc}") from None
    try:
        document = json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise JwtRejected("it is not JSON") from None
    raw = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise JwtRejected('it is not a JWK Set (a JSON object with a "keys" list)')
    keys = tuple(item for item in raw[:JWKS_MAX_KEYS] if isinstance(item, dict))
    if not keys:
        raise JwtRejected("it holds no keys")
    return keys


__all__ = ["CLOCK_SKEW_SECONDS", "JwtRejected", "MAX_TOKEN_BYTES", "SUPPORTED_ALGORITHMS", "verify_consumer_jwt"]
