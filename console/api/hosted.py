"""REST endpoints of the catalogue of hosted stdio servers (staff write, everyone reads installed entries), and the
running processes of a Hosted stdio server."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..models import HostedStdioEntry, McpServer
from ..services import hosted as hosted_services


class VariableSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    secret = serializers.BooleanField(required=False, default=False)
    required = serializers.BooleanField(required=False, default=False)
    default = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096)


class HostedEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    runtime = serializers.CharField()
    package = serializers.CharField()
    version = serializers.CharField()
    command = serializers.CharField()
    args = serializers.ListField(child=serializers.CharField())
    variables = VariableSerializer(many=True)
    shareable = serializers.BooleanField()
    allow_install_scripts = serializers.BooleanField()
    max_processes = serializers.IntegerField()
    memory_mb = serializers.IntegerField()
    cpu_seconds = serializers.IntegerField()
    open_files = serializers.IntegerField()
    startup_timeout_seconds = serializers.IntegerField()
    idle_timeout_seconds = serializers.IntegerField()
    state = serializers.CharField()
    error = serializers.CharField()
    log = serializers.CharField()
    installed_at = serializers.DateTimeField(allow_null=True)


class HostedEntryInput(serializers.Serializer):
    slug = serializers.CharField(max_length=63)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    runtime = serializers.ChoiceField(choices=HostedStdioEntry.Runtime.choices, default=HostedStdioEntry.Runtime.NPM)
    package = serializers.CharField(max_length=214)
    version = serializers.CharField(max_length=64)
    command = serializers.CharField(max_length=200)
    args = serializers.ListField(child=serializers.CharField(max_length=1000, allow_blank=True), required=False,
                                 default=list, max_length=50)
    variables = VariableSerializer(many=True, required=False, default=list, max_length=50)
    shareable = serializers.BooleanField(required=False, default=False)
    allow_install_scripts = serializers.BooleanField(required=False, default=False)
    max_processes = serializers.IntegerField(required=False, default=10)
    memory_mb = serializers.IntegerField(required=False, default=2048)
    cpu_seconds = serializers.IntegerField(required=False, default=300)
    open_files = serializers.IntegerField(required=False, default=256)
    startup_timeout_seconds = serializers.IntegerField(required=False, default=30)
    idle_timeout_seconds = serializers.IntegerField(required=False, default=600)


class HostedEntryUpdateInput(HostedEntryInput):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # a PATCH changes what it names, nothing else
            field.required = False
            field.default = serializers.empty


def _validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class HostedEntryListApi(APIView):
    @extend_schema(responses=HostedEntryOutput(many=True),
                   description="Staff see every entry; other users the installed ones a Hosted stdio server may run.")
    def get(self, request):
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.hosted_entry_list(user=request.user).order_by("slug"), request,
                                           view=self)
        return paginator.get_paginated_response(HostedEntryOutput(page, many=True).data)

    @extend_schema(request=HostedEntryInput, responses={201: HostedEntryOutput},
                   description="Staff only. The entry is installed into the cache by a background job at once.")
    def post(self, request):
        hosted_services.require_staff(actor=request.user)
        data = _validated(HostedEntryInput, request.data)
        entry = hosted_services.hosted_entry_create(actor=request.user, **data)
        return Response(HostedEntryOutput(entry).data, status=status.HTTP_201_CREATED)


class HostedEntryDetailApi(APIView):
    @extend_schema(responses=HostedEntryOutput)
    def get(self, request, pk: int):
        return Response(HostedEntryOutput(selectors.hosted_entry_get(user=request.user, pk=pk)).data)

    @extend_schema(request=HostedEntryUpdateInput, responses=HostedEntryOutput,
                   description="Staff only. A changed package or version is installed again.")
    def patch(self, request, pk: int):
        entry = selectors.hosted_entry_get(user=request.user, pk=pk)
        hosted_services.require_staff(actor=request.user)
        data = _validated(HostedEntryUpdateInput, request.data, partial=True)
        entry = hosted_services.hosted_entry_update(actor=request.user, entry=entry, **data)
        return Response(HostedEntryOutput(entry).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        entry = selectors.hosted_entry_get(user=request.user, pk=pk)
        hosted_services.hosted_entry_delete(actor=request.user, entry=entry)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HostedEntryInstallApi(APIView):
    @extend_schema(request=None, responses={202: HostedEntryOutput},
                   description="Staff only. Install (or reinstall) the pinned package; poll the entry for its state.")
    def post(self, request, pk: int):
        entry = selectors.hosted_entry_get(user=request.user, pk=pk)
        entry = hosted_services.hosted_entry_install(actor=request.user, entry=entry)
        return Response(HostedEntryOutput(entry).data, status=status.HTTP_202_ACCEPTED)


class HostedProcessesOutput(serializers.Serializer):
    entry = serializers.CharField()
    spec = serializers.CharField()
    state = serializers.CharField()
    unavailable = serializers.CharField()
    processes = serializers.ListField(child=serializers.JSONField(),
                                     help_text="pid, session (first characters), started_at, memory_kb, stderr")
    last_exit = serializers.JSONField(allow_null=True)
    recent_crashes = serializers.IntegerField()
    crash_loop = serializers.BooleanField()


class HostedProcessesApi(APIView):
    @extend_schema(responses=HostedProcessesOutput,
                   description="The children this gateway process runs for a Hosted stdio server, and its last exit.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return Response(HostedProcessesOutput(hosted_status(server)).data)


def hosted_status(server: McpServer) -> dict:
    from gateway.config import server_snapshot
    from gateway.hosted.children import registry

    entry = server.hosted_entry
    config = server_snapshot(server.pk)
    hosted = config.hosted if config is not None else None
    return {"entry": entry.slug if entry else "", "spec": entry.spec if entry else "",
            "state": entry.state if entry else "", "unavailable": hosted.unavailable if hosted else "",
            **_labelled(registry.status(server.pk))}


def _labelled(status: dict) -> dict:
    import datetime as dt

    for process in status["processes"]:
        started = dt.datetime.fromtimestamp(process["started_at"], dt.timezone.utc)
        process["started_label"] = started.strftime("%Y-%m-%d %H:%M:%S UTC")
        process["memory_mb"] = round(process["memory_kb"] / 1024, 1) if process["memory_kb"] else None
    return status


urlpatterns = [
    path("hosted-entries/", HostedEntryListApi.as_view(), name="api_hosted_entry_list"),
    path("hosted-entries/<int:pk>/", HostedEntryDetailApi.as_view(), name="api_hosted_entry"),
    path("hosted-entries/<int:pk>/install/", HostedEntryInstallApi.as_view(), name="api_hosted_entry_install"),
    path("mcp-servers/<int:pk>/processes/", HostedProcessesApi.as_view(), name="api_hosted_processes"),
]
