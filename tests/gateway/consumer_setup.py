"""Consumers, API keys, authorizations and a server's Consumer Authentication, set up for gateway tests.

Each helper makes the change the way the console does: rows written in one transaction and the config version
bumped when it commits, so gateway processes see it as they would a console edit.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from console.models import Consumer, ConsumerApiKey, ConsumerAuthorization, McpServer
from console.services.common import config_changed


@transaction.atomic
def set_consumer_auth(server: McpServer, *, enabled: bool, method: str = "api_key", source: str = "bearer",
                      name: str = "") -> McpServer:
    server.consumer_auth_enabled = enabled
    server.consumer_auth_method = method
    server.consumer_auth_source = source
    server.consumer_auth_name = name
    server.save()
    config_changed()
    return server


@transaction.atomic
def consumer_create(team, name: str, *, enabled: bool = True) -> Consumer:
    consumer = Consumer.objects.create(team=team, name=name, enabled=enabled)
    config_changed()
    return consumer


@transaction.atomic
def consumer_set_enabled(consumer: Consumer, enabled: bool) -> Consumer:
    consumer.enabled = enabled
    consumer.save()
    config_changed()
    return consumer


@transaction.atomic
def key_issue(consumer: Consumer, *, expires_at: dt.datetime | None = None) -> tuple[ConsumerApiKey, str]:
    secret = ConsumerApiKey.new_secret()
    key = ConsumerApiKey.objects.create(consumer=consumer, digest=ConsumerApiKey.digest_of(secret),
                                        hint=secret[:8], expires_at=expires_at)
    config_changed()
    return key, secret


@transaction.atomic
def key_revoke(key: ConsumerApiKey) -> None:
    key.revoked_at = timezone.now()
    key.save()
    config_changed()


@transaction.atomic
def authorize(server: McpServer, consumer: Consumer, tools: list[str] | None = None) -> ConsumerAuthorization:
    authorization, _ = ConsumerAuthorization.objects.update_or_create(mcp_server=server, consumer=consumer,
                                                                     defaults={"tools": tools})
    config_changed()
    return authorization


@transaction.atomic
def authorization_revoke(server: McpServer, consumer: Consumer) -> None:
    ConsumerAuthorization.objects.filter(mcp_server=server, consumer=consumer).delete()
    config_changed()


# ---------------------------------------------------------------- the same against a live server's database

def guarded_petstore(name: str, *, consumers: tuple[str, ...] = ("agent",)) -> dict:
    """A copy of the demo petstore server with API-key authentication on, each consumer authorized with one key.

    Runs inside the live server's environment (`live_setup`); returns {"server_id", consumers: {name: {id, key,
    key_id}}}.
    """
    from console.demo_seed import petstore_yaml
    from console import services

    petstore = McpServer.objects.get(name="petstore", instance__name="default")
    server = services.mcp_server_create(actor=None, instance=petstore.instance, name=name,
                                        backend_service=petstore.backend_service, config=petstore.config)
    services.tools_apply_yaml(actor=None, mcp_server=server, text=petstore_yaml(base_url=petstore.config["baseUrl"]))
    out: dict = {"server_id": server.pk, "consumers": {}}
    for consumer_name in consumers:
        consumer = consumer_create(petstore.instance.team, consumer_name)
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
