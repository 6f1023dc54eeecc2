"""Consumers, API keys, authorizations and a server's Consumer Authentication, set up for gateway tests.

Every change goes through the console's services (as the system actor), so it is written, audited and signalled
to the gateway processes (config version bump on commit) exactly as a console or REST API edit would be.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction

from console import services
from console.models import Consumer, ConsumerApiKey, ConsumerAuthorization, McpServer  # noqa: F401 (live_setup)
from console.services.common import config_changed


def set_consumer_auth(server: McpServer, *, enabled: bool, method: str = "api_key", source: str = "bearer",
                      name: str = "") -> McpServer:
    return services.mcp_server_set_consumer_auth(actor=None, mcp_server=server, enabled=enabled, method=method,
                                                 source=source, name=name)


def consumer_create(team, name: str, *, enabled: bool = True) -> Consumer:
    return services.consumer_create(actor=None, team=team, name=name, enabled=enabled)


def consumer_set_enabled(consumer: Consumer, enabled: bool) -> Consumer:
    return services.consumer_update(actor=None, consumer=consumer, enabled=enabled)


def key_issue(consumer: Consumer, *, expires_at: dt.datetime | None = None) -> tuple[ConsumerApiKey, str]:
    return services.consumer_api_key_issue(actor=None, consumer=consumer, expires_at=expires_at)


@transaction.atomic
def key_expire(key: ConsumerApiKey, *, ago: dt.timedelta = dt.timedelta(hours=1)) -> ConsumerApiKey:
    """The clock moving past a key's expiry: the console only issues keys that expire in the future."""
    key.expires_at = dt.datetime.now(tz=dt.timezone.utc) - ago
    key.save(update_fields=["expires_at"])
    config_changed()  # the read model a gateway built after that moment would hold this expiry
    return key


def key_revoke(key: ConsumerApiKey) -> None:
    services.consumer_api_key_revoke(actor=None, api_key=key)


def authorize(server: McpServer, consumer: Consumer, tools: list[str] | None = None) -> ConsumerAuthorization:
    return services.consumer_authorize(actor=None, mcp_server=server, consumer=consumer, tools=tools)


def authorization_revoke(server: McpServer, consumer: Consumer) -> None:
    services.consumer_authorization_revoke(actor=None, mcp_server=server, consumer=consumer)


# ---------------------------------------------------------------- the same against a live server's database

def guarded_petstore(name: str, *, consumers: tuple[str, ...] = ("agent",)) -> dict:
    """A copy of the demo petstore server with API-key authentication on, each consumer authorized with one key.

    Runs inside the live server's environment (`live_setup`); returns {"server_id", consumers: {name: {id, key,
    key_id}}} (each consumer is called "<server>-<name>").
    """
    from console.demo_seed import petstore_yaml

    petstore = McpServer.objects.get(name="petstore", instance__name="default")
    server = services.mcp_server_create(actor=None, instance=petstore.instance, name=name,
                                        backend_service=petstore.backend_service, config=petstore.config)
    services.tools_apply_yaml(actor=None, mcp_server=server, text=petstore_yaml(base_url=petstore.config["baseUrl"]))
    out: dict = {"server_id": server.pk, "consumers": {}}
    for consumer_name in consumers:
        # Consumer names are unique in a team, and live servers are shared by several tests' servers.
        consumer = consumer_create(petstore.instance.team, f"{name}-{consumer_name}")
        key, secret = key_issue(consumer)
        authorize(server, consumer)
        out["consumers"][consumer_name] = {"id": consumer.pk, "key": secret, "key_id": key.pk}
    set_consumer_auth(server, enabled=True)
    return out


def live_setup(live, call: str) -> object:
    """Run `call` (an expression using this module as `cs`) in the live server's environment; its JSON result."""
    import json

    code = f"import json\nfrom tests.gateway import consumer_setup as cs\nprint(json.dumps({call}))"
    done = live.manage("shell", "-c", code)
    return json.loads(done.stdout.strip().splitlines()[-1])


def guarded_petstore_api(live, token: str, name: str, *, consumers: tuple[str, ...] = ("agent",)) -> dict:
    """`guarded_petstore` through the live server's own REST API, as a user would set it up.

    The server's own process makes every change, so an embedded server (in-process state, no Redis) sees each one
    at once. Returns the same shape as `guarded_petstore`.
    """
    import httpx

    from console.demo_seed import petstore_yaml

    def ok(response: httpx.Response):
        assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"
        return response.json() if response.content else None

    with httpx.Client(base_url=live.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        petstore = next(s for s in ok(api.get("/mcp-servers/", params={"limit": 1000}))["results"]
                        if s["name"] == "petstore" and s["instance_name"] == "default")
        team = ok(api.get(f"/instances/{petstore['instance']}/"))["team"]
        server = ok(api.post("/mcp-servers/", json={
            "instance": petstore["instance"], "name": name, "backend_service": petstore["backend_service"],
            "config": petstore["config"]}))
        ok(api.put(f"/mcp-servers/{server['id']}/tools/yaml", headers={"Content-Type": "application/yaml"},
                   content=petstore_yaml(base_url=petstore["config"]["baseUrl"])))
        out: dict = {"server_id": server["id"], "consumers": {}}
        for consumer_name in consumers:
            consumer = ok(api.post("/consumers/", json={"team": team, "name": f"{name}-{consumer_name}"}))
            key = ok(api.post(f"/consumers/{consumer['id']}/api-keys/", json={}))
            ok(api.post(f"/mcp-servers/{server['id']}/authorizations/",
                        json={"consumer": consumer["id"], "tools": None}))
            out["consumers"][consumer_name] = {"id": consumer["id"], "key": key["key"], "key_id": key["id"]}
        ok(api.put(f"/mcp-servers/{server['id']}/consumer-auth",
                   json={"enabled": True, "method": "api_key", "source": "bearer", "name": ""}))
    return out
