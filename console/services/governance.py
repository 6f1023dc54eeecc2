"""Rate-limit policies of MCP servers and what their call records keep."""
from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from ..errors import DomainError
from ..models import TOOL_NAME_RE, CallRecordSettings, Consumer, McpServer, RateLimitPolicy
from .common import audit, config_changed, require_write

MAX_REQUESTS = 1_000_000_000
_FIELD_RE = re.compile(r"^[A-Za-z0-9_.$-]{1,128}$")
_UNSET = object()


def _clean(*, mcp_server: McpServer, consumer: Consumer | None, tool: str, requests, window: str, burst,
           applies_to: str) -> tuple[str, int | None]:
    errors: dict[str, list[str]] = {}
    if consumer is not None and consumer.team_id != mcp_server.instance.team_id:
        raise DomainError("No such consumer.", {"consumer": ["No such consumer."]}, code="not_found")
    tool = (tool or "").strip()
    if tool and not re.match(TOOL_NAME_RE, tool):
        errors["tool"] = ["A tool name: 1-128 letters, digits, '_', '.' or '-'."]
    if not isinstance(requests, int) or isinstance(requests, bool) or not 1 <= requests <= MAX_REQUESTS:
        errors["requests"] = [f"A whole number of requests from 1 to {MAX_REQUESTS}."]
    if window not in RateLimitPolicy.Window.values:
        errors["window"] = ["One of second, minute, hour, day."]
    if burst in ("", 0):
        burst = None
    if burst is not None and (not isinstance(burst, int) or isinstance(burst, bool) or
                              not 1 <= burst <= MAX_REQUESTS):
        errors["burst"] = [f"Empty (the same as requests) or a whole number from 1 to {MAX_REQUESTS}."]
    if applies_to not in RateLimitPolicy.AppliesTo.values:
        errors["applies_to"] = ["One of tool_calls, all."]
    if tool and applies_to == RateLimitPolicy.AppliesTo.ALL:
        errors["applies_to"] = ["A policy for one tool counts its tool calls only."]
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    return tool, burst


def _taken(mcp_server: McpServer, consumer: Consumer | None, tool: str, exclude: int | None = None) -> bool:
    qs = RateLimitPolicy.objects.filter(mcp_server=mcp_server, consumer=consumer, tool=tool)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.exists()


_DUPLICATE = DomainError("This server already has a rate limit for that consumer and tool; edit that one.",
                         {"non_field": ["A rate limit for that consumer and tool exists already."]})


def _detail(policy: RateLimitPolicy) -> dict:
    return {"mcp_server": policy.mcp_server.name, "consumer": policy.consumer.name if policy.consumer else None,
            "tool": policy.tool or None, "requests": policy.requests, "window": policy.window,
            "burst": policy.burst, "applies_to": policy.applies_to, "enabled": policy.enabled}


@transaction.atomic
def rate_limit_create(*, actor, mcp_server: McpServer, requests: int, window: str, consumer: Consumer | None = None,
                      tool: str = "", burst: int | None = None, applies_to: str = "tool_calls",
                      enabled: bool = True) -> RateLimitPolicy:
    team = mcp_server.instance.team
    require_write(actor=actor, team=team)
    tool, burst = _clean(mcp_server=mcp_server, consumer=consumer, tool=tool, requests=requests, window=window,
                         burst=burst, applies_to=applies_to)
    if _taken(mcp_server, consumer, tool):
        raise _DUPLICATE
    try:
        with transaction.atomic():
            policy = RateLimitPolicy.objects.create(mcp_server=mcp_server, consumer=consumer, tool=tool,
                                                    requests=requests, window=window, burst=burst,
                                                    applies_to=applies_to, enabled=enabled)
    except IntegrityError:  # the same policy created at the same moment
        raise _DUPLICATE from None
    audit(actor=actor, team=team, action="rate_limit.create", obj=policy, detail=_detail(policy))
    config_changed()
    return policy


@transaction.atomic
def rate_limit_update(*, actor, policy: RateLimitPolicy, requests=_UNSET, window=_UNSET, burst=_UNSET,
                      applies_to=_UNSET, enabled=_UNSET, tool=_UNSET) -> RateLimitPolicy:
    team = policy.mcp_server.instance.team
    require_write(actor=actor, team=team)
    before = _detail(policy)
    values = {"requests": policy.requests, "window": policy.window, "burst": policy.burst,
              "applies_to": policy.applies_to, "tool": policy.tool}
    for name, value in (("requests", requests), ("window", window), ("burst", burst), ("applies_to", applies_to),
                        ("tool", tool)):
        if value is not _UNSET:
            values[name] = value
    values["tool"], values["burst"] = _clean(mcp_server=policy.mcp_server, consumer=policy.consumer, **values)
    if values["tool"] != policy.tool and _taken(policy.mcp_server, policy.consumer, values["tool"], policy.pk):
        raise _DUPLICATE
    for name, value in values.items():
        setattr(policy, name, value)
    if enabled is not _UNSET:
        policy.enabled = bool(enabled)
    policy.save()
    after = _detail(policy)
    if after != before:
        audit(actor=actor, team=team, action="rate_limit.update", obj=policy, detail={"from": before, "to": after})
        config_changed()
    return policy


@transaction.atomic
def rate_limit_delete(*, actor, policy: RateLimitPolicy) -> None:
    team = policy.mcp_server.instance.team
    require_write(actor=actor, team=team)
    audit(actor=actor, team=team, action="rate_limit.delete", obj=policy, detail=_detail(policy))
    policy.delete()
    config_changed()


@transaction.atomic
def call_record_settings_set(*, actor, mcp_server: McpServer, record_arguments: bool,
                             redact_fields: list[str] | None = None) -> CallRecordSettings:
    """Whether the server's call records keep the arguments, and which argument names they blank out (secrets
    such as password, token or api_key always are)."""
    team = mcp_server.instance.team
    require_write(actor=actor, team=team)
    fields: list[str] = []
    for raw in redact_fields or []:
        name = str(raw).strip()
        if not name:
            continue
        if not _FIELD_RE.match(name):
            raise DomainError("Please correct the errors below.",
                              {"redact_fields": [f"“{name[:40]}” is not an argument name."]})
        if name not in fields:
            fields.append(name)
    if len(fields) > 100:
        raise DomainError("Please correct the errors below.", {"redact_fields": ["At most 100 names."]})
    settings_row, _ = CallRecordSettings.objects.select_for_update().get_or_create(mcp_server=mcp_server)
    before = {"record_arguments": settings_row.record_arguments, "redact_fields": settings_row.redact_fields}
    settings_row.record_arguments = bool(record_arguments)
    settings_row.redact_fields = fields
    settings_row.save()
    after = {"record_arguments": settings_row.record_arguments, "redact_fields": fields}
    if after != before:
        audit(actor=actor, team=team, action="call_records.settings", obj=mcp_server,
              detail={"from": before, "to": after})
        config_changed()
    return settings_row
