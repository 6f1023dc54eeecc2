"""Consumers of a team, their API keys and JWT credentials, authorizations and a server's Consumer Authentication."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone as dt_timezone

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..crypto import token_hint
from ..errors import DomainError
from ..models import (
    SLUG_RE, TOOL_NAME_RE, Consumer, ConsumerApiKey, ConsumerAuthMethod, ConsumerAuthorization, CredentialSource,
    JwtCredential, McpServer, Team,
)
from ..permissions import MANAGE_TEAM, require_role
from .common import audit, config_changed

Algorithm = JwtCredential.Algorithm
HMAC_ALGORITHMS = {Algorithm.HS256, Algorithm.HS384, Algorithm.HS512}
RSA_ALGORITHMS = {Algorithm.RS256, Algorithm.RS384, Algorithm.RS512, Algorithm.PS256, Algorithm.PS384,
                  Algorithm.PS512}
EC_CURVES = {Algorithm.ES256: "secp256r1", Algorithm.ES384: "secp384r1", Algorithm.ES512: "secp521r1"}
HMAC_SECRET_MIN_BYTES = 32
RSA_MIN_BITS = 2048
MAX_PEM_CHARS = 16_000
DEBUG_CREDENTIAL_LIFETIME = timedelta(hours=1)
DEBUG_KEY_NAME = "console debug"

# An HTTP header token (RFC 9110); a query parameter name is held to the URL's unreserved characters.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}$")
_QUERY_NAME_RE = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")
_CLAIM_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_SLUG_RE = re.compile(SLUG_RE)
_TOOL_NAME_RE = re.compile(TOOL_NAME_RE)
# Headers the transports themselves read: a credential there would be taken from the client's protocol traffic.
RESERVED_HEADERS = {"host", "content-type", "content-length", "accept", "connection", "cookie", "origin",
                    "mcp-session-id", "mcp-protocol-version", "last-event-id", "transfer-encoding"}


def _require_admin(*, actor, team: Team) -> None:
    require_role(actor=actor, team=team, at_least=MANAGE_TEAM)


def _invalid(details: dict[str, list[str]]) -> DomainError:
    return DomainError("Please correct the errors below.", details)


def _actor_or_none(actor):
    return actor if getattr(actor, "pk", None) else None


# ---------------------------------------------------------------- consumers

def _clean_consumer_name(*, team: Team, name, exclude_pk: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _invalid({"name": ["A consumer needs a name."]})
    name = name.strip()
    if len(name) > 63 or not _SLUG_RE.match(name):
        raise _invalid({"name": ["Use 1-63 lowercase letters, digits, '-' or '_', starting and ending with a "
                                 "letter or digit (it is the value a JWT's consumer claim carries)."]})
    qs = Consumer.objects.filter(team=team, name=name)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise _invalid({"name": [f"Team {team.name} has a consumer named {name} already."]})
    return name


def _clean_description(description) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise _invalid({"description": ["Give the description as text."]})
    if len(description) > 2000:
        raise _invalid({"description": ["Use at most 2000 characters."]})
    return description.strip()


@transaction.atomic
def consumer_create(*, actor, team: Team, name: str, description: str = "", enabled: bool = True) -> Consumer:
    _require_admin(actor=actor, team=team)
    name = _clean_consumer_name(team=team, name=name)
    try:
        with transaction.atomic():
            consumer = Consumer.objects.create(team=team, name=name, description=_clean_description(description),
                                               enabled=bool(enabled))
    except IntegrityError as exc:  # a concurrent create with the same name
        raise _invalid({"name": [f"Team {team.name} has a consumer named {name} already."]}) from exc
    audit(actor=actor, team=team, action="consumer.create", obj=consumer,
          detail={"name": consumer.name, "enabled": consumer.enabled})
    config_changed()
    return consumer


@transaction.atomic
def consumer_update(*, actor, consumer: Consumer, name: str | None = None, description: str | None = None,
                    enabled: bool | None = None) -> Consumer:
    team = consumer.team
    _require_admin(actor=actor, team=team)
    changes: dict[str, object] = {}
    if name is not None:
        new = _clean_consumer_name(team=team, name=name, exclude_pk=consumer.pk)
        if new != consumer.name:
            changes["name"] = {"from": consumer.name, "to": new}
            consumer.name = new
    if description is not None:
        new = _clean_description(description)
        if new != consumer.description:
            changes["description"] = True
            consumer.description = new
    if enabled is not None and bool(enabled) != consumer.enabled:
        changes["enabled"] = bool(enabled)
        consumer.enabled = bool(enabled)
    if not changes:
        return consumer
    consumer.save()
    audit(actor=actor, team=team, action="consumer.update", obj=consumer, detail=changes)
    config_changed()
    return consumer


@transaction.atomic
def consumer_delete(*, actor, consumer: Consumer) -> None:
    """Delete the consumer with its keys, JWT credentials and authorizations: they stop working at once."""
    team = consumer.team
    _require_admin(actor=actor, team=team)
    audit(actor=actor, team=team, action="consumer.delete", obj=consumer, detail={
        "name": consumer.name, "api_keys": consumer.api_keys.count(),
        "jwt_credentials": consumer.jwt_credentials.count(),
        "authorizations": list(consumer.authorizations.values_list("mcp_server__name", flat=True))})
    consumer.delete()
    config_changed()


# ---------------------------------------------------------------- API keys

def _clean_expiry(expires_at) -> datetime | None:
    if expires_at in (None, ""):
        return None
    if not isinstance(expires_at, datetime):
        raise _invalid({"expires_at": ["Give the expiry as a date and time (ISO 8601)."]})
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, dt_timezone.utc)
    if expires_at <= timezone.now():
        raise _invalid({"expires_at": ["Choose a time in the future (or no expiry)."]})
    return expires_at


@transaction.atomic
def consumer_api_key_issue(*, actor, consumer: Consumer, name: str = "",
                           expires_at: datetime | None = None) -> tuple[ConsumerApiKey, str]:
    """A new API key; the key itself is returned this once and only its digest is kept."""
    _require_admin(actor=actor, team=consumer.team)
    if not isinstance(name, str):
        raise _invalid({"name": ["Give the name as text."]})
    name = name.strip()
    if len(name) > 100:
        raise _invalid({"name": ["Use at most 100 characters."]})
    expires_at = _clean_expiry(expires_at)
    secret = ConsumerApiKey.new_secret()
    key = ConsumerApiKey.objects.create(
        consumer=consumer, name=name, digest=ConsumerApiKey.digest_of(secret),
        hint=token_hint(secret, ConsumerApiKey.PREFIX), expires_at=expires_at, created_by=_actor_or_none(actor))
    audit(actor=actor, team=consumer.team, action="consumer_api_key.issue", obj=key, detail={
        "consumer": consumer.name, "name": name, "hint": key.hint,
        "expires_at": expires_at.isoformat() if expires_at else None})
    config_changed()
    return key, secret


@transaction.atomic
def consumer_api_key_revoke(*, actor, api_key: ConsumerApiKey) -> ConsumerApiKey:
    """Revoke a key; the row stays so the list can show when. Revoking twice changes nothing."""
    consumer = api_key.consumer
    _require_admin(actor=actor, team=consumer.team)
    api_key = ConsumerApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit(actor=actor, team=consumer.team, action="consumer_api_key.revoke", obj=api_key,
          detail={"consumer": consumer.name, "name": api_key.name, "hint": api_key.hint})
    config_changed()
    return api_key


# ---------------------------------------------------------------- JWT credentials

def _text(value, field: str, *, max_length: int, errors: dict[str, list[str]]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[field] = ["Give this as text."]
        return ""
    value = value.strip()
    if len(value) > max_length:
        errors[field] = [f"Use at most {max_length} characters."]
    return value


def _check_public_key(algorithm: str, pem: str) -> str | None:
    """What is wrong with `pem` as the public key of `algorithm`, or None when it fits."""
    if "PRIVATE KEY" in pem:
        return ("This is a private key: never paste it here. Paste the public key (-----BEGIN PUBLIC KEY-----); "
                "nothing was stored.")
    if "BEGIN CERTIFICATE" in pem:
        return "This is a certificate: paste its public key (-----BEGIN PUBLIC KEY-----) instead."
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        return "This is not a PEM public key: paste the block from -----BEGIN PUBLIC KEY----- to -----END PUBLIC KEY-----."
    except Exception:  # cryptography raises UnsupportedAlgorithm for key types it cannot read
        return "This key type is not supported; use an RSA, EC (P-256/P-384/P-521), Ed25519 or Ed448 public key."
    if algorithm in RSA_ALGORITHMS:
        if not isinstance(key, rsa.RSAPublicKey):
            return f"{algorithm} needs an RSA public key; this is {_key_kind(key)}."
        if key.key_size < RSA_MIN_BITS:
            return f"This RSA key has {key.key_size} bits; use at least {RSA_MIN_BITS}."
        return None
    if algorithm in EC_CURVES:
        curve = EC_CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return f"{algorithm} needs an EC public key on {_curve_label(curve)}; this is {_key_kind(key)}."
        if key.curve.name != curve:
            return (f"{algorithm} needs an EC key on {_curve_label(curve)}; this key is on "
                    f"{_curve_label(key.curve.name)}.")
        return None
    if algorithm == Algorithm.EDDSA:
        if not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            return f"EdDSA needs an Ed25519 or Ed448 public key; this is {_key_kind(key)}."
        return None
    return None


def _curve_label(name: str) -> str:
    return {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(name, name)


def _key_kind(key) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {_curve_label(key.curve.name)}"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "an Ed25519/Ed448 key"
    return "another kind of key"


@transaction.atomic
def jwt_credential_create(*, actor, consumer: Consumer, algorithm: str, secret: str = "", public_key: str = "",
                          jwks_url: str = "", issuer: str = "", audience: str = "",
                          consumer_claim: str = "sub") -> JwtCredential:
    """How the gateway verifies this consumer's JWTs: exactly one of an HMAC secret, a PEM public key, a JWKS URL."""
    _require_admin(actor=actor, team=consumer.team)
    errors: dict[str, list[str]] = {}
    if algorithm not in Algorithm.values:
        raise _invalid({"algorithm": [f"Choose one of {', '.join(Algorithm.values)} (alg none is never allowed)."]})
    # A secret keeps its exact bytes (spaces included); only the other fields are trimmed.
    if secret is None:
        secret = ""
    if not isinstance(secret, str):
        errors["secret"] = ["Give the secret as text."]
        secret = ""
    elif len(secret) > 4096:
        errors["secret"] = ["Use at most 4096 characters."]
    public_key = _text(public_key, "public_key", max_length=MAX_PEM_CHARS, errors=errors)
    jwks_url = _text(jwks_url, "jwks_url", max_length=500, errors=errors)
    issuer = _text(issuer, "issuer", max_length=500, errors=errors)
    audience = _text(audience, "audience", max_length=500, errors=errors)
    consumer_claim = _text(consumer_claim, "consumer_claim", max_length=100, errors=errors) or "sub"
    if "consumer_claim" not in errors and not _CLAIM_RE.match(consumer_claim):
        errors["consumer_claim"] = ["Give a claim name such as sub, client_id or azp (letters, digits, _ . : / -)."]
    if errors:
        raise _invalid(errors)

    given = [field for field, value in (("secret", secret), ("public_key", public_key), ("jwks_url", jwks_url))
             if value]
    if algorithm in HMAC_ALGORITHMS:
        for field in given:
            if field != "secret":
                errors[field] = [f"{algorithm} is verified with a shared secret only; leave this empty "
                                 "(a public key here would invite HS/RS key confusion)."]
        if not secret:
            errors["secret"] = [f"{algorithm} needs the shared secret the tokens are signed with."]
        elif len(secret.encode()) < HMAC_SECRET_MIN_BYTES:
            errors["secret"] = [f"Use a secret of at least {HMAC_SECRET_MIN_BYTES} bytes; a shorter one can be "
                                "guessed offline from a single token."]
    else:
        if secret:
            errors["secret"] = [f"{algorithm} is verified with a public key or a JWKS URL, not a shared secret."]
        if public_key and jwks_url:
            errors["non_field"] = ["Give either a public key or a JWKS URL, not both."]
        elif not public_key and not jwks_url:
            errors["public_key"] = [f"{algorithm} needs a PEM public key or a JWKS URL."]
        elif public_key:
            problem = _check_public_key(algorithm, public_key)
            if problem:
                errors["public_key"] = [problem]
        else:
            try:
                URLValidator(schemes=["http", "https"])(jwks_url)
            except ValidationError:
                errors["jwks_url"] = ["Give an http:// or https:// URL of the JWKS document."]
    if errors:
        raise _invalid(errors)
    credential = JwtCredential.objects.create(
        consumer=consumer, algorithm=algorithm, secret=secret, public_key=public_key, jwks_url=jwks_url,
        issuer=issuer, audience=audience, consumer_claim=consumer_claim, created_by=_actor_or_none(actor))
    audit(actor=actor, team=consumer.team, action="jwt_credential.create", obj=credential, detail={
        "consumer": consumer.name, "algorithm": algorithm,
        "key": "secret" if secret else "public_key" if public_key else "jwks_url",
        "jwks_url": jwks_url, "issuer": issuer, "audience": audience, "consumer_claim": consumer_claim})
    config_changed()
    return credential


@transaction.atomic
def jwt_credential_delete(*, actor, credential: JwtCredential) -> None:
    consumer = credential.consumer
    _require_admin(actor=actor, team=consumer.team)
    audit(actor=actor, team=consumer.team, action="jwt_credential.delete", obj=credential,
          detail={"consumer": consumer.name, "algorithm": credential.algorithm})
    credential.delete()
    config_changed()


# ---------------------------------------------------------------- a server's Consumer Authentication

@transaction.atomic
def mcp_server_set_consumer_auth(*, actor, mcp_server: McpServer, enabled: bool, method: str,
                                 source: str = "bearer", name: str = "") -> McpServer:
    """Who may call the server's endpoint and where the gateway reads the credential; enabling it with no consumer
    authorized is allowed (the endpoint then refuses everyone, and the page says so)."""
    server = mcp_server
    team = server.instance.team
    _require_admin(actor=actor, team=team)
    errors: dict[str, list[str]] = {}
    if not isinstance(enabled, bool):
        errors["enabled"] = ["Give true or false."]
    if method not in ConsumerAuthMethod.values:
        errors["method"] = ["Choose api_key, jwt or oauth."]
    source = source or CredentialSource.BEARER
    if method == ConsumerAuthMethod.OAUTH and source != CredentialSource.BEARER:
        # OAuth 2.1 §5.2 / MCP authorization: access tokens travel only in the Authorization header.
        errors["source"] = ["OAuth sign-in reads tokens (and API keys) from Authorization: Bearer only."]
    if source not in CredentialSource.values:
        errors["source"] = ["Choose bearer (Authorization: Bearer), header or query."]
    if name is None:
        name = ""
    if not isinstance(name, str):
        errors["name"] = ["Give the name as text."]
        name = ""
    name = name.strip()
    if source == CredentialSource.HEADER:
        if not name:
            errors["name"] = ["Give the header name, e.g. X-API-Key."]
        elif not _HEADER_NAME_RE.match(name):
            errors["name"] = ["Use a header name of letters, digits and - _ . (no spaces or colons), e.g. X-API-Key."]
        elif name.lower() in RESERVED_HEADERS:
            errors["name"] = [f"{name} is read by the MCP transport itself; choose another header, e.g. X-API-Key."]
    elif source == CredentialSource.QUERY:
        if not name:
            errors["name"] = ["Give the query parameter name, e.g. api_key."]
        elif not _QUERY_NAME_RE.match(name):
            errors["name"] = ["Use a query parameter name of letters, digits and - _ . ~ only, e.g. api_key."]
    else:
        name = ""  # Authorization: Bearer needs no name
    if errors:
        raise _invalid(errors)
    before = (server.consumer_auth_enabled, server.consumer_auth_method, server.consumer_auth_source,
              server.consumer_auth_name)
    server.consumer_auth_enabled, server.consumer_auth_method = enabled, method
    server.consumer_auth_source, server.consumer_auth_name = source, name
    if before == (enabled, method, source, name):
        return server
    server.save(update_fields=["consumer_auth_enabled", "consumer_auth_method", "consumer_auth_source",
                               "consumer_auth_name", "updated_at"])
    audit(actor=actor, team=team, action="mcp_server.consumer_auth", obj=server, detail={
        "enabled": enabled, "method": method, "source": source, "name": name,
        "authorized_consumers": server.authorizations.count()})
    config_changed()
    return server


# ---------------------------------------------------------------- authorizations

def _clean_tools(server: McpServer, tools) -> list[str] | None:
    if tools is None:
        return None
    if not isinstance(tools, (list, tuple)) or not all(isinstance(t, str) for t in tools):
        raise _invalid({"tools": ["Give a list of tool names, or null for all tools."]})
    if len(tools) > 1000:
        raise _invalid({"tools": ["Give at most 1000 tool names."]})
    wanted = list(dict.fromkeys(t.strip() for t in tools))
    if not wanted:
        raise _invalid({"tools": ["Choose at least one tool, or all tools (null)."]})
    if server.server_type == McpServer.Type.HTTP_TO_MCP:
        known = set(server.tools.values_list("name", flat=True))
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise _invalid({"tools": [f"Server {server.name} has no tool named {', '.join(unknown[:10])}."]})
    else:
        # A Direct Proxy server's tools come from its backend, so only their form can be checked here.
        bad = [t for t in wanted if not _TOOL_NAME_RE.match(t)]
        if bad:
            raise _invalid({"tools": [f"Not a tool name: {', '.join(b[:60] for b in bad[:5])}."]})
    return sorted(wanted)


@transaction.atomic
def consumer_authorize(*, actor, mcp_server: McpServer, consumer: Consumer,
                       tools: list[str] | None = None) -> ConsumerAuthorization:
    """Allow `consumer` to call `mcp_server` (all its tools, or those named); authorizing again updates the set."""
    team = mcp_server.instance.team
    _require_admin(actor=actor, team=team)
    if consumer.team_id != team.pk:
        # Another team's consumer is not there for this server, whatever its id.
        raise DomainError("No such consumer.", code="not_found")
    tools = _clean_tools(mcp_server, tools)
    authorization = (ConsumerAuthorization.objects.select_for_update()
                     .filter(mcp_server=mcp_server, consumer=consumer).first())
    if authorization is None:
        authorization = ConsumerAuthorization.objects.create(mcp_server=mcp_server, consumer=consumer, tools=tools)
        action, detail = "consumer_authorization.add", {"tools": tools}
    else:
        if authorization.tools == tools:
            return authorization
        action, detail = "consumer_authorization.update", {"from": authorization.tools, "to": tools}
        authorization.tools = tools
        authorization.save(update_fields=["tools"])
    audit(actor=actor, team=team, action=action, obj=authorization,
          detail={"mcp_server": mcp_server.name, "consumer": consumer.name, **detail})
    config_changed()
    return authorization


@transaction.atomic
def consumer_authorization_revoke(*, actor, mcp_server: McpServer, consumer: Consumer) -> None:
    team = mcp_server.instance.team
    _require_admin(actor=actor, team=team)
    authorization = ConsumerAuthorization.objects.filter(mcp_server=mcp_server, consumer=consumer).first()
    if authorization is None:
        raise DomainError("This consumer is not authorized on this server.", code="not_found")
    audit(actor=actor, team=team, action="consumer_authorization.revoke", obj=authorization,
          detail={"mcp_server": mcp_server.name, "consumer": consumer.name})
    authorization.delete()
    config_changed()


# ---------------------------------------------------------------- the Debug tab's credential

def _hmac_jwt(credential: JwtCredential, consumer: Consumer, expires_at: datetime) -> str:
    now = timezone.now()
    claims: dict[str, object] = {credential.consumer_claim: consumer.name, "iat": now, "nbf": now,
                                 "exp": expires_at}
    if credential.issuer:
        claims["iss"] = credential.issuer
    if credential.audience:
        claims["aud"] = credential.audience
    return jwt.encode(claims, credential.secret, algorithm=credential.algorithm)


@transaction.atomic
def consumer_debug_credential_issue(*, actor, mcp_server: McpServer, consumer: Consumer) -> tuple[str, datetime]:
    """A short-lived credential for the Debug tab to call `mcp_server` as `consumer`: an API key named
    "console debug", or for JWT authentication a token signed with the consumer's HMAC secret. Audited."""
    team = mcp_server.instance.team
    _require_admin(actor=actor, team=team)
    if consumer.team_id != team.pk:
        raise DomainError("No such consumer.", code="not_found")
    expires_at = timezone.now() + DEBUG_CREDENTIAL_LIFETIME
    if mcp_server.consumer_auth_method == ConsumerAuthMethod.JWT:
        credential = next((c for c in consumer.jwt_credentials.all() if c.algorithm in HMAC_ALGORITHMS and c.secret),
                          None)
        if credential is None:
            raise _invalid({"consumer": [
                f"{consumer.name} has no HMAC (HS*) JWT credential, so the console cannot sign a token for it: "
                "paste a token instead."]})
        audit(actor=actor, team=team, action="jwt_credential.debug_token", obj=credential, detail={
            "consumer": consumer.name, "mcp_server": mcp_server.name, "expires_at": expires_at.isoformat()})
        return _hmac_jwt(credential, consumer, expires_at), expires_at
    _, secret = consumer_api_key_issue(actor=actor, consumer=consumer, name=DEBUG_KEY_NAME, expires_at=expires_at)
    return secret, expires_at
