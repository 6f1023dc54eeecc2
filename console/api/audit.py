"""REST API for the audit log: events of the user's teams, filtered like the console's Audit log page."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import APIView

from .. import selectors
from ..errors import DomainError
from ..filters import AuditEventFilter


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    actor = serializers.IntegerField(source="actor_id", allow_null=True, help_text="User id; null for the system.")
    actor_username = serializers.SerializerMethodField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_name = serializers.SerializerMethodField()
    detail = serializers.JSONField()
    created_at = serializers.DateTimeField()

    def get_actor_username(self, obj) -> str | None:
        return obj.actor.get_username() if obj.actor_id else None

    def get_object_name(self, obj) -> str:
        return str((obj.detail or {}).get("name", ""))


class AuditEventPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditEventOutput(many=True)


def _parameters() -> list[OpenApiParameter]:
    kinds = {"team": OpenApiTypes.INT, "since": OpenApiTypes.DATETIME, "until": OpenApiTypes.DATETIME}
    filters = [OpenApiParameter(name, kinds.get(name, OpenApiTypes.STR), OpenApiParameter.QUERY,
                                description=str(flt.extra.get("help_text") or flt.label or name))
               for name, flt in AuditEventFilter.base_filters.items()]
    return filters + [
        OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Events per page."),
        OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Events to skip."),
    ]


class AuditEventListApi(APIView):
    @extend_schema(parameters=_parameters(), responses=AuditEventPage,
                   description="Configuration changes in your teams, newest first; limit/offset paginated.")
    def get(self, request):
        filterset = AuditEventFilter(request.query_params, queryset=selectors.audit_event_list(user=request.user),
                                     request=request)
        if not filterset.is_valid():
            raise DomainError("Invalid filters.", {k: list(v) for k, v in filterset.errors.items()})
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)
