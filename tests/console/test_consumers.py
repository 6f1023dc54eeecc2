"""Consumers, their API keys and JWT credentials, authorizations and Consumer Authentication: the services' rules,
and the pages a person uses for them (the Consumers page, a consumer's page, a server's tab, Debug, client configs)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console import services
from console.errors import DomainError
from console.models import AuditEvent, Consumer, ConsumerApiKey, ConsumerAuthorization, JwtCredential
from gateway.consumer_jwt import verify_consumer_jwt
from gateway.readmodel import JwtCredentialConfig

from .consumer_data import TOOLS_YAML

pytestmark = pytest.mark.django_db

def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def keys():
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "p256": ec.generate_private_key(ec.SECP256R1()), "p384": ec.generate_private_key(ec.SECP384R1()),
            "ed25519": ed25519.Ed25519PrivateKey.generate()}


class World:
    def __init__(self):
        User = get_user_model()
        self.users = {role: User.objects.create_user(f"u-{role}") for role in ("owner", "admin", "member", "viewer")}
        self.owner = self.users["owner"]
        self.team = services.team_create(name="Pets", owner=self.owner)
        for role in ("admin", "member", "viewer"):
            services.team_member_add(team=self.team, user=self.users[role], role=role)
        self.instance = services.instance_create(actor=self.owner, team=self.team, name="pets")
        service = services.service_create(actor=self.owner, instance=self.instance, name="api",
                                          base_url="http://127.0.0.1:9")
        self.server = services.mcp_server_create(actor=self.owner, instance=self.instance, name="petstore",
                                                 backend_service=service)
        services.tools_apply_yaml(actor=self.owner, mcp_server=self.server, text=TOOLS_YAML)
        self.stranger = User.objects.create_user("stranger")
        self.other_team = services.team_create(name="Others", owner=self.stranger)

    def client(self, role: str = "owner") -> Client:
        client = Client()
        client.force_login(self.users[role])
        return client


@pytest.fixture
def w():
    return World()


def errors_of(exc: pytest.ExceptionInfo) -> dict:
    return exc.value.details


# ---------------------------------------------------------------- services

def test_consumers_are_slugs_unique_per_team_and_admins_manage_them(w):
    consumer = services.consumer_create(actor=w.users["admin"], team=w.team, name="billing-agent",
                                        description="Bills")
    assert (consumer.name, consumer.enabled) == ("billing-agent", True)
    # The same name in another team is another consumer.
    services.consumer_create(actor=w.stranger, team=w.other_team, name="billing-agent")
    with pytest.raises(DomainError) as exc:
        services.consumer_create(actor=w.owner, team=w.team, name="billing-agent")
    assert "already" in errors_of(exc)["name"][0]
    for bad in ("", "Billing Agent", "-x", "a" * 64, None, 7):
        with pytest.raises(DomainError) as exc:
            services.consumer_create(actor=w.owner, team=w.team, name=bad)
        assert "name" in errors_of(exc)
    for role in ("member", "viewer"):
        with pytest.raises(DomainError) as exc:
            services.consumer_create(actor=w.users[role], team=w.team, name="nope")
        assert exc.value.code == "permission_denied" and "admin role" in exc.value.message
    with pytest.raises(DomainError) as exc:
        services.consumer_create(actor=w.stranger, team=w.team, name="nope")
    assert exc.value.code == "not_found"
    services.consumer_update(actor=w.owner, consumer=consumer, name="billing", enabled=False)
    consumer.refresh_from_db()
    assert (consumer.name, consumer.enabled) == ("billing", False)
    assert AuditEvent.objects.filter(action="consumer.update", object_id=str(consumer.pk),
                                     detail__enabled=False).exists()


def test_api_keys_are_shown_once_stored_as_digest_and_revocable(w):
    consumer = services.consumer_create(actor=w.owner, team=w.team, name="agent")
    expires = timezone.now() + timedelta(days=30)
    key, secret = services.consumer_api_key_issue(actor=w.owner, consumer=consumer, name="laptop", expires_at=expires)
    assert secret.startswith("mck_") and len(secret) >= 4 + 43
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert key.hint == "mck_••••" + secret[-4:]
    stored = ConsumerApiKey.objects.filter(pk=key.pk).values().get()
    assert secret not in json.dumps(stored, default=str)
    assert not AuditEvent.objects.filter(detail__icontains=secret[4:]).exists()
    _, second = services.consumer_api_key_issue(actor=w.owner, consumer=consumer)
    assert second != secret
    with pytest.raises(DomainError) as exc:
        services.consumer_api_key_issue(actor=w.owner, consumer=consumer, expires_at=timezone.now() - timedelta(1))
    assert "future" in errors_of(exc)["expires_at"][0]
    with pytest.raises(DomainError) as exc:
        services.consumer_api_key_issue(actor=w.owner, consumer=consumer, name="n" * 101)
    assert "name" in errors_of(exc)
    with pytest.raises(DomainError):
        services.consumer_api_key_issue(actor=w.users["member"], consumer=consumer)
    services.consumer_api_key_revoke(actor=w.owner, api_key=key)
    key.refresh_from_db()
    first = key.revoked_at
    assert first is not None
    services.consumer_api_key_revoke(actor=w.owner, api_key=key)  # twice: nothing changes
    key.refresh_from_db()
    assert key.revoked_at == first
    assert AuditEvent.objects.filter(action="consumer_api_key.revoke", object_id=str(key.pk)).count() == 1


def test_jwt_credentials_fit_their_algorithm(w, keys):
    consumer = services.consumer_create(actor=w.owner, team=w.team, name="agent")

    def refused(**kwargs) -> dict:
        with pytest.raises(DomainError) as exc:
            services.jwt_credential_create(actor=w.owner, consumer=consumer, **kwargs)
        return errors_of(exc)

    hs = services.jwt_credential_create(actor=w.owner, consumer=consumer, algorithm="HS256", secret="s" * 32,
                                        issuer="https://idp.test/", audience="gw")
    assert hs.secret == "s" * 32 and hs.consumer_claim == "sub"
    with connection.cursor() as cursor:  # the column itself, not the decrypting field
        cursor.execute(f"SELECT secret FROM {JwtCredential._meta.db_table} WHERE id = %s", [hs.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:") and "s" * 32 not in raw  # encrypted at rest
    assert "at least 32 bytes" in refused(algorithm="HS256", secret="s" * 31)["secret"][0]
    assert "HS/RS key confusion" in refused(algorithm="HS256", secret="s" * 32,
                                            public_key=public_pem(keys["rsa"]))["public_key"][0]
    assert "not a shared secret" in refused(algorithm="RS256", secret="s" * 40)["secret"][0]
    assert "needs a PEM public key or a JWKS URL" in refused(algorithm="RS256")["public_key"][0]
    assert "not both" in refused(algorithm="RS256", public_key=public_pem(keys["rsa"]),
                                 jwks_url="https://idp.test/jwks")["non_field"][0]
    for alg, key in (("RS256", "rsa"), ("PS512", "rsa"), ("ES256", "p256"), ("ES384", "p384"), ("EdDSA", "ed25519")):
        made = services.jwt_credential_create(actor=w.owner, consumer=consumer, algorithm=alg,
                                              public_key=public_pem(keys[key]))
        assert made.public_key.startswith("-----BEGIN PUBLIC KEY-----")
    assert "needs an RSA public key; this is an EC key on P-256" in refused(
        algorithm="RS256", public_key=public_pem(keys["p256"]))["public_key"][0]
    assert "ES256 needs an EC key on P-256; this key is on P-384" in refused(
        algorithm="ES256", public_key=public_pem(keys["p384"]))["public_key"][0]
    assert "EdDSA needs an Ed25519 or Ed448" in refused(
        algorithm="EdDSA", public_key=public_pem(keys["rsa"]))["public_key"][0]
    before = JwtCredential.objects.count()
    message = refused(algorithm="RS256", public_key=private_pem(keys["rsa"]))["public_key"][0]
    assert "private key" in message and "nothing was stored" in message
    assert JwtCredential.objects.count() == before
    assert not JwtCredential.objects.filter(public_key__contains="PRIVATE").exists()
    assert "not a PEM public key" in refused(algorithm="RS256", public_key="hello")["public_key"][0]
    assert "http" in refused(algorithm="RS256", jwks_url="ftp://idp.test/jwks")["jwks_url"][0]
    assert "http" in refused(algorithm="ES256", jwks_url="file:///etc/passwd")["jwks_url"][0]
    assert "algorithm" in refused(algorithm="none", secret="s" * 40)
    assert "consumer_claim" in refused(algorithm="HS256", secret="s" * 32, consumer_claim="has space")
    ok = services.jwt_credential_create(actor=w.owner, consumer=consumer, algorithm="RS256",
                                        jwks_url="https://idp.test/.well-known/jwks.json", consumer_claim="client_id")
    assert ok.consumer_claim == "client_id"


def test_consumer_auth_settings(w):
    s = w.server
    assert (s.consumer_auth_enabled, s.consumer_auth_method, s.consumer_auth_source) == (False, "api_key", "bearer")
    services.mcp_server_set_consumer_auth(actor=w.owner, mcp_server=s, enabled=True, method="api_key",
                                          source="bearer", name="ignored")
    s.refresh_from_db()
    assert (s.consumer_auth_enabled, s.consumer_auth_source, s.consumer_auth_name) == (True, "bearer", "")
    services.mcp_server_set_consumer_auth(actor=w.owner, mcp_server=s, enabled=True, method="jwt", source="query",
                                          name="api_key")
    s.refresh_from_db()
    assert (s.consumer_auth_method, s.consumer_auth_source, s.consumer_auth_name) == ("jwt", "query", "api_key")

    def refused(**kwargs) -> dict:
        with pytest.raises(DomainError) as exc:
            services.mcp_server_set_consumer_auth(actor=w.owner, mcp_server=s, **{"enabled": True, **kwargs})
        return errors_of(exc)

    assert "header name" in refused(method="api_key", source="header")["name"][0]
    assert "no spaces" in refused(method="api_key", source="header", name="X API Key")["name"][0]
    assert "MCP transport" in refused(method="api_key", source="header", name="Mcp-Session-Id")["name"][0]
    assert "query parameter" in refused(method="api_key", source="query", name="")["name"][0]
    assert "method" in refused(method="basic")
    assert "source" in refused(method="api_key", source="cookie")
    with pytest.raises(DomainError) as exc:
        services.mcp_server_set_consumer_auth(actor=w.users["member"], mcp_server=s, enabled=False, method="api_key")
    assert exc.value.code == "permission_denied"


def test_authorizations_same_team_known_tools_and_delete_cascade(w):
    consumer = services.consumer_create(actor=w.owner, team=w.team, name="agent")
    authorization = services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=consumer)
    assert authorization.tools is None
    again = services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=consumer,
                                        tools=["listPets", "listPets"])
    assert again.pk == authorization.pk and again.tools == ["listPets"]
    with pytest.raises(DomainError) as exc:
        services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=consumer, tools=["deletePet"])
    assert "no tool named deletePet" in errors_of(exc)["tools"][0]
    for bad in ("listPets", [1], []):
        with pytest.raises(DomainError) as exc:
            services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=consumer, tools=bad)
        assert "tools" in errors_of(exc)
    foreign = services.consumer_create(actor=w.stranger, team=w.other_team, name="agent")
    with pytest.raises(DomainError) as exc:
        services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=foreign)
    assert exc.value.code == "not_found"
    services.consumer_api_key_issue(actor=w.owner, consumer=consumer)
    services.jwt_credential_create(actor=w.owner, consumer=consumer, algorithm="HS256", secret="s" * 32)
    pk = consumer.pk
    services.consumer_delete(actor=w.owner, consumer=consumer)
    assert not ConsumerApiKey.objects.filter(consumer_id=pk).exists()
    assert not JwtCredential.objects.filter(consumer_id=pk).exists()
    assert not ConsumerAuthorization.objects.filter(consumer_id=pk).exists()
    event = AuditEvent.objects.get(action="consumer.delete", object_id=str(pk))
    assert event.detail["authorizations"] == ["petstore"] and event.detail["api_keys"] == 1


def test_debug_credential_is_a_short_lived_key_or_a_signed_token(w):
    consumer = services.consumer_create(actor=w.owner, team=w.team, name="agent")
    secret, expires = services.consumer_debug_credential_issue(actor=w.owner, mcp_server=w.server, consumer=consumer)
    key = ConsumerApiKey.objects.get(digest=ConsumerApiKey.digest_of(secret))
    assert key.name == "console debug" and timedelta(minutes=59) < key.expires_at - timezone.now() <= timedelta(hours=1)
    services.mcp_server_set_consumer_auth(actor=w.owner, mcp_server=w.server, enabled=True, method="jwt")
    with pytest.raises(DomainError) as exc:
        services.consumer_debug_credential_issue(actor=w.owner, mcp_server=w.server, consumer=consumer)
    assert "paste a token" in errors_of(exc)["consumer"][0]
    credential = services.jwt_credential_create(actor=w.owner, consumer=consumer, algorithm="HS384",
                                                secret="q" * 48, issuer="https://idp.test/", audience="gw")
    token, _ = services.consumer_debug_credential_issue(actor=w.owner, mcp_server=w.server, consumer=consumer)
    head, body, signature = token.split(".")

    def unb64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(unb64(head)) == {"alg": "HS384", "typ": "JWT"}
    claims = json.loads(unb64(body))
    assert (claims["sub"], claims["iss"], claims["aud"]) == ("agent", "https://idp.test/", "gw")
    assert 3500 < claims["exp"] - claims["iat"] <= 3600
    expected = hmac.new(b"q" * 48, f"{head}.{body}".encode(), hashlib.sha384).digest()
    assert unb64(signature) == expected
    # The gateway's own verifier accepts it as this consumer's.
    config = JwtCredentialConfig(id=credential.pk, consumer_id=consumer.pk, consumer_name="agent", algorithm="HS384",
                                 secret="q" * 48, issuer="https://idp.test/", audience="gw")
    assert asyncio.run(verify_consumer_jwt(token, (config,), cache_key=object())) == config
    assert AuditEvent.objects.filter(action="jwt_credential.debug_token", detail__consumer="agent").exists()
    with pytest.raises(DomainError) as exc:
        services.consumer_debug_credential_issue(actor=w.users["member"], mcp_server=w.server, consumer=consumer)
    assert exc.value.code == "permission_denied"


# ---------------------------------------------------------------- pages

def test_consumer_pages_for_an_admin(w):
    client = w.client("admin")
    page = client.get(reverse("consumer_list", args=[w.instance.pk])).content.decode()
    assert "No consumers yet." in page and reverse("consumer_add", args=[w.instance.pk]) in page
    made = client.post(reverse("consumer_add", args=[w.instance.pk]), {"name": "Bad Name"})
    assert made.status_code == 400 and "lowercase" in made.content.decode()
    made = client.post(reverse("consumer_add", args=[w.instance.pk]), {"name": "laptop", "enabled": "on"})
    consumer = Consumer.objects.get(team=w.team, name="laptop")
    assert made.status_code == 302 and made["Location"] == reverse("consumer", args=[w.instance.pk, consumer.pk])

    issued = client.post(reverse("consumer_api_key_add", args=[w.instance.pk, consumer.pk]), {"name": "mine"})
    assert issued.status_code == 201
    secret = re.search(r'<code id="new-api-key">(mck_[A-Za-z0-9_-]+)</code>', issued.content.decode()).group(1)
    assert "not shown again" in issued.content.decode() and 'data-copy="new-api-key"' in issued.content.decode()
    detail = client.get(reverse("consumer", args=[w.instance.pk, consumer.pk])).content.decode()
    assert secret not in detail and f"mck_••••{secret[-4:]}" in detail and "active" in detail
    key = consumer.api_keys.get()
    # The browser's date-time picker sends local ISO without seconds; the label says UTC.
    later = client.post(reverse("consumer_api_key_add", args=[w.instance.pk, consumer.pk]),
                        {"name": "expiring", "expires_at": "2099-01-31T10:30"})
    assert later.status_code == 201
    assert consumer.api_keys.get(name="expiring").expires_at.isoformat() == "2099-01-31T10:30:00+00:00"
    past = client.post(reverse("consumer_api_key_add", args=[w.instance.pk, consumer.pk]),
                       {"name": "past", "expires_at": "2001-01-31T10:30"})
    assert past.status_code == 400 and "Choose a time in the future" in past.content.decode()
    client.post(reverse("consumer_api_key_delete", args=[w.instance.pk, consumer.pk, key.pk]))
    detail = client.get(reverse("consumer", args=[w.instance.pk, consumer.pk])).content.decode()
    assert re.search(r'data-key="mck_••••%s">(?:(?!</tr>).)*>revoked<' % re.escape(secret[-4:]), detail, re.S)

    bad = client.post(reverse("jwt_credential_add", args=[w.instance.pk, consumer.pk]),
                      {"algorithm": "HS256", "secret": "short", "consumer_claim": "sub"})
    assert bad.status_code == 400 and "at least 32 bytes" in bad.content.decode()
    client.post(reverse("jwt_credential_add", args=[w.instance.pk, consumer.pk]),
                {"algorithm": "HS256", "secret": "z" * 40, "consumer_claim": "sub"})
    detail = client.get(reverse("consumer", args=[w.instance.pk, consumer.pk])).content.decode()
    assert "z" * 40 not in detail and "••••••••zzzz" in detail

    gone = client.post(reverse("consumer_delete", args=[w.instance.pk, consumer.pk]))
    assert gone.status_code == 302 and not Consumer.objects.filter(pk=consumer.pk).exists()


def test_another_teams_consumer_is_not_there(w):
    foreign = services.consumer_create(actor=w.stranger, team=w.other_team, name="theirs")
    client = w.client("owner")
    assert client.get(reverse("consumer", args=[w.instance.pk, foreign.pk])).status_code == 404
    other_instance = services.instance_create(actor=w.stranger, team=w.other_team, name="theirs")
    assert client.get(reverse("consumer", args=[other_instance.pk, foreign.pk])).status_code == 404
    mine = services.consumer_create(actor=w.owner, team=w.team, name="mine")
    answer = client.post(reverse("authorization_add", args=[w.server.pk]), {"consumer": str(foreign.pk),
                                                                            "all_tools": "on"})
    assert answer.status_code == 400 and not ConsumerAuthorization.objects.filter(consumer=foreign).exists()
    assert client.post(reverse("mcp_server_debug_credential", args=[w.server.pk]),
                       {"consumer": foreign.pk}).status_code == 404
    assert mine.pk


def test_consumer_auth_tab_authorize_in_place_and_client_configs(w):
    client = w.client("owner")
    tab = reverse("mcp_server_consumer_auth", args=[w.server.pk])
    page = client.get(tab).content.decode()
    assert "Consumer Authentication" in page and "Enable Status" in page and "Authorization: Bearer" in page
    saved = client.post(reverse("mcp_server_consumer_auth_edit", args=[w.server.pk]),
                        {"enabled": "on", "method": "api_key", "source": "header", "name": ""})
    assert saved.status_code == 400 and "Give the header name" in saved.content.decode()
    client.post(reverse("mcp_server_consumer_auth_edit", args=[w.server.pk]),
                {"enabled": "on", "method": "api_key", "source": "bearer"})
    page = client.get(tab).content.decode()
    assert "no consumer is authorized" in page  # on, with nobody allowed in: the page warns

    panel = client.get(reverse("authorization_add", args=[w.server.pk])).content.decode()
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', panel)
    assert options[-1] == ("new", "Create Consumer")
    made = client.post(reverse("authorization_add", args=[w.server.pk]),
                       {"consumer": "new", "new_name": "cursor-laptop", "tools": ["getPet"]})
    assert made.status_code == 302, made.content.decode()[:2000]
    consumer = Consumer.objects.get(team=w.team, name="cursor-laptop")
    assert ConsumerAuthorization.objects.get(mcp_server=w.server, consumer=consumer).tools == ["getPet"]
    # A bad name creates nothing at all, not a consumer without its authorization.
    bad = client.post(reverse("authorization_add", args=[w.server.pk]),
                      {"consumer": "new", "new_name": "Not A Slug", "all_tools": "on"})
    assert bad.status_code == 400 and "lowercase" in bad.content.decode()
    assert Consumer.objects.filter(team=w.team).count() == 1
    page = client.get(tab).content.decode()
    assert "cursor-laptop" in page and "getPet" in page and "no consumer is authorized" not in page
    client.post(reverse("authorization_edit", args=[w.server.pk, consumer.pk]),
                {"consumer": consumer.pk, "all_tools": "on"})
    assert ConsumerAuthorization.objects.get(mcp_server=w.server, consumer=consumer).tools is None

    configs = client.get(reverse("mcp_server", args=[w.server.pk])).content.decode()
    cursor = json.loads(re.search(r'<pre id="cfg-cursor">(.*?)</pre>', configs, re.S).group(1)
                        .replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">"))
    assert cursor["mcpServers"]["petstore"]["headers"] == {"Authorization": "Bearer <YOUR_API_KEY>"}
    assert '--header &quot;Authorization: Bearer &lt;YOUR_API_KEY&gt;&quot;' in configs
    client.post(reverse("mcp_server_consumer_auth_edit", args=[w.server.pk]),
                {"enabled": "on", "method": "api_key", "source": "query", "name": "api_key"})
    configs = client.get(reverse("mcp_server", args=[w.server.pk])).content.decode()
    assert "/mcp-servers/petstore?api_key=&lt;YOUR_API_KEY&gt;" in configs

    client.post(reverse("authorization_delete", args=[w.server.pk, consumer.pk]))
    assert not ConsumerAuthorization.objects.filter(consumer=consumer).exists()


def test_viewers_and_members_read_without_write_buttons(w):
    consumer = services.consumer_create(actor=w.owner, team=w.team, name="agent")
    services.consumer_authorize(actor=w.owner, mcp_server=w.server, consumer=consumer)
    services.mcp_server_set_consumer_auth(actor=w.owner, mcp_server=w.server, enabled=True, method="api_key")
    for role in ("member", "viewer"):
        client = w.client(role)
        page = client.get(reverse("consumer", args=[w.instance.pk, consumer.pk])).content.decode()
        assert "agent" in page and "Issue API key" not in page and "Delete" not in page
        tab = client.get(reverse("mcp_server_consumer_auth", args=[w.server.pk])).content.decode()
        assert "agent" in tab and 'id="consumer-auth-form"' not in tab
        for name, args in (("authorization_add", [w.server.pk]), ("authorization_delete", [w.server.pk, consumer.pk]),
                           ("mcp_server_consumer_auth_edit", [w.server.pk])):
            assert reverse(name, args=args) not in tab
        debug = client.get(reverse("mcp_server_debug", args=[w.server.pk])).content.decode()
        assert "Or paste a key" in debug and "debug-use-consumer" not in debug
        assert client.post(reverse("mcp_server_debug_credential", args=[w.server.pk]),
                           {"consumer": consumer.pk}).status_code == 403


def test_debug_tab_issues_a_key_for_the_chosen_consumer(w):
    consumer = services.consumer_create(actor=w.owner, team=w.team, name="agent")
    services.mcp_server_set_consumer_auth(actor=w.owner, mcp_server=w.server, enabled=True, method="api_key",
                                          source="header", name="X-API-Key")
    client = w.client("admin")
    debug = client.get(reverse("mcp_server_debug", args=[w.server.pk])).content.decode()
    assert 'data-auth-source="header"' in debug and 'data-auth-name="X-API-Key"' in debug
    assert '<option value="%d">agent</option>' % consumer.pk in debug
    answer = client.post(reverse("mcp_server_debug_credential", args=[w.server.pk]), {"consumer": consumer.pk})
    body = answer.json()
    assert answer.status_code == 200 and body["consumer"] == "agent" and body["credential"].startswith("mck_")
    assert 3500 < body["expires_in"] <= 3600
    key = ConsumerApiKey.objects.get(digest=ConsumerApiKey.digest_of(body["credential"]))
    assert key.name == "console debug" and key.created_by == w.users["admin"]
    assert client.post(reverse("mcp_server_debug_credential", args=[w.server.pk]),
                       {"consumer": "x"}).status_code == 400
