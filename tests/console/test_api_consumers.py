"""REST API of consumers, API keys, JWT credentials, a server's Consumer Authentication and authorizations: the
shapes the issue lists, and hostile input answered with a 4xx and a field map."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from console import services
from console.models import AuditEvent, Consumer, ConsumerApiKey, ConsumerAuthorization, JwtCredential

from .consumer_data import TOOLS_YAML

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    _, secret = services.api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def world():
    User = get_user_model()
    users = {name: User.objects.create_user(name) for name in ("olga", "adam", "mia", "zed")}
    team = services.team_create(name="Ops", owner=users["olga"])
    services.team_member_add(team=team, user=users["adam"], role="admin")
    services.team_member_add(team=team, user=users["mia"], role="member")
    other = services.team_create(name="Zed's", owner=users["zed"])
    instance = services.instance_create(actor=None, team=team, name="ops")
    service = services.service_create(actor=None, instance=instance, name="api", base_url="http://127.0.0.1:9")
    server = services.mcp_server_create(actor=None, instance=instance, name="pets", backend_service=service)
    services.tools_apply_yaml(actor=None, mcp_server=server, text=TOOLS_YAML)
    other_instance = services.instance_create(actor=None, team=other, name="zed")
    other_server = services.mcp_server_create(actor=None, instance=other_instance, name="zeds")
    return {"team": team, "other": other, "server": server, "other_server": other_server,
            "api": {name: api_for(user) for name, user in users.items()}, "users": users}


def field_errors(response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    return response.json()["errors"]


def test_consumer_crud_and_shapes(world):
    api = world["api"]
    made = api["adam"].post("/api/v1/consumers/", {"name": "billing-agent", "description": "Bills"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert set(body) == {"id", "team", "name", "description", "enabled", "api_key_count", "jwt_credential_count",
                         "authorization_count", "created_at", "updated_at"}
    assert (body["team"], body["name"], body["enabled"], body["api_key_count"]) == (
        world["team"].pk, "billing-agent", True, 0)
    url = f"/api/v1/consumers/{body['id']}/"
    assert api["mia"].get(url).json()["name"] == "billing-agent"
    assert api["mia"].patch(url, {"enabled": False}, format="json").status_code == 403
    patched = api["olga"].patch(url, {"enabled": False, "description": "Old"}, format="json").json()
    assert (patched["enabled"], patched["description"]) == (False, "Old")
    listed = api["mia"].get("/api/v1/consumers/").json()
    assert [c["name"] for c in listed["results"]] == ["billing-agent"]
    assert api["zed"].get(url).status_code == 404
    assert api["zed"].get("/api/v1/consumers/").json()["results"] == []
    assert api["zed"].delete(url).status_code == 404
    assert api["olga"].delete(url).status_code == 204 and not Consumer.objects.filter(pk=body["id"]).exists()


def test_consumer_hostile_input(world):
    api = world["api"]["olga"]
    assert "name" in field_errors(api.post("/api/v1/consumers/", {"name": "x" * 64}, format="json"))
    assert "name" in field_errors(api.post("/api/v1/consumers/", {"name": "Not A Slug"}, format="json"))
    assert "name" in field_errors(api.post("/api/v1/consumers/", {"name": ["a"]}, format="json"))
    assert "enabled" in field_errors(api.post("/api/v1/consumers/", {"name": "a", "enabled": "maybe"},
                                              format="json"))
    assert "description" in field_errors(api.post("/api/v1/consumers/", {"name": "a", "description": "d" * 2001},
                                                  format="json"))
    # Another team: refused like a team that does not exist.
    answer = api.post("/api/v1/consumers/", {"team": world["other"].pk, "name": "sneaky"}, format="json")
    assert answer.status_code == 404 and not Consumer.objects.filter(name="sneaky").exists()
    services.team_create(name="Second", owner=world["users"]["olga"])
    several = api.post("/api/v1/consumers/", {"name": "which"}, format="json")
    assert several.status_code == 400 and "team" in several.json()["errors"]
    assert api.post("/api/v1/consumers/", "not json", content_type="application/json").status_code == 400


def test_api_keys_the_key_only_in_the_post_answer(world):
    api = world["api"]
    consumer = services.consumer_create(actor=None, team=world["team"], name="agent")
    url = f"/api/v1/consumers/{consumer.pk}/api-keys/"
    assert api["mia"].post(url, {}, format="json").status_code == 403
    made = api["adam"].post(url, {"name": "laptop", "expires_at": "2099-01-01T00:00:00Z"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert set(body) == {"id", "key", "prefix", "expires_at"}
    assert body["key"].startswith("mck_") and body["prefix"] == "mck_"
    assert body["expires_at"].startswith("2099-01-01T00:00:00")
    listed = api["mia"].get(url).json()["results"]
    assert len(listed) == 1 and "key" not in listed[0] and body["key"] not in str(listed)
    row = listed[0]
    assert set(row) == {"id", "consumer", "name", "hint", "status", "created_by", "created_at", "last_used_at",
                        "expires_at", "revoked_at"}
    assert (row["hint"], row["status"], row["created_by"], row["last_used_at"], row["revoked_at"]) == (
        "mck_••••" + body["key"][-4:], "active", "adam", None, None)
    assert "expires_at" in field_errors(api["adam"].post(url, {"expires_at": "2001-01-01T00:00:00Z"},
                                                         format="json"))
    assert "expires_at" in field_errors(api["adam"].post(url, {"expires_at": "tomorrow"}, format="json"))
    assert "name" in field_errors(api["adam"].post(url, {"name": "n" * 101}, format="json"))
    assert api["zed"].get(url).status_code == 404 and api["zed"].post(url, {}, format="json").status_code == 404

    key_url = f"/api/v1/api-keys/{body['id']}/"
    assert api["zed"].delete(key_url).status_code == 404
    assert api["mia"].delete(key_url).status_code == 403
    assert api["adam"].delete(key_url).status_code == 204
    assert api["mia"].get(url).json()["results"][0]["status"] == "revoked"
    assert ConsumerApiKey.objects.get(pk=body["id"]).revoked_at is not None


def test_jwt_credentials_never_return_the_secret(world):
    api = world["api"]["olga"]
    consumer = services.consumer_create(actor=None, team=world["team"], name="agent")
    url = f"/api/v1/consumers/{consumer.pk}/jwt-credentials/"
    secret = "a-shared-secret-that-is-long-enough-1234"
    made = api.post(url, {"algorithm": "HS256", "secret": secret, "issuer": "https://idp.test/",
                          "audience": "gw"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert set(body) == {"id", "consumer", "algorithm", "secret", "public_key", "jwks_url", "issuer", "audience",
                         "consumer_claim", "created_at"}
    assert body["secret"] == "••••••••1234" and body["consumer_claim"] == "sub"
    listed = world["api"]["mia"].get(url).json()["results"]
    assert secret not in str(listed) and listed[0]["secret"] == "••••••••1234"
    assert not AuditEvent.objects.filter(detail__icontains=secret).exists()

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
    refused = api.post(url, {"algorithm": "RS256", "public_key": private}, format="json")
    assert "private key" in field_errors(refused)["public_key"][0]
    assert not JwtCredential.objects.filter(public_key__contains="PRIVATE").exists()
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    mismatch = api.post(url, {"algorithm": "RS256", "public_key": ec_public}, format="json")
    assert "RS256 needs an RSA public key" in field_errors(mismatch)["public_key"][0]
    confusion = api.post(url, {"algorithm": "HS256", "secret": secret, "public_key": ec_public}, format="json")
    assert "public_key" in field_errors(confusion)
    assert "algorithm" in field_errors(api.post(url, {"algorithm": "none", "secret": secret}, format="json"))
    assert "jwks_url" in field_errors(api.post(url, {"algorithm": "ES256", "jwks_url": "x" * 501}, format="json"))
    assert "jwks_url" in field_errors(api.post(url, {"algorithm": "ES256", "jwks_url": "javascript:alert(1)"},
                                               format="json"))
    assert "secret" in field_errors(api.post(url, {"algorithm": "HS512", "secret": 12345}, format="json"))
    made = api.post(url, {"algorithm": "ES256", "public_key": ec_public, "consumer_claim": "client_id"},
                    format="json").json()
    assert (made["public_key"], made["secret"], made["consumer_claim"]) == (ec_public.strip(), "", "client_id")

    cred_url = f"/api/v1/jwt-credentials/{body['id']}/"
    assert world["api"]["zed"].delete(cred_url).status_code == 404
    assert world["api"]["mia"].delete(cred_url).status_code == 403
    assert api.delete(cred_url).status_code == 204 and not JwtCredential.objects.filter(pk=body["id"]).exists()


def test_consumer_auth_get_put(world):
    api = world["api"]
    url = f"/api/v1/mcp-servers/{world['server'].pk}/consumer-auth"
    assert api["mia"].get(url).json() == {"enabled": False, "method": "api_key", "source": "bearer", "name": ""}
    assert api["mia"].put(url, {"enabled": True, "method": "api_key"}, format="json").status_code == 403
    put = api["adam"].put(url, {"enabled": True, "method": "jwt", "source": "header", "name": "X-Token"},
                          format="json")
    assert put.status_code == 200 and put.json() == {"enabled": True, "method": "jwt", "source": "header",
                                                     "name": "X-Token"}
    assert api["mia"].get(url).json()["name"] == "X-Token"
    assert "name" in field_errors(api["adam"].put(url, {"enabled": True, "method": "api_key", "source": "header"},
                                                  format="json"))
    assert "name" in field_errors(api["adam"].put(url, {"enabled": True, "method": "api_key", "source": "query",
                                                        "name": "a b"}, format="json"))
    assert "name" in field_errors(api["adam"].put(url, {"enabled": True, "method": "api_key", "source": "header",
                                                        "name": "X" * 201}, format="json"))
    assert "method" in field_errors(api["adam"].put(url, {"enabled": True, "method": "saml"}, format="json"))
    # OAuth sign-in reads tokens (and API keys) from Authorization: Bearer only
    assert "source" in field_errors(api["adam"].put(url, {"enabled": True, "method": "oauth", "source": "header",
                                                          "name": "X-Token"}, format="json"))
    assert "enabled" in field_errors(api["adam"].put(url, {"method": "api_key"}, format="json"))
    assert "source" in field_errors(api["adam"].put(url, {"enabled": True, "method": "api_key", "source": 3},
                                                    format="json"))
    other = f"/api/v1/mcp-servers/{world['other_server'].pk}/consumer-auth"
    assert api["adam"].get(other).status_code == 404
    assert api["adam"].put(other, {"enabled": True, "method": "api_key"}, format="json").status_code == 404


def test_authorizations(world):
    api = world["api"]
    server = world["server"]
    consumer = services.consumer_create(actor=None, team=world["team"], name="agent")
    url = f"/api/v1/mcp-servers/{server.pk}/authorizations/"
    made = api["adam"].post(url, {"consumer": consumer.pk}, format="json")
    assert made.status_code == 201, made.content
    assert set(made.json()) == {"consumer", "consumer_name", "tools", "created_at"}
    assert (made.json()["consumer"], made.json()["consumer_name"], made.json()["tools"]) == (
        consumer.pk, "agent", None)
    again = api["adam"].post(url, {"consumer": consumer.pk, "tools": ["getPet"]}, format="json")
    assert again.status_code == 200 and again.json()["tools"] == ["getPet"]
    assert [(a["consumer_name"], a["tools"]) for a in api["mia"].get(url).json()["results"]] == [
        ("agent", ["getPet"])]
    unknown = api["adam"].post(url, {"consumer": consumer.pk, "tools": ["dropTables"]}, format="json")
    assert "no tool named dropTables" in field_errors(unknown)["tools"][0]
    assert "tools" in field_errors(api["adam"].post(url, {"consumer": consumer.pk, "tools": "getPet"},
                                                    format="json"))
    assert "tools" in field_errors(api["adam"].post(url, {"consumer": consumer.pk, "tools": [{"a": 1}]},
                                                    format="json"))
    assert "consumer" in field_errors(api["adam"].post(url, {"consumer": "agent"}, format="json"))
    assert api["mia"].post(url, {"consumer": consumer.pk}, format="json").status_code == 403
    # Another team's consumer, or a consumer of the user's other team: not there for this server.
    foreign = services.consumer_create(actor=None, team=world["other"], name="foreign")
    assert api["adam"].post(url, {"consumer": foreign.pk}, format="json").status_code == 404
    second_team = services.team_create(name="Second", owner=world["users"]["olga"])
    elsewhere = services.consumer_create(actor=None, team=second_team, name="elsewhere")
    assert api["olga"].post(url, {"consumer": elsewhere.pk}, format="json").status_code == 404
    assert not ConsumerAuthorization.objects.filter(consumer__in=[foreign, elsewhere]).exists()
    assert api["zed"].get(url).status_code == 404

    one = f"{url}{consumer.pk}/"
    assert api["mia"].delete(one).status_code == 403
    assert api["zed"].delete(one).status_code == 404
    assert api["adam"].delete(one).status_code == 204
    assert api["adam"].delete(one).status_code == 404
    assert not ConsumerAuthorization.objects.filter(consumer=consumer).exists()


def test_the_schema_and_the_reference_page_list_the_operations(world):
    api = world["api"]["mia"]
    schema = api.get("/api/v1/schema/?format=json").json()
    for path in ("/api/v1/consumers/", "/api/v1/consumers/{id}/", "/api/v1/consumers/{id}/api-keys/",
                 "/api/v1/api-keys/{id}/", "/api/v1/consumers/{id}/jwt-credentials/", "/api/v1/jwt-credentials/{id}/",
                 "/api/v1/mcp-servers/{id}/consumer-auth", "/api/v1/mcp-servers/{id}/authorizations/",
                 "/api/v1/mcp-servers/{id}/authorizations/{consumer_id}/"):
        assert path in schema["paths"], path
    from django.test import Client
    client = Client()
    client.force_login(world["users"]["mia"])
    page = client.get("/console/api/").content.decode()
    assert "/api/v1/consumers/{id}/api-keys/" in page and "/api/v1/mcp-servers/{id}/consumer-auth" in page
