"""List filters shared by console pages and the REST API (django-filter), so both read the same query parameters."""
from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from . import selectors
from .models import AuditEvent, CallRecord, Team


def _teams_of_request(request):
    return selectors.team_list(user=request.user) if request is not None else Team.objects.none()


class AuditEventFilter(django_filters.FilterSet):
    team = django_filters.ModelChoiceFilter(queryset=_teams_of_request, help_text="Team id (one of yours).")
    actor = django_filters.CharFilter(method="filter_actor", label="Who",
                                      help_text="User id or username of whoever made the change.")
    action = django_filters.CharFilter(method="filter_action", label="Action",
                                       help_text="e.g. mcp_server.update; ending in “.” matches all of one kind.")
    object_type = django_filters.CharFilter(field_name="object_type", label="Object type",
                                            help_text="e.g. instance, mcpserver, tool.")
    object_id = django_filters.CharFilter(field_name="object_id", label="Object id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Since",
                                             help_text="ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z.")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte", label="Until",
                                             help_text="ISO 8601 date-time.")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_actor(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isdigit():
            return queryset.filter(actor_id=int(value))
        return queryset.filter(actor__username__iexact=value)

    def filter_action(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)


class CallRecordFilter(django_filters.FilterSet):
    """Call records by time, tool, consumer and outcome (the Calls pages and /calls/ in the REST API)."""

    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte", label="Since",
                                             help_text="ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z.")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lte", label="Until",
                                             help_text="ISO 8601 date-time.")
    tool = django_filters.CharFilter(field_name="tool", label="Tool")
    consumer = django_filters.CharFilter(method="filter_consumer", label="Consumer",
                                         help_text="Consumer id or name.")
    outcome = django_filters.ChoiceFilter(field_name="outcome", label="Outcome",
                                          choices=[("ok", "ok"), ("tool_error", "tool error"),
                                                   ("backend_error", "backend error"), ("refused", "refused"),
                                                   ("limited", "limited")])

    class Meta:
        model = CallRecord
        fields: list[str] = []

    def filter_consumer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isdigit():
            return queryset.filter(consumer_id=int(value))
        return queryset.filter(consumer_name=value)
