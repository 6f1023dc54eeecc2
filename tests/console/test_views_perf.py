"""Big configurations stay fast: 1,000 MCP servers or 2,000 tools, paginated, with a fixed number of queries."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from console import services
from console.models import Instance, McpDomain, McpServer, SecurityScheme, Tool

pytestmark = pytest.mark.django_db

# Session, user, teams, regions, the page's own reads: a constant, whatever the number of rows.
MAX_QUERIES = 12
MAX_SECONDS = 1.0


@pytest.fixture
def big():
    user = get_user_model().objects.create_user("big", password="pw-123456")
    team = services.team_create(name="Big", owner=user)
    instance = services.instance_create(actor=user, team=team, name="big", region="eu")
    backend = services.service_create(actor=user, instance=instance, name="api", base_url="http://127.0.0.1:9")
    servers = McpServer.objects.bulk_create([
        McpServer(instance=instance, name=f"server-{i:04d}", description=f"Server number {i}", backend_service=backend,
                  config={"baseUrl": backend.base_url}, default_upstream_security={"id": "Key"} if i % 2 else {})
        for i in range(1000)
    ])
    McpDomain.objects.bulk_create([McpDomain(instance=instance, mcp_server=s, host=f"s{i}.example.com")
                                   for i, s in enumerate(servers)])
    SecurityScheme.objects.bulk_create([SecurityScheme(mcp_server=s, scheme_id="Key", type="apiKey", location="header",
                                                       param_name="X-Key", default_credential="k-123456")
                                        for s in servers[1::2]])
    first = servers[0]
    Tool.objects.bulk_create([
        Tool(mcp_server=first, name=f"tool_{i:04d}", description=f"Tool number {i}",
             args=[{"name": "id", "type": "integer", "position": "path", "required": True}],
             request_template={"url": "{{.config.baseUrl}}/items/{id}", "method": "GET"})
        for i in range(2000)
    ])
    instances = [Instance(team=team, name=f"inst-{i:04d}", region="eu") for i in range(300)]
    Instance.objects.bulk_create(instances)
    client = Client()
    client.force_login(user)
    return {"client": client, "instance": instance, "server": first, "backend": backend}


def timed_get(client, url, **kwargs):
    started = time.perf_counter()
    response = client.get(url, **kwargs)
    return response, time.perf_counter() - started


def test_mcp_management_with_1000_servers(big, django_assert_max_num_queries):
    url = reverse("mcp_server_list", args=[big["instance"].pk])
    big["client"].get(url)  # warm caches (templates, session)
    with django_assert_max_num_queries(MAX_QUERIES):
        response, seconds = timed_get(big["client"], url)
    assert response.status_code == 200 and seconds < MAX_SECONDS, seconds
    page = response.content.decode()
    assert page.count('class="server-card"') == 24 and "1–24 of 1000" in page
    assert "Backend auth: API key" in page and "Backend auth: none" in page
    with django_assert_max_num_queries(MAX_QUERIES):
        response, seconds = timed_get(big["client"], url + "?q=number 99&page=2")
    assert response.status_code == 200 and seconds < MAX_SECONDS


def test_tools_tab_with_2000_tools(big, django_assert_max_num_queries):
    url = reverse("tool_list", args=[big["server"].pk])
    big["client"].get(url)
    with django_assert_max_num_queries(MAX_QUERIES):
        response, seconds = timed_get(big["client"], url + "?page=3")
    assert response.status_code == 200 and seconds < MAX_SECONDS, seconds
    page = response.content.decode()
    assert page.count('<tr id="tool-') == 50 and "tool_0100" in page and "of 2000" in page
    with django_assert_max_num_queries(MAX_QUERIES):
        response, seconds = timed_get(big["client"], url + "?q=tool_19", headers={"HX-Request": "true",
                                                                                 "HX-Target": "tool-rows"})
    assert response.status_code == 200 and seconds < MAX_SECONDS


def test_other_lists_stay_constant(big, django_assert_max_num_queries):
    client = big["client"]
    for url in (reverse("instance_list"), reverse("service_list", args=[big["instance"].pk]),
                reverse("instance", args=[big["instance"].pk]), reverse("mcp_server", args=[big["server"].pk]),
                reverse("tool_add", args=[big["server"].pk])):
        client.get(url)
        with django_assert_max_num_queries(MAX_QUERIES):
            response, seconds = timed_get(client, url)
        assert response.status_code == 200 and seconds < MAX_SECONDS, (url, seconds)


def test_consumer_pages_with_many_consumers_keys_and_authorizations(django_assert_max_num_queries):
    from console.models import Consumer, ConsumerApiKey, ConsumerAuthorization

    user = get_user_model().objects.create_user("many", password="pw-123456")
    team = services.team_create(name="Many", owner=user)
    instance = services.instance_create(actor=user, team=team, name="many")
    backend = services.service_create(actor=user, instance=instance, name="api", base_url="http://127.0.0.1:9")
    server = services.mcp_server_create(actor=user, instance=instance, name="srv", backend_service=backend)
    consumers = Consumer.objects.bulk_create([Consumer(team=team, name=f"c-{i:04d}") for i in range(300)])
    ConsumerApiKey.objects.bulk_create([ConsumerApiKey(consumer=consumers[0], digest=f"{i:064d}", hint="mck_••••x",
                                                       created_by=user) for i in range(200)])
    ConsumerAuthorization.objects.bulk_create([ConsumerAuthorization(mcp_server=server, consumer=c)
                                               for c in consumers])
    client = Client()
    client.force_login(user)
    urls = [reverse("consumer_list", args=[instance.pk]), reverse("consumer", args=[instance.pk, consumers[0].pk]),
            reverse("mcp_server_consumer_auth", args=[server.pk])]
    for url in urls:
        client.get(url)  # warm caches
        with django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(url)
        assert response.status_code == 200
    page = client.get(urls[0]).content.decode()
    assert "1–50 of 300" in page and "c-0049" in page and "c-0050" not in page
    assert client.get(urls[2]).content.decode().count('data-consumer="c-') == 300
