"""Console pages of governance (rate limits, call records, traffic charts) and the /metrics endpoint."""
from __future__ import annotations

import csv
import json
import hmac
import ipaddress
import re
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse

from .. import selectors, services
from ..api.governance import filtered_calls
from ..errors import DomainError
from ..filters import CallRecordFilter
from ..forms import CallRecordSettingsForm, RateLimitForm
from ..permissions import MANAGE_CONFIG
from .common import confirm_page, done, error_text, fetch, form_page, paginate, render_page, require
from .instances import instance_context
from .mcp_servers import server_context

CALLS_PER_PAGE = 50
CSV_MAX_ROWS = 100_000
CHART_MAX_ROWS = 100_000
CSV_FIELDS = ["at", "instance", "mcp_server", "tool", "consumer", "outcome", "backend_status", "latency_ms",
              "request_bytes", "response_bytes", "transport", "revision", "session_id", "client_name", "method",
              "error"]


# ---------------------------------------------------------------- rate limits and record settings

@login_required
def mcp_server_rate_limits(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    context = server_context(request, server, "rate_limits")
    record_settings = selectors.call_record_settings_get(mcp_server=server)
    context.update({"policies": selectors.rate_limit_list(user=request.user, mcp_server=server),
                    "record_settings": record_settings,
                    "retention_days": settings.GATEWAY_CALL_RECORD_RETENTION_DAYS})
    return render_page(request, "console/mcp_server_rate_limits.html", context)


def _back_to(request, pk: int) -> str:
    """Where a rate-limit form returns: the Consumer Authentication tab when opened from there, else Rate limits."""
    if request.GET.get("from") == "consumer-auth":
        return reverse("mcp_server_consumer_auth", args=[pk])
    return reverse("mcp_server_rate_limits", args=[pk])


def _team_consumers(request, server):
    return selectors.consumer_list(user=request.user, team=server.instance.team)


@login_required
def rate_limit_add(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    consumers = list(_team_consumers(request, server))
    initial = {"window": "minute", "applies_to": "tool_calls", "enabled": True}
    if request.GET.get("consumer", "").isdigit():
        initial["consumer"] = int(request.GET["consumer"])
    form = RateLimitForm(request.POST or None, initial=initial, consumers=consumers)

    def act(data):
        chosen = data.pop("consumer")
        consumer = next((c for c in consumers if c.pk == chosen), None)
        services.rate_limit_create(actor=request.user, mcp_server=server, consumer=consumer, **data)
        return done(request, _back_to(request, pk), "Rate limit added.")

    context = server_context(request, server, "rate_limits")
    context.update({"title": "Add rate limit", "action": request.get_full_path(),
                    "cancel_url": _back_to(request, pk)})
    return form_page(request, form, context, act, template="console/rate_limit_form.html",
                     partial="console/_rate_limit_form.html")


def _policy_in(request, pk: int, policy_id: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    policy = fetch(selectors.rate_limit_get, user=request.user, pk=policy_id)
    if policy.mcp_server_id != server.pk:
        raise Http404("No such rate limit.")
    return server, policy


@login_required
def rate_limit_edit(request, pk: int, policy_id: int):
    server, policy = _policy_in(request, pk, policy_id)
    require(request, server.instance.team, MANAGE_CONFIG)
    initial = {"tool": policy.tool, "requests": policy.requests, "window": policy.window, "burst": policy.burst,
               "applies_to": policy.applies_to, "enabled": policy.enabled}
    form = RateLimitForm(request.POST or None, initial=initial, fixed_consumer=True)

    def act(data):
        services.rate_limit_update(actor=request.user, policy=policy, **data)
        return done(request, _back_to(request, pk), "Rate limit saved.")

    context = server_context(request, server, "rate_limits")
    context.update({"title": f"Edit rate limit ({policy.consumer.name if policy.consumer else 'every consumer'})",
                    "action": request.get_full_path(), "cancel_url": _back_to(request, pk)})
    return form_page(request, form, context, act, template="console/rate_limit_form.html",
                     partial="console/_rate_limit_form.html")


@login_required
def rate_limit_delete(request, pk: int, policy_id: int):
    server, policy = _policy_in(request, pk, policy_id)
    require(request, server.instance.team, MANAGE_CONFIG)

    def act():
        services.rate_limit_delete(actor=request.user, policy=policy)
        return done(request, reverse("mcp_server_rate_limits", args=[pk]), "Rate limit deleted.")

    context = server_context(request, server, "rate_limits")
    context.update({"verb": "Delete", "object_kind": "rate limit",
                    "object_name": f"{policy.describe()} for {policy.consumer.name if policy.consumer else 'every consumer'}"
                                   f"{' on ' + policy.tool if policy.tool else ''}",
                    "consequence": "Calls it counted are no longer limited by it (a broader policy may apply).",
                    "action": reverse("rate_limit_delete", args=[pk, policy_id]),
                    "cancel_url": reverse("mcp_server_rate_limits", args=[pk])})
    return confirm_page(request, context, act)


@login_required
def call_record_settings_edit(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    current = selectors.call_record_settings_get(mcp_server=server)
    form = CallRecordSettingsForm(request.POST or None, initial={
        "record_arguments": current.record_arguments, "redact_fields": ", ".join(current.redact_fields or [])})

    def act(data):
        services.call_record_settings_set(actor=request.user, mcp_server=server,
                                          record_arguments=data["record_arguments"],
                                          redact_fields=[f for f in re.split(r"[\s,]+", data["redact_fields"]) if f])
        return done(request, reverse("mcp_server_rate_limits", args=[pk]), "Call record settings saved.")

    context = server_context(request, server, "rate_limits")
    context.update({"title": "Call records", "action": reverse("call_record_settings_edit", args=[pk]),
                    "cancel_url": reverse("mcp_server_rate_limits", args=[pk])})
    return form_page(request, form, context, act, template="console/rate_limit_form.html",
                     partial="console/_call_record_settings_form.html")


# ---------------------------------------------------------------- Calls pages

def _calls_page(request, queryset, context: dict, filename: str):
    try:
        records = filtered_calls(request, queryset)
    except DomainError as exc:
        context["filter_error"] = error_text(exc)
        records = queryset.none()
    if request.GET.get("format") == "csv":
        return _csv(records, filename)
    context.update({"filter": CallRecordFilter(request.GET or None, queryset=queryset),
                    "page": paginate(request, records, CALLS_PER_PAGE),
                    "csv_query": _with_format(request)})
    return render_page(request, "console/call_list.html", context)


def _with_format(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    params["format"] = "csv"
    return params.urlencode()


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(records, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_FIELDS)
        for r in records.select_related("mcp_server")[:CSV_MAX_ROWS].iterator(chunk_size=2000):
            yield writer.writerow([r.at.isoformat(), r.instance, r.mcp_server.name, r.tool, r.consumer_name,
                                   r.outcome, "" if r.backend_status is None else r.backend_status, r.latency_ms,
                                   r.request_bytes, r.response_bytes, r.transport, r.revision, r.session_id,
                                   _cell(r.client_name), r.method, _cell(r.error)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _cell(text: str) -> str:
    # A spreadsheet must not run what a client sent as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@login_required
def mcp_server_calls(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    context = server_context(request, server, "calls")
    context["scope"] = "server"
    return _calls_page(request, selectors.call_record_list(user=request.user, mcp_server=server), context,
                       f"calls-{server.instance.name}-{server.name}.csv")


@login_required
def consumer_calls(request, pk: int, consumer_id: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    consumer = fetch(selectors.consumer_get, user=request.user, pk=consumer_id)
    if consumer.team_id != instance.team_id:
        raise Http404("No such consumer.")
    context = instance_context(request, instance, "consumers")
    context.update({"consumer": consumer, "scope": "consumer",
                    "limits": selectors.rate_limit_list_of_consumer(user=request.user, consumer=consumer)})
    return _calls_page(request, selectors.call_record_list(user=request.user, consumer=consumer), context,
                       f"calls-{consumer.name}.csv")


@login_required
def call_record(request, pk: int):
    record = fetch(selectors.call_record_get, user=request.user, pk=pk)
    server = fetch(selectors.mcp_server_get, user=request.user, pk=record.mcp_server_id)
    context = server_context(request, server, "calls")
    if record.arguments is not None:
        record.arguments_json = json.dumps(record.arguments, indent=2, ensure_ascii=False)
    context["record"] = record
    return render_page(request, "console/call_record.html", context)


# ---------------------------------------------------------------- traffic charts (read from the call records)

def _percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return round(sorted_values[index], 2)


def traffic(records, *, hours: int, now: datetime | None = None) -> dict:
    """Calls, errors and p50/p99 latency per time bucket, and the top tools and consumers, over the last `hours`."""
    now = now or datetime.now(tz=timezone.utc)
    start = now - timedelta(hours=hours)
    step = max(60, hours * 3600 // 60)  # about 60 buckets
    buckets = (hours * 3600 + step - 1) // step
    first = int(start.timestamp()) // step * step
    calls = [0] * (buckets + 1)
    errors = [0] * (buckets + 1)
    latencies: list[list[float]] = [[] for _ in range(buckets + 1)]
    tools: dict[str, int] = {}
    consumers: dict[str, int] = {}
    rows = records.filter(at__gte=start).order_by().values_list("at", "latency_ms", "outcome", "tool",
                                                                  "consumer_name")[:CHART_MAX_ROWS]
    for at, latency, outcome, tool, consumer in rows:
        index = min(buckets, max(0, (int(at.timestamp()) - first) // step))
        calls[index] += 1
        if outcome != "ok":
            errors[index] += 1
        latencies[index].append(latency)
        if tool:  # a Direct Proxy's other requests (listings, resources …) count as calls, not as a tool
            tools[tool] = tools.get(tool, 0) + 1
        consumer = consumer or "(anonymous)"
        consumers[consumer] = consumers.get(consumer, 0) + 1
    p50, p99 = [], []
    for values in latencies:
        values.sort()
        p50.append(_percentile(values, 0.5))
        p99.append(_percentile(values, 0.99))
    top = lambda counts: sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]  # noqa: E731
    return {"times": [first + i * step for i in range(buckets + 1)], "calls": calls, "errors": errors,
            "p50": p50, "p99": p99, "total": sum(calls), "error_total": sum(errors),
            "top_tools": top(tools), "top_consumers": top(consumers), "hours": hours, "step": step}


def _hours(request) -> int:
    value = request.GET.get("hours", "24")
    return int(value) if value.isdigit() and 1 <= int(value) <= 24 * 30 else 24


@login_required
def mcp_server_traffic(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    return JsonResponse(traffic(selectors.call_record_list(user=request.user, mcp_server=server),
                                hours=_hours(request)))


@login_required
def instance_traffic(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    records = selectors.call_record_list(user=request.user).filter(mcp_server__instance=instance)
    if request.GET.get("format") == "json":
        return JsonResponse(traffic(records, hours=_hours(request)))
    context = instance_context(request, instance, "traffic")
    context.update({"traffic_url": reverse("instance_traffic", args=[pk]) + "?format=json",
                    "servers": selectors.mcp_server_list(user=request.user, instance=instance)})
    return render_page(request, "console/instance_traffic.html", context)


# ---------------------------------------------------------------- /metrics

def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if settings.METRICS_ALLOW:
        for entry in settings.METRICS_ALLOW:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False
    return not token and address.is_loopback


def metrics(request):
    """Prometheus exposition: a bearer token (METRICS_TOKEN) or an allowed address (METRICS_ALLOW); with neither
    configured, loopback clients only."""
    if not _metrics_allowed(request):
        response = HttpResponse("Forbidden: /metrics needs METRICS_TOKEN or an address in METRICS_ALLOW.\n",
                                status=403, content_type="text/plain")
        return response
    from gateway.governance.metrics import exposition

    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
