"""A Direct Proxy server's Tools tab and REST catalogue: what its real backend MCP server lists, allow-list applied."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from console import services
from tests.gateway.mcp_backends import sse_backend, streamable_backend

from .test_views import make_user, signed_in, text_of

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def backends():
    started = {"streamable_http": streamable_backend("catalogued"), "sse": sse_backend("catalogued")}
    yield started
    for backend in started.values():
        backend.stop()


def proxy_of(user, team, backend, transport: str, **extra):
    instance = services.instance_create(actor=user, team=team, name=f"cat-{transport.replace('_', '-')}")
    service = services.service_create(actor=user, instance=instance, name="upstream", base_url=backend.url,
                                      protocol="mcp")
    return services.mcp_server_create(actor=user, instance=instance, name="weather", server_type="direct_proxy",
                                      backend_service=service, backend_transport=transport,
                                      backend_path=backend.path, **extra)


@pytest.mark.parametrize("transport", ["streamable_http", "sse"])
def test_tools_tab_lists_the_backend_with_the_allow_list(backends, transport):
    cache.clear()
    user, team = make_user("carol")
    server = proxy_of(user, team, backends[transport], transport, allow_tools=["echo", "add"])
    page = text_of(signed_in(user).get(reverse("tool_list", args=[server.pk])))
    assert "Tools, resources, prompts" in page
    assert "catalogued" in page  # the backend's own name
    assert "2 of " in page and " published" in page
    for name in ("echo", "add", "slow", "sample", "weather://today", "weather://city/{city}", "forecast"):
        assert name in page
    assert page.count("Hidden") == page.count('badge-off dot">Hidden') >= 5


def test_rest_catalogue_refreshes_on_demand_and_reports_an_unreachable_backend(backends):
    cache.clear()
    user, team = make_user("dave")
    server = proxy_of(user, team, backends["streamable_http"], "streamable_http")
    api = APIClient()
    api.force_authenticate(user)
    first = api.get(f"/api/v1/mcp-servers/{server.pk}/backend-catalog").json()
    assert first["error"] == ""
    assert {t["name"] for t in first["tools"]} >= {"echo", "add", "slow"}
    assert all(t["published"] for t in first["tools"])
    assert first["prompts"][0]["arguments"] == ["city"]
    assert first["resource_templates"][0]["uri_template"] == "weather://city/{city}"
    again = api.get(f"/api/v1/mcp-servers/{server.pk}/backend-catalog").json()
    assert again["fetched_at"] == first["fetched_at"]  # from the cache
    fresh = api.get(f"/api/v1/mcp-servers/{server.pk}/backend-catalog?refresh=true").json()
    assert fresh["fetched_at"] != first["fetched_at"]

    down = services.service_create(actor=user, instance=server.instance, name="down", base_url="http://127.0.0.1:9",
                                   protocol="mcp")
    services.mcp_server_update(actor=user, mcp_server=server, backend_service=down)
    failed = api.get(f"/api/v1/mcp-servers/{server.pk}/backend-catalog").json()
    assert failed["tools"] == []
    assert "http://127.0.0.1:9/test/mcp refused the connection" in failed["error"]
    page = text_of(signed_in(user).get(reverse("tool_list", args=[server.pk])))
    assert "The backend could not be listed" in page


def test_another_teams_catalogue_is_a_404(backends):
    user, team = make_user("erin")
    server = proxy_of(user, team, backends["streamable_http"], "streamable_http")
    other, _ = make_user("frank")
    api = APIClient()
    api.force_authenticate(other)
    assert api.get(f"/api/v1/mcp-servers/{server.pk}/backend-catalog").status_code == 404
    assert signed_in(other).get(reverse("tool_list", args=[server.pk])).status_code == 404


def test_published_tools_are_set_in_the_server_form(backends):
    user, team = make_user("gina")
    server = proxy_of(user, team, backends["streamable_http"], "streamable_http")
    client = signed_in(user)
    url = reverse("mcp_server_edit", args=[server.pk])
    form = text_of(client.get(url))
    assert "Published tools" in form
    fields = {"name": "weather", "description": "", "domains": "", "backend_service": server.backend_service_id,
              "backend_transport": "streamable_http", "backend_path": "/test/mcp", "timeout_seconds": 30}
    bad = client.post(url, {**fields, "allow_tools": "echo, not a tool!"})
    assert bad.status_code == 400
    assert "is not a tool name" in text_of(bad)
    assert client.post(url, {**fields, "allow_tools": "echo\nadd, echo"}).status_code == 302
    server.refresh_from_db()
    assert server.allow_tools == ["add", "echo"]
    assert "echo\nadd" in text_of(client.get(url)) or "add\necho" in text_of(client.get(url))
    assert client.post(url, {**fields, "allow_tools": ""}).status_code == 302
    server.refresh_from_db()
    assert server.allow_tools is None
