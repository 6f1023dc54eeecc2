"""REST endpoints for rate limits, call-record settings and call records (mounted by console/api/urls.py)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..errors import DomainError
from ..filters import CallRecordFilter
from ..models import RateLimitPolicy
from .views import _paginate, _validated


# ---------------------------------------------------------------- rate limits

class RateLimitOutput(serializers.Serializer):
    id = serializers.IntegerField()
    mcp_server = serializers.IntegerField(source="mcp_server_id")
    consumer = serializers.IntegerField(source="consumer_id", allow_null=True,
                                        help_text="Null: every consumer, each with its own bucket.")
    consumer_name = serializers.CharField(source="consumer.name", allow_null=True, default=None)
    tool = serializers.CharField(help_text="Empty: every tool.")
    requests = serializers.IntegerField()
    window = serializers.ChoiceField(choices=RateLimitPolicy.Window.choices)
    burst = serializers.IntegerField(allow_null=True, help_text="Requests allowed back to back; null: `requests`.")
    applies_to = serializers.ChoiceField(choices=RateLimitPolicy.AppliesTo.choices)
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RateLimitInput(serializers.Serializer):
    consumer = serializers.IntegerField(required=False, allow_null=True, default=None,
                                        help_text="A consumer of the server's team; omit for every consumer.")
    tool = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    requests = serializers.IntegerField(min_value=1, max_value=services.governance.MAX_REQUESTS)
    window = serializers.ChoiceField(choices=RateLimitPolicy.Window.choices)
    burst = serializers.IntegerField(min_value=1, max_value=services.governance.MAX_REQUESTS, required=False,
                                     allow_null=True, default=None)
    applies_to = serializers.ChoiceField(choices=RateLimitPolicy.AppliesTo.choices, required=False,
                                         default=RateLimitPolicy.AppliesTo.TOOL_CALLS)
    enabled = serializers.BooleanField(required=False, default=True)


class RateLimitUpdateInput(serializers.Serializer):
    tool = serializers.CharField(max_length=128, required=False, allow_blank=True)
    requests = serializers.IntegerField(min_value=1, max_value=services.governance.MAX_REQUESTS, required=False)
    window = serializers.ChoiceField(choices=RateLimitPolicy.Window.choices, required=False)
    burst = serializers.IntegerField(min_value=1, max_value=services.governance.MAX_REQUESTS, required=False,
                                     allow_null=True)
    applies_to = serializers.ChoiceField(choices=RateLimitPolicy.AppliesTo.choices, required=False)
    enabled = serializers.BooleanField(required=False)


class RateLimitListApi(APIView):
    @extend_schema(responses=RateLimitOutput(many=True), description="The server's rate-limit policies.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return _paginate(self, request, selectors.rate_limit_list(user=request.user, mcp_server=server),
                         RateLimitOutput)

    @extend_schema(request=RateLimitInput, responses={201: RateLimitOutput},
                   examples=[OpenApiExample("60 calls a minute per consumer", value={"requests": 60,
                                                                                       "window": "minute"})],
                   description="Add a policy. The most specific matching one applies to a request: consumer and "
                               "tool, consumer, tool, then the server's own. Applies without a restart.")
    def post(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        data = _validated(RateLimitInput, request.data)
        consumer_id = data.pop("consumer")
        consumer = None
        if consumer_id is not None:
            consumer = selectors.consumer_list(user=request.user).filter(pk=consumer_id).first()
            if consumer is None:
                raise DomainError("No such consumer.", {"consumer": ["No such consumer."]})
        policy = services.rate_limit_create(actor=request.user, mcp_server=server, consumer=consumer, **data)
        return Response(RateLimitOutput(policy).data, status=status.HTTP_201_CREATED)


class RateLimitDetailApi(APIView):
    @extend_schema(responses=RateLimitOutput)
    def get(self, request, pk: int):
        return Response(RateLimitOutput(selectors.rate_limit_get(user=request.user, pk=pk)).data)

    @extend_schema(request=RateLimitUpdateInput, responses=RateLimitOutput)
    def patch(self, request, pk: int):
        policy = selectors.rate_limit_get(user=request.user, pk=pk)
        policy = services.rate_limit_update(actor=request.user, policy=policy,
                                            **_validated(RateLimitUpdateInput, request.data))
        return Response(RateLimitOutput(policy).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.rate_limit_delete(actor=request.user, policy=selectors.rate_limit_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- call record settings

class CallRecordSettingsIo(serializers.Serializer):
    record_arguments = serializers.BooleanField(help_text="Keep each call's arguments (secrets redacted).")
    redact_fields = serializers.ListField(child=serializers.CharField(max_length=128), max_length=100,
                                          required=False, default=list,
                                          help_text="Argument names always replaced by [redacted], besides names "
                                                    "that look like secrets (password, token, api_key …).")


class CallRecordSettingsApi(APIView):
    @extend_schema(responses=CallRecordSettingsIo)
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return Response(CallRecordSettingsIo(selectors.call_record_settings_get(mcp_server=server)).data)

    @extend_schema(request=CallRecordSettingsIo, responses=CallRecordSettingsIo)
    def put(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        row = services.call_record_settings_set(actor=request.user, mcp_server=server,
                                                **_validated(CallRecordSettingsIo, request.data))
        return Response(CallRecordSettingsIo(row).data)


# ---------------------------------------------------------------- call records

class CallRecordOutput(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    instance = serializers.CharField()
    mcp_server = serializers.IntegerField(source="mcp_server_id")
    mcp_server_name = serializers.CharField(source="mcp_server.name")
    method = serializers.CharField(help_text="tools/call, or the method of a request relayed by a Direct Proxy.")
    tool = serializers.CharField()
    consumer = serializers.IntegerField(source="consumer_id", allow_null=True)
    consumer_name = serializers.CharField()
    transport = serializers.CharField()
    revision = serializers.CharField()
    session_id = serializers.CharField()
    client_name = serializers.CharField()
    outcome = serializers.CharField()
    backend_status = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.FloatField()
    request_bytes = serializers.IntegerField()
    response_bytes = serializers.IntegerField()
    arguments = serializers.JSONField(allow_null=True)
    error = serializers.CharField()


def _call_parameters() -> list[OpenApiParameter]:
    kinds = {"since": OpenApiTypes.DATETIME, "until": OpenApiTypes.DATETIME}
    return [OpenApiParameter(name, kinds.get(name, OpenApiTypes.STR), OpenApiParameter.QUERY,
                             description=str(flt.extra.get("help_text") or flt.label or name))
            for name, flt in CallRecordFilter.base_filters.items()] + [
        OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Records per page."),
        OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Records to skip."),
    ]


def filtered_calls(request, queryset):
    filterset = CallRecordFilter(request.GET, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise DomainError("Invalid filters.", {k: list(v) for k, v in filterset.errors.items()})
    return filterset.qs


class _CallListApi(APIView):
    def _page(self, request, queryset):
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(filtered_calls(request, queryset), request, view=self)
        return paginator.get_paginated_response(CallRecordOutput(page, many=True).data)


class McpServerCallListApi(_CallListApi):
    @extend_schema(parameters=_call_parameters(), responses=CallRecordOutput(many=True),
                   description="The server's tool calls, newest first. Records are written in batches: a call "
                               "shows here within about a second.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return self._page(request, selectors.call_record_list(user=request.user, mcp_server=server))


class ConsumerCallListApi(_CallListApi):
    @extend_schema(parameters=_call_parameters(), responses=CallRecordOutput(many=True),
                   description="The consumer's tool calls on every server, newest first.")
    def get(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        return self._page(request, selectors.call_record_list(user=request.user, consumer=consumer))


class CallRecordDetailApi(APIView):
    @extend_schema(responses=CallRecordOutput)
    def get(self, request, pk: int):
        return Response(CallRecordOutput(selectors.call_record_get(user=request.user, pk=pk)).data)


urlpatterns = [
    path("mcp-servers/<int:pk>/rate-limits/", RateLimitListApi.as_view(), name="api_rate_limit_list"),
    path("rate-limits/<int:pk>/", RateLimitDetailApi.as_view(), name="api_rate_limit"),
    path("mcp-servers/<int:pk>/call-record-settings", CallRecordSettingsApi.as_view(),
         name="api_call_record_settings"),
    path("mcp-servers/<int:pk>/calls/", McpServerCallListApi.as_view(), name="api_mcp_server_calls"),
    path("consumers/<int:pk>/calls/", ConsumerCallListApi.as_view(), name="api_consumer_calls"),
    path("calls/<int:pk>/", CallRecordDetailApi.as_view(), name="api_call_record"),
]
