"""Stored secrets are never shown back: the mask rule, the demo server's pages, API and exports, token hints."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from console import services
from console.crypto import MASK, is_masked, mask
from console.demo_seed import seed_demo
from console.models import ApiToken, McpServer, SecurityScheme
from console.toolyaml import MASKED_CREDENTIAL

DEMO_KEY = "demo-key"
LONG_KEY = "sk-live-4f9a1c7e2b0d"  # 20 characters


def test_a_short_secret_shows_nothing_and_a_long_one_only_its_last_four():
    assert mask("") == ""
    assert mask(DEMO_KEY) == "••••••••"
    assert mask("x") == mask("fifteen-chars-x") == "••••••••"
    assert mask("sixteen-chars-xy") == "••••••••s-xy"
    assert mask(LONG_KEY) == "••••••••2b0d"
    for secret in (DEMO_KEY, LONG_KEY, "a" * 100):
        assert is_masked(mask(secret))
        assert not mask(secret).startswith(secret[:1])
    assert MASKED_CREDENTIAL == MASK  # what exports carry is the mask of no secret at all


def _visible_masks(text: str) -> list[str]:
    """Every run of text around a mask bullet, so that a leaked head or tail would show up."""
    return re.findall(r"[^\s\"'<>]*•+[^\s\"'<>.;,]*", text)


@pytest.fixture
def demo():
    seed_demo(admin_password="admin-pass-1", host="127.0.0.1", port=8000)
    admin = get_user_model().objects.get(username="admin")
    server = McpServer.objects.get(name="petstore")
    _, secret = services.api_token_create(user=admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    browser = Client()
    browser.force_login(admin)
    return {"admin": admin, "server": server, "api": api, "browser": browser}


@pytest.mark.django_db
def test_the_demo_key_appears_nowhere_the_console_shows_it(demo):
    server, api, browser = demo["server"], demo["api"], demo["browser"]
    tool = server.tools.order_by("name").first()
    texts = {
        "export": api.get(f"/api/v1/mcp-servers/{server.pk}/tools/yaml").content.decode(),
        "tool export": api.get(f"/api/v1/tools/{tool.pk}/yaml").content.decode(),
        "backend auth api": api.get(f"/api/v1/mcp-servers/{server.pk}/backend-auth").content.decode(),
        "server api": api.get(f"/api/v1/mcp-servers/{server.pk}/").content.decode(),
        "server page": browser.get(reverse("mcp_server", args=[server.pk])).content.decode(),
        "auth page": browser.get(reverse("mcp_server_backend_auth", args=[server.pk])).content.decode(),
        "tool edit page": browser.get(reverse("tool_edit", args=[tool.pk])).content.decode(),
    }
    assert "defaultCredential: ••••••••" in texts["export"]
    assert '"credential":"••••••••"' in texts["backend auth api"].replace(" ", "")
    assert "Stored: <code>••••••••</code>" in texts["auth page"]
    for where, text in texts.items():
        for n in range(6, len(DEMO_KEY) + 1):  # "demo-" alone is in the demo API's URL
            assert DEMO_KEY[:n] not in text, (where, DEMO_KEY[:n])
        assert DEMO_KEY[-4:] not in text.replace("demo-api", ""), where
        assert all(m == MASK for m in _visible_masks(text)), (where, _visible_masks(text))


@pytest.mark.django_db
def test_a_long_key_shows_only_its_last_four(demo):
    server, api = demo["server"], demo["api"]
    url = f"/api/v1/mcp-servers/{server.pk}/backend-auth"
    saved = api.put(url, {"kind": "api_key", "location": "header", "param_name": "X-API-Key",
                          "credential": LONG_KEY}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["credential"] == "••••••••2b0d"
    page = demo["browser"].get(reverse("mcp_server", args=[server.pk])).content.decode()
    assert "••••••••2b0d" in page and LONG_KEY[:-4] not in page and "sk-l" not in page
    export = api.get(f"/api/v1/mcp-servers/{server.pk}/tools/yaml").content.decode()
    assert "2b0d" not in export and LONG_KEY[:4] not in export  # an export shows not even the tail


@pytest.mark.django_db
def test_submitting_the_masked_value_back_keeps_the_stored_secret(demo):
    server, api, browser = demo["server"], demo["api"], demo["browser"]
    url = f"/api/v1/mcp-servers/{server.pk}/backend-auth"
    shown = api.get(url).json()
    again = api.put(url, {"kind": shown["kind"], "location": shown["location"], "param_name": shown["param_name"],
                          "credential": shown["credential"]}, format="json")
    assert again.status_code == 200, again.content
    scheme = SecurityScheme.objects.get(mcp_server=server, scheme_id=server.default_upstream_security["id"])
    assert scheme.default_credential == DEMO_KEY
    posted = browser.post(reverse("mcp_server_backend_auth", args=[server.pk]), {
        "kind": "api_key", "location": "header", "param_name": "X-API-Key", "credential": "••••••••"})
    assert posted.status_code == 302
    scheme.refresh_from_db()
    assert scheme.default_credential == DEMO_KEY
    # The same for an exported file sent back: the server part keeps its credentials.
    server.refresh_from_db()
    upstream_before = server.default_upstream_credential
    export = api.get(f"/api/v1/mcp-servers/{server.pk}/tools/yaml").content.decode()
    applied = api.put(f"/api/v1/mcp-servers/{server.pk}/tools/yaml", export, content_type="application/yaml")
    assert applied.status_code == 200, applied.content
    scheme.refresh_from_db()
    server.refresh_from_db()
    assert scheme.default_credential == DEMO_KEY
    assert server.default_upstream_credential == upstream_before


@pytest.mark.django_db
def test_an_api_token_hint_is_its_prefix_and_last_four():
    user = get_user_model().objects.create_user("tok", password="pw-123456")
    token, secret = services.api_token_create(user=user)
    assert token.hint == "mgc_••••" + secret[-4:]
    assert secret[len(ApiToken.PREFIX):len(ApiToken.PREFIX) + 4] not in token.hint
    assert ApiToken.objects.get(pk=token.pk).hint == token.hint
