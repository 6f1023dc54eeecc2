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
