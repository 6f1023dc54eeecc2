"""Prometheus metrics of the gateway, summed over processes in prometheus-client's multiprocess mode."""
from __future__ import annotations

import os

# prometheus-client turns multiprocess mode on when the variable exists at all; an empty one means "off" here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

TOOL_CALLS = Counter("mcpgw_tool_calls_total", "Tool calls by MCP server, tool and outcome.",
                     ["instance", "server", "tool", "outcome"])
CALL_SECONDS = Histogram("mcpgw_tool_call_duration_seconds", "Tool call latency at the gateway.",
                         ["instance", "server"], buckets=_LATENCY_BUCKETS)
BACKEND_SECONDS = Histogram("mcpgw_backend_duration_seconds", "Backend response time of tool calls.",
                            ["instance", "server"], buckets=_LATENCY_BUCKETS)
RATE_LIMITED = Counter("mcpgw_rate_limited_total", "Requests refused by a rate limit.",
                       ["instance", "server", "method"])
PROXIED_REQUESTS = Counter("mcpgw_proxied_requests_total",
                           "Requests other than tools/call relayed by a Direct Proxy, by method and outcome.",
                           ["instance", "server", "method", "outcome"])
RECORDS_DROPPED = Counter("mcpgw_call_records_dropped_total", "Call records dropped because the buffer was full.")
ACTIVE_STREAMS = Gauge("mcpgw_active_streams", "Open SSE streams (2024-11-05 and Streamable HTTP GET).",
                       multiprocess_mode="livesum")


class _Counted:
    """Gauges read at scrape time from where the truth is kept, so they cannot drift: the sessions in the gateway
    state (Redis, or this process's tables) and the import jobs by status in the database."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from ..state import live_sessions

        sessions = live_sessions()
        if sessions is not None:
            family = GaugeMetricFamily("mcpgw_active_sessions", "MCP sessions open now (expired ones not counted).")
            family.add_metric([], sessions)
            yield family
        try:
            from django.db.models import Count

            from console.models import ImportJob

            counts = dict(ImportJob.objects.values_list("status").annotate(n=Count("pk")).order_by())
        except Exception:  # noqa: BLE001  the database away: the other metrics are still worth a scrape
            return
        jobs = GaugeMetricFamily("mcpgw_import_jobs", "OpenAPI import jobs by status.", labels=["status"])
        for status in ImportJob.Status.values:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs


def records_dropped() -> None:
    RECORDS_DROPPED.inc()


def exposition() -> tuple[bytes, str]:
    """The metrics text of this process, or of all processes in multiprocess mode."""
    counted = CollectorRegistry()
    counted.register(_Counted())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(counted), CONTENT_TYPE_LATEST
    return generate_latest() + generate_latest(counted), CONTENT_TYPE_LATEST
