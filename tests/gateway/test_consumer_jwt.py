"""Consumer JWT verification: keys made here, every algorithm family, every way a token is refused, and JWKS URLs
served by a real aiohttp server on 127.0.0.1 (rotation, caching, refresh limits, the egress policy)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway import consumer_jwt
from gateway.backends import close_http_sessions
from gateway.consumer_jwt import JwtRejected, verify_consumer_jwt
from gateway.readmodel import JwtCredentialConfig

from .test_egress import ALLOW_HINT, Listener

SECRET = "s3cret-for-billing-" + "0123456789abcdef" * 3  # 64 bytes: long enough for HS512
ISSUER = "https://idp.example.test"


def _pem(private) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def keys():
    return {
        "RSA": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RSA2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "EC": ec.generate_private_key(ec.SECP256R1()),
        "ED": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.fixture(autouse=True)
async def fresh_sessions():
    yield
    await close_http_sessions()


def cred(algorithm="HS256", *, id=1, name="billing", **kw) -> JwtCredentialConfig:
    if algorithm.startswith("HS") and "secret" not in kw:
        kw["secret"] = SECRET
    return JwtCredentialConfig(id=id, consumer_id=id * 10, consumer_name=name, algorithm=algorithm, **kw)


def claims(**kw) -> dict:
    now = int(time.time())
    base = {"sub": "billing", "iat": now, "exp": now + 600}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def token(payload=None, key=SECRET, alg="HS256", **headers) -> str:
    return jwt.encode(claims() if payload is None else payload, key, algorithm=alg, headers=headers or None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict, payload: dict, signature: bytes = b"sig") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)])


async def rejected(tok, creds, cache_key=1) -> str:
    with pytest.raises(JwtRejected) as info:
        await verify_consumer_jwt(tok, tuple(creds), cache_key=cache_key)
    return info.value.reason


# ---------------------------------------------------------------- algorithms


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_tokens_verify_with_the_consumers_secret(alg):
    credential = cred(alg)
    assert await verify_consumer_jwt(token(alg=alg), (credential,), cache_key=1) is credential


@pytest.mark.parametrize("alg,key", [("RS256", "RSA"), ("RS512", "RSA"), ("PS256", "RSA"), ("ES256", "EC"),
                                     ("EdDSA", "ED")])
async def test_asymmetric_tokens_verify_with_the_consumers_pem_key(keys, alg, key):
    credential = cred(alg, public_key=_pem(keys[key]))
    assert await verify_consumer_jwt(token(key=keys[key], alg=alg), (credential,), cache_key=1) is credential


async def test_the_credential_of_the_consumer_the_token_names_is_returned(keys):
    billing = cred("HS256", id=1, name="billing")
    reports = cred("HS256", id=2, name="reports", secret="another-secret-for-reports-0123456789")
    signer = cred("RS256", id=3, name="signer", public_key=_pem(keys["RSA"]))
    creds = (billing, reports, signer)
    assert await verify_consumer_jwt(token(claims(sub="reports"), key=reports.secret), creds, cache_key=1) is reports
    assert await verify_consumer_jwt(token(), creds, cache_key=1) is billing
    assert await verify_consumer_jwt(token(claims(sub="signer"), key=keys["RSA"], alg="RS256"), creds,
                                     cache_key=1) is signer


async def test_a_consumer_with_an_old_and_a_new_secret_is_accepted_with_either():
    old = cred("HS256", id=1, secret="the-old-secret-of-billing-0123456789")
    new = cred("HS256", id=2, secret="the-new-secret-of-billing-0123456789")
    assert await verify_consumer_jwt(token(key=old.secret), (new, old), cache_key=1) is old
    assert await verify_consumer_jwt(token(key=new.secret), (new, old), cache_key=1) is new


async def test_issuer_audience_and_a_custom_consumer_claim_are_checked():
    credential = cred("HS256", issuer=ISSUER, audience="mcp-gateway", consumer_claim="client_id")
    good = claims(sub="someone-else", client_id="billing", iss=ISSUER, aud=["other", "mcp-gateway"])
    assert await verify_consumer_jwt(token(good), (credential,), cache_key=1) is credential
    assert await verify_consumer_jwt(token({**good, "aud": "mcp-gateway"}), (credential,), cache_key=1) is credential


async def test_a_clock_skew_of_thirty_seconds_is_tolerated():
    now = int(time.time())
    late = token(claims(exp=now - 10, iat=now - 600))
    early = token(claims(nbf=now + 10, iat=now + 10))
    assert await verify_consumer_jwt(late, (cred(),), cache_key=1) == cred()
    assert await verify_consumer_jwt(early, (cred(),), cache_key=1) == cred()


# ---------------------------------------------------------------- refusals


async def test_expired_and_not_yet_valid_tokens_say_by_how_much():
    now = int(time.time())
    assert await rejected(token(claims(exp=now - 150, iat=now - 900)), [cred()]) == "the token expired 2 minutes ago"
    assert await rejected(token(claims(exp=now - 3 * 3600 - 60, iat=now - 5 * 3600)), [cred()]) == \
        "the token expired 3 hours ago"
    assert await rejected(token(claims(nbf=now + 630)), [cred()]) == \
        "the token is not valid yet: nbf is 10 minutes from now"
    assert await rejected(token(claims(iat=now + 7220)), [cred()]) == \
        "the token was issued in the future: iat is 2 hours ahead of the gateway's clock"


async def test_a_token_without_exp_is_refused():
    assert await rejected(token(claims(exp=None)), [cred()]) == \
        "the token has no exp claim; only tokens that expire are accepted"


async def test_wrong_audience_and_issuer_are_named():
    credential = cred(issuer=ISSUER, audience="mcp-gateway")
    assert await rejected(token(claims(iss=ISSUER, aud="billing-api")), [credential]) == \
        "the audience must include 'mcp-gateway' (the token has 'billing-api')"
    assert await rejected(token(claims(iss=ISSUER)), [credential]) == \
        "the audience must include 'mcp-gateway'; the token has no aud claim"
    assert await rejected(token(claims(iss="https://evil.test", aud="mcp-gateway")), [credential]) == \
        f"issuer 'https://evil.test' is not accepted (expected '{ISSUER}')"
    assert await rejected(token(claims(aud="mcp-gateway")), [credential]) == \
        f"the token has no iss claim; the issuer must be '{ISSUER}'"


async def test_a_bad_signature_names_the_consumer_whose_key_did_not_verify(keys):
    assert await rejected(token(key="not-the-secret-of-billing-0123456789"), [cred()]) == \
        "the signature does not verify with consumer billing's key"
    rs = cred("RS256", public_key=_pem(keys["RSA"]))
    assert await rejected(token(key=keys["RSA2"], alg="RS256"), [rs]) == \
        "the signature does not verify with consumer billing's key"
    tampered = token(key=keys["RSA"], alg="RS256").split(".")
    tampered[1] = _b64(json.dumps(claims(admin=True)).encode())
    assert await rejected(".".join(tampered), [rs]) == "the signature does not verify with consumer billing's key"


async def test_the_consumer_claim_must_name_the_consumer():
    assert await rejected(token(claims(sub="mallory")), [cred()]) == \
        "the token's consumer claim (sub is 'mallory') names no consumer with an HS256 credential for this MCP server"
    assert await rejected(token(claims(sub=None)), [cred()]) == \
        "the token has no sub claim; it must be the consumer's name"


async def test_alg_none_is_refused_in_any_spelling():
    for alg in ("none", "None", "NONE"):
        unsigned = raw_token({"alg": alg, "typ": "JWT"}, claims(), b"")
        assert await rejected(unsigned, [cred()]) == "unsigned tokens (alg: none) are not accepted"


async def test_only_the_credentials_algorithm_is_accepted(keys):
    assert await rejected(token(alg="HS512"), [cred("HS256")]) == "algorithm HS512 is not allowed (expected HS256)"
    es = cred("ES256", public_key=_pem(keys["EC"]))
    rs = cred("RS256", id=2, public_key=_pem(keys["RSA"]))
    assert await rejected(token(key=keys["RSA"], alg="PS256"), [es, rs]) == \
        "algorithm PS256 is not allowed (expected ES256 or RS256)"


async def test_hs_rs_key_confusion_is_refused(keys):
    """An HS256 token whose HMAC secret is the RSA public key's PEM: what a verifier that lets the token choose
    the algorithm would accept."""
    pem = _pem(keys["RSA"])
    header, payload = _b64(b'{"alg":"HS256","typ":"JWT"}'), _b64(json.dumps(claims()).encode())
    signature = hmac.new(pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{_b64(signature)}"
    assert await rejected(forged, [cred("RS256", public_key=pem)]) == "algorithm HS256 is not allowed (expected RS256)"
    # The consumer's own HS256 credential is verified with its own secret, never with another credential's PEM.
    both = [cred("RS256", id=1, public_key=pem), cred("HS256", id=2)]
    assert await rejected(forged, both) == "the signature does not verify with consumer billing's key"
    # Even a credential that (wrongly) holds the PEM as its HMAC secret does not verify it.
    assert await rejected(forged, [cred("HS256", secret=pem)]) == \
        "consumer billing's HS256 secret is an asymmetric key or not usable as an HMAC secret"


async def test_a_pem_key_of_the_wrong_type_is_reported(keys):
    credential = cred("ES256", public_key=_pem(keys["RSA"]))
    assert await rejected(token(key=keys["EC"], alg="ES256"), [credential]) == \
        "consumer billing's public key is not an EC P-256 public key in PEM form, as ES256 needs"


async def test_no_credentials_at_all():
    assert await rejected(token(), []) == "no consumer of this MCP server has a JWT credential"


def _deep(n: int) -> str:
    return _b64(("[" * n + "]" * n).encode())


@pytest.mark.parametrize("garbage,reason", [
    ("", "no token was sent"),
    ("mck_0123456789abcdef", "the token is not a JWT: expected three dot-separated parts "
                             "(header.payload.signature), found 1"),
    ("a.b", "the token is not a JWT: expected three dot-separated parts (header.payload.signature), found 2"),
    ("a.b.c.d.e", "the token is an encrypted JWT (JWE); only signed JWTs (JWS) are accepted"),
    ("!!!.e30.c2ln", "the token is not a JWT: its header is not base64url"),
    ("a.e30.c2ln", "the token is not a JWT: its header is not base64url"),
    (f"{_b64(b'not json')}.e30.c2ln", "the token is not a JWT: its header is not JSON"),
    (f"{_b64(b'[1]')}.e30.c2ln", "the token is not a JWT: its header is not a JSON object"),
    (f"{_deep(3000)}.e30.c2ln", "the token is not a JWT: its header is not JSON"),
    (f"{_b64(bytes([0xff, 0xfe]))}.e30.c2ln", "the token is not a JWT: its header is not JSON"),
    (f"{_b64(b'{}')}.e30.c2ln", "the token's header names no algorithm (alg)"),
    (_b64(b'{"alg": 5}') + ".e30.c2ln", "the token's header names no algorithm (alg)"),
    (_b64(b'{"alg": "HS256"}') + "." + _b64(b"[]") + ".c2ln", "the token is not a JWT: its payload is not a JSON object"),
    (_b64(b'{"alg": "HS256"}') + ".e30.", "the token has no signature"),
    ("ey\u00e9.e30.c2ln", "the token is not a JWT: it contains characters outside base64url"),
])
async def test_garbage_is_refused_with_a_clear_reason(garbage, reason):
    assert await rejected(garbage, [cred()]) == reason


async def test_oversize_tokens_are_refused_before_parsing():
    huge = token(claims(padding="x" * 9000))
    assert await rejected(huge, [cred()]) == f"the token is {len(huge):,} bytes long; at most 8,192 are accepted"


async def test_malformed_claims_and_signatures_are_refusals_not_errors():
    assert await rejected(token(claims(exp="tomorrow")), [cred()]) == \
        "the token is malformed: Expiration Time claim (exp) must be an integer."
    header, payload, _ = token().split(".")
    assert (await rejected(f"{header}.{payload}.@@@@", [cred()])).startswith("the token is malformed:")
    es = cred("ES256", public_key="-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    assert await rejected(raw_token({"alg": "ES256"}, claims(), b"\x00" * 64), [es]) == \
        "consumer billing's public key is not an EC P-256 public key in PEM form, as ES256 needs"


# ---------------------------------------------------------------- the verified-token cache


async def test_a_verified_token_is_served_from_the_cache_for_the_same_config_version():
    tok = token()
    assert await verify_consumer_jwt(tok, (cred(),), cache_key=7) == cred()
    # Same credential id, different secret: only a cache hit can still accept the token...
    rotated = cred(secret="a-completely-different-secret-0123456789")
    assert await verify_consumer_jwt(tok, (rotated,), cache_key=7) is rotated
    # ...and a new config version is verified afresh.
    assert await rejected(tok, [rotated], cache_key=8) == "the signature does not verify with consumer billing's key"


async def test_a_cache_hit_needs_the_credential_to_still_be_there():
    tok = token()
    await verify_consumer_jwt(tok, (cred(),), cache_key=7)
    other = cred(id=2, secret="a-completely-different-secret-0123456789")
    assert await rejected(tok, [other], cache_key=7) == "the signature does not verify with consumer billing's key"


async def test_a_cached_token_is_not_served_past_its_expiry():
    now = int(time.time())
    tok = token(claims(exp=now - 5, iat=now - 600))  # inside the clock skew: verifies, but is cached until exp
    assert await verify_consumer_jwt(tok, (cred(),), cache_key=7) == cred()
    rotated = cred(secret="a-completely-different-secret-0123456789")
    assert await rejected(tok, [rotated], cache_key=7) == "the signature does not verify with consumer billing's key"


async def test_the_cache_is_bounded_and_forgets_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(consumer_jwt, "VERIFIED_CACHE_SIZE", 2)
    first, second, third = (token(claims(jti=str(n))) for n in range(3))
    for tok in (first, second, third):
        await verify_consumer_jwt(tok, (cred(),), cache_key=1)
    rotated = cred(secret="a-completely-different-secret-0123456789")
    assert await verify_consumer_jwt(third, (rotated,), cache_key=1) is rotated
    assert await verify_consumer_jwt(second, (rotated,), cache_key=1) is rotated
    assert await rejected(first, [rotated]) == "the signature does not verify with consumer billing's key"


# ---------------------------------------------------------------- JWKS URLs


class JwksServer:
    """An IdP's JWKS endpoint on 127.0.0.1 that counts the requests it answers."""

    def __init__(self) -> None:
        self.document: object = {"keys": []}
        self.status = 200
        self.raw: bytes | None = None
        self.delay = 0.0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def publish(self, *pairs) -> None:
        keys = []
        for kid, private in pairs:
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[_alg_of(private)].to_jwk(private.public_key()))
            if kid is not None:
                jwk["kid"] = kid
            keys.append(jwk)
        self.document = {"keys": keys}

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        body = self.raw if self.raw is not None else json.dumps(self.document).encode()
        return web.Response(status=self.status, body=body, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/jwks.json", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/jwks.json"

    async def stop(self) -> None:
        await self._runner.cleanup()


def _alg_of(private) -> str:
    if isinstance(private, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return "ES256"
    return "EdDSA"


@pytest.fixture
async def idp():
    server = JwksServer()
    await server.start()
    yield server
    await server.stop()


class Clock:
    """The JWKS schedule's clock, moved on by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(consumer_jwt, "monotonic", clock)
    return clock


def signed(private, kid, **kw) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return token(claims(**kw), key=private, alg=_alg_of(private), **headers)


async def test_jwks_keys_verify_rs256_es256_and_eddsa_tokens(idp, keys, clock):
    idp.publish(("rsa-1", keys["RSA"]), ("ec-1", keys["EC"]), ("ed-1", keys["ED"]))
    creds = (cred("RS256", id=1, jwks_url=idp.url), cred("ES256", id=2, jwks_url=idp.url),
             cred("EdDSA", id=3, jwks_url=idp.url))
    for credential, (kid, key) in zip(creds, [("rsa-1", "RSA"), ("ec-1", "EC"), ("ed-1", "ED")]):
        assert await verify_consumer_jwt(signed(keys[key], kid), creds, cache_key=1) is credential
    assert idp.requests == 1  # one fetch serves every key and every credential using the URL


async def test_a_token_without_kid_is_tried_against_the_keys_that_fit(idp, keys, clock):
    idp.publish((None, keys["RSA2"]), (None, keys["RSA"]), (None, keys["EC"]))
    credential = cred("RS256", jwks_url=idp.url)
    assert await verify_consumer_jwt(signed(keys["RSA"], None), (credential,), cache_key=1) is credential
    ec_only = cred("ES384", jwks_url=idp.url)
    assert await rejected(token(claims(), key=ec.generate_private_key(ec.SECP384R1()), alg="ES384"), [ec_only]) == \
        f"no ES384 key in the JWKS at {idp.url} (the token names no kid)"


async def test_the_jwks_is_cached_and_fetched_again_after_five_minutes(idp, keys, clock):
    idp.publish(("rsa-1", keys["RSA"]))
    credential = cred("RS256", jwks_url=idp.url)
    for n in range(5):
        await verify_consumer_jwt(signed(keys["RSA"], "rsa-1", jti=str(n)), (credential,), cache_key=1)
    assert idp.requests == 1
    clock.now += 299
    await verify_consumer_jwt(signed(keys["RSA"], "rsa-1", jti="a"), (credential,), cache_key=1)
    assert idp.requests == 1
    clock.now += 2
    await verify_consumer_jwt(signed(keys["RSA"], "rsa-1", jti="b"), (credential,), cache_key=1)
    assert idp.requests == 2


async def test_concurrent_verifications_share_one_fetch(idp, keys, clock):
    idp.publish(("rsa-1", keys["RSA"]))
    idp.delay = 0.05
    credential = cred("RS256", jwks_url=idp.url)
    tokens = [signed(keys["RSA"], "rsa-1", jti=str(n)) for n in range(10)]
    results = await asyncio.gather(*(verify_consumer_jwt(t, (credential,), cache_key=1) for t in tokens))
    assert results == [credential] * 10
    assert idp.requests == 1


async def test_key_rotation_a_new_kid_refreshes_the_jwks(idp, keys, clock):
    idp.publish(("2026-01", keys["RSA"]))
    credential = cred("RS256", jwks_url=idp.url)
    assert await verify_consumer_jwt(signed(keys["RSA"], "2026-01"), (credential,), cache_key=1) is credential
    idp.publish(("2026-02", keys["RSA2"]))  # the IdP rotates: the old key is gone, a new one signs
    clock.now += 31
    assert await verify_consumer_jwt(signed(keys["RSA2"], "2026-02"), (credential,), cache_key=1) is credential
    assert idp.requests == 2
    # The old key is gone from the refreshed JWKS.
    clock.now += 31
    assert await rejected(signed(keys["RSA"], "2026-01", jti="old"), [credential]) == \
        f"no key with kid '2026-01' in the JWKS at {idp.url}"


async def test_unknown_kids_refresh_at_most_once_per_thirty_seconds(idp, keys, clock):
    idp.publish(("rsa-1", keys["RSA"]))
    credential = cred("RS256", jwks_url=idp.url)
    await verify_consumer_jwt(signed(keys["RSA"], "rsa-1"), (credential,), cache_key=1)
    assert idp.requests == 1
    for n in range(20):  # right after a fetch, a sprayed kid costs no request
        assert await rejected(signed(keys["RSA"], f"random-{n}"), [credential]) == \
            f"no key with kid 'random-{n}' in the JWKS at {idp.url}"
    assert idp.requests == 1
    clock.now += 30
    await asyncio.gather(*(rejected(signed(keys["RSA"], f"burst-{n}"), [credential]) for n in range(20)))
    for n in range(20):
        await rejected(signed(keys["RSA"], f"again-{n}"), [credential])
        clock.now += 1
    assert idp.requests == 2
    clock.now += 10
    await rejected(signed(keys["RSA"], "later"), [credential])
    assert idp.requests == 3


async def test_a_failing_idp_is_served_from_stale_keys_and_retried_sparingly(idp, keys, clock):
    idp.publish(("rsa-1", keys["RSA"]))
    credential = cred("RS256", jwks_url=idp.url)
    await verify_consumer_jwt(signed(keys["RSA"], "rsa-1"), (credential,), cache_key=1)
    idp.status = 503
    clock.now += 301
    assert await verify_consumer_jwt(signed(keys["RSA"], "rsa-1", jti="1"), (credential,), cache_key=1) is credential
    assert idp.requests == 2
    clock.now += 1
    assert await verify_consumer_jwt(signed(keys["RSA"], "rsa-1", jti="2"), (credential,), cache_key=1) is credential
    assert idp.requests == 2  # the failure is not retried on every request
    clock.now += 5
    await verify_consumer_jwt(signed(keys["RSA"], "rsa-1", jti="3"), (credential,), cache_key=1)
    assert idp.requests == 3
    clock.now += 24 * 3600
    assert await rejected(signed(keys["RSA"], "rsa-1", jti="4"), [credential]) == \
        f"the JWKS at {idp.url} could not be fetched: it answered HTTP 503"


@pytest.mark.parametrize("setup,reason", [
    (lambda idp: setattr(idp, "status", 404), "it answered HTTP 404"),
    (lambda idp: setattr(idp, "raw", b"<html>login</html>"), "it is not JSON"),
    (lambda idp: setattr(idp, "raw", b'{"issuer": "x"}'), 'it is not a JWK Set (a JSON object with a "keys" list)'),
    (lambda idp: setattr(idp, "raw", b'{"keys": []}'), "it holds no keys"),
    (lambda idp: setattr(idp, "raw", b'{"keys": ["' + b"x" * (1024 * 1024) + b'"]}'), "it is larger than 1024 KB"),
])
async def test_a_jwks_that_cannot_be_used_is_a_rejection_with_that_reason(idp, keys, clock, setup, reason):
    setup(idp)
    credential = cred("RS256", jwks_url=idp.url)
    assert await rejected(signed(keys["RSA"], "rsa-1"), [credential]) == \
        f"the JWKS at {idp.url} could not be fetched: {reason}"


async def test_an_unreachable_jwks_is_a_rejection(keys, clock):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/jwks.json"
    reason = await rejected(signed(keys["RSA"], "rsa-1"), [cred("RS256", jwks_url=url)])
    assert reason.startswith(f"the JWKS at {url} could not be fetched: cannot connect: ")


async def test_a_jwks_address_the_egress_policy_refuses_is_never_connected_to(keys, clock):
    denied, allowed = Listener("127.0.0.2"), Listener("127.0.0.1", body=b'{"keys": []}')
    try:
        url = f"http://127.0.0.2:{denied.port}/jwks.json"
        assert await rejected(signed(keys["RSA"], "rsa-1"), [cred("RS256", jwks_url=url)]) == (
            f"the JWKS at {url} could not be fetched: JWKS address 127.0.0.2 is not allowed by the gateway's egress "
            f"policy (loopback address); {ALLOW_HINT}")
        assert denied.accepted == 0
        # The same request to an allowed address does connect: the refusal above was the policy's.
        allowed_url = f"http://127.0.0.1:{allowed.port}/jwks.json"
        assert await rejected(signed(keys["RSA"], "rsa-1"), [cred("RS256", jwks_url=allowed_url)]) == \
            f"the JWKS at {allowed_url} could not be fetched: it holds no keys"
        assert allowed.accepted == 1
    finally:
        denied.close()
        allowed.close()


async def test_forged_tokens_that_name_no_jwks_consumer_cause_no_fetch(idp, keys, clock):
    idp.publish(("rsa-1", keys["RSA"]))
    credential = cred("RS256", jwks_url=idp.url, issuer=ISSUER)
    assert (await rejected(signed(keys["RSA"], "x", iss="https://other.test"), [credential])).startswith("issuer")
    assert (await rejected(signed(keys["RSA"], "x", iss=ISSUER, sub="nobody"), [credential])).startswith(
        "the token's consumer claim")
    assert idp.requests == 0
