"""REST API views: one APIView per resource operation, serializers nested, logic in services and selectors."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..errors import DomainError
from ..models import BackendService, McpServer
from ..toolyaml import input_schema_from_args
from .parsers import BoundedJSONParser, YamlParser


def _validated(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _paginate(view: APIView, request, queryset, serializer_class):
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


# ---------------------------------------------------------------- instances

class InstanceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    name = serializers.CharField()
    region = serializers.CharField()
    description = serializers.CharField()
    is_default = serializers.BooleanField()
    mcp_server_count = serializers.IntegerField(default=0)
    created_at = serializers.DateTimeField()


class InstanceInput(serializers.Serializer):
    team = serializers.IntegerField(required=False, help_text="Team id; defaults to your only team.")
    name = serializers.CharField(max_length=63)
    region = serializers.CharField(max_length=63, default="local")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    is_default = serializers.BooleanField(required=False, default=False)


class InstanceUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=63, required=False)
    region = serializers.CharField(max_length=63, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    is_default = serializers.BooleanField(required=False)


def _team_for(request, team_id: int | None):
    if team_id is not None:
        return selectors.team_get(user=request.user, pk=team_id)
    teams = list(selectors.team_list(user=request.user)[:2])
    if len(teams) != 1:
        raise DomainError("Choose a team.", {"team": ["You belong to several teams (or none): give a team id."]})
    return teams[0]


class InstanceListApi(APIView):
    @extend_schema(responses=InstanceOutput(many=True))
    def get(self, request):
        return _paginate(self, request, selectors.instance_list(user=request.user).order_by("name"), InstanceOutput)

    @extend_schema(request=InstanceInput, responses={201: InstanceOutput})
    def post(self, request):
        data = _validated(InstanceInput, request.data)
        team = _team_for(request, data.pop("team", None))
        instance = services.instance_create(actor=request.user, team=team, **data)
        instance = selectors.instance_get(user=request.user, pk=instance.pk)
        return Response(InstanceOutput(instance).data, status=status.HTTP_201_CREATED)


class InstanceDetailApi(APIView):
    @extend_schema(responses=InstanceOutput)
    def get(self, request, pk: int):
        return Response(InstanceOutput(selectors.instance_get(user=request.user, pk=pk)).data)

    @extend_schema(request=InstanceUpdateInput, responses=InstanceOutput)
    def patch(self, request, pk: int):
        instance = selectors.instance_get(user=request.user, pk=pk)
        services.instance_update(actor=request.user, instance=instance, **_validated(InstanceUpdateInput, request.data))
        return Response(InstanceOutput(selectors.instance_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.instance_delete(actor=request.user, instance=selectors.instance_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- backend services

class ServiceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    instance = serializers.IntegerField(source="instance_id")
    name = serializers.CharField()
    protocol = serializers.CharField()
    base_url = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class ServiceInput(serializers.Serializer):
    instance = serializers.IntegerField()
    name = serializers.CharField(max_length=63)
    protocol = serializers.ChoiceField(choices=BackendService.Protocol.choices, default=BackendService.Protocol.HTTP)
    base_url = serializers.CharField(max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ServiceUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=63, required=False)
    protocol = serializers.ChoiceField(choices=BackendService.Protocol.choices, required=False)
    base_url = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ServiceListApi(APIView):
    @extend_schema(responses=ServiceOutput(many=True))
    def get(self, request):
        qs = selectors.service_list(user=request.user)
        if request.query_params.get("instance", "").isdigit():
            qs = qs.filter(instance_id=int(request.query_params["instance"]))
        return _paginate(self, request, qs.order_by("instance__name", "name"), ServiceOutput)

    @extend_schema(request=ServiceInput, responses={201: ServiceOutput})
    def post(self, request):
        data = _validated(ServiceInput, request.data)
        instance = selectors.instance_get(user=request.user, pk=data.pop("instance"))
        service = services.service_create(actor=request.user, instance=instance, **data)
        return Response(ServiceOutput(service).data, status=status.HTTP_201_CREATED)


class ServiceDetailApi(APIView):
    @extend_schema(responses=ServiceOutput)
    def get(self, request, pk: int):
        return Response(ServiceOutput(selectors.service_get(user=request.user, pk=pk)).data)

    @extend_schema(request=ServiceUpdateInput, responses=ServiceOutput)
    def patch(self, request, pk: int):
        service = selectors.service_get(user=request.user, pk=pk)
        service = services.service_update(actor=request.user, service=service,
                                          **_validated(ServiceUpdateInput, request.data))
        return Response(ServiceOutput(service).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.service_delete(actor=request.user, service=selectors.service_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- MCP servers

class McpServerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    instance = serializers.IntegerField(source="instance_id")
    instance_name = serializers.CharField(source="instance.name")
    name = serializers.CharField()
    description = serializers.CharField()
    server_type = serializers.CharField()
    domains = serializers.SerializerMethodField()
    backend_service = serializers.IntegerField(source="backend_service_id", allow_null=True)
    backend_transport = serializers.CharField()
    backend_path = serializers.CharField()
    config = serializers.JSONField()
    timeout_seconds = serializers.IntegerField()
    enabled = serializers.BooleanField()
    tool_count = serializers.IntegerField(default=0)
    allow_tools = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                        help_text="Direct Proxy: the backend tools published (null: all).")
    endpoints = serializers.SerializerMethodField()
    hosted_entry = serializers.IntegerField(source="hosted_entry_id", allow_null=True,
                                            help_text="Hosted stdio: the catalogue entry it runs.")
    hosted_variables = serializers.SerializerMethodField(
        help_text="Hosted stdio: plain variables in full, secrets only as {\"set\": true|false}.")

    def get_domains(self, obj) -> list[str]:
        return [d.host for d in obj.domains.all()]

    def get_hosted_variables(self, obj) -> dict:
        from ..services.hosted import hosted_variables_shown

        return hosted_variables_shown(obj) if obj.server_type == McpServer.Type.HOSTED_STDIO else {}

    def get_endpoints(self, obj) -> dict[str, str]:
        base = f"/instances/{obj.instance.name}/mcp-servers/{obj.name}"
        endpoints = {"streamable_http": f"/mcp-servers/{obj.name}", "sse": f"/mcp-servers/{obj.name}/sse",
                     "streamable_http_by_instance": base, "sse_by_instance": base + "/sse"}
        if obj.server_type == McpServer.Type.DIRECT_PROXY and obj.backend_path:
            # The access point as the backend path names it (/mcp-servers/weather/test/sse), in the backend's transport.
            endpoints["backend_path"] = f"/mcp-servers/{obj.name}{obj.backend_path}"
            endpoints["backend_path_by_instance"] = base + obj.backend_path
        return endpoints


class McpServerInput(serializers.Serializer):
    instance = serializers.IntegerField()
    name = serializers.CharField(max_length=63)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    server_type = serializers.ChoiceField(choices=McpServer.Type.choices, default=McpServer.Type.HTTP_TO_MCP)
    domains = serializers.ListField(child=serializers.CharField(max_length=253), required=False, default=list)
    backend_service = serializers.IntegerField(required=False, allow_null=True)
    backend_transport = serializers.ChoiceField(choices=McpServer.Transport.choices, required=False, allow_blank=True,
                                                default="")
    backend_path = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict)
    timeout_seconds = serializers.IntegerField(required=False, allow_null=True, default=None)
    enabled = serializers.BooleanField(required=False, default=True)
    allow_tools = serializers.ListField(child=serializers.CharField(max_length=128), allow_null=True, required=False,
                                        default=None, max_length=1000)
    hosted_entry = serializers.IntegerField(required=False, allow_null=True, default=None)
    hosted_variables = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=4096),
                                             required=False, default=None, allow_null=True)

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("config must be an object.")
        return value


class McpServerUpdateInput(McpServerInput):
    instance = None
    server_type = None
    name = serializers.CharField(max_length=63, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    domains = serializers.ListField(child=serializers.CharField(max_length=253), required=False)
    backend_transport = serializers.ChoiceField(choices=McpServer.Transport.choices, required=False, allow_blank=True)
    backend_path = serializers.CharField(required=False, allow_blank=True)
    config = serializers.JSONField(required=False)
    timeout_seconds = serializers.IntegerField(required=False)
    enabled = serializers.BooleanField(required=False)
    allow_tools = serializers.ListField(child=serializers.CharField(max_length=128), allow_null=True, required=False,
                                        max_length=1000)
    hosted_entry = serializers.IntegerField(required=False, allow_null=True)
    hosted_variables = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=4096),
                                             required=False)


def _hosted_entry(data: dict) -> None:
    """An entry id becomes the entry; a tenant picks among installed entries, and any other id is not found."""
    if "hosted_entry" in data:
        entry_id = data.pop("hosted_entry")
        data["hosted_entry"] = selectors.hosted_entry_choice(pk=entry_id) if entry_id else None


class McpServerListApi(APIView):
    @extend_schema(responses=McpServerOutput(many=True))
    def get(self, request):
        qs = selectors.mcp_server_list(user=request.user)
        if request.query_params.get("instance", "").isdigit():
            qs = qs.filter(instance_id=int(request.query_params["instance"]))
        return _paginate(self, request, qs.order_by("instance__name", "name"), McpServerOutput)

    @extend_schema(request=McpServerInput, responses={201: McpServerOutput})
    def post(self, request):
        data = _validated(McpServerInput, request.data)
        instance = selectors.instance_get(user=request.user, pk=data.pop("instance"))
        backend_id = data.pop("backend_service", None)
        backend = selectors.service_get(user=request.user, pk=backend_id) if backend_id else None
        _hosted_entry(data)
        server = services.mcp_server_create(actor=request.user, instance=instance, backend_service=backend, **data)
        return Response(McpServerOutput(selectors.mcp_server_get(user=request.user, pk=server.pk)).data,
                        status=status.HTTP_201_CREATED)


class McpServerDetailApi(APIView):
    @extend_schema(responses=McpServerOutput)
    def get(self, request, pk: int):
        return Response(McpServerOutput(selectors.mcp_server_get(user=request.user, pk=pk)).data)

    @extend_schema(request=McpServerUpdateInput, responses=McpServerOutput)
    def patch(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        data = _validated(McpServerUpdateInput, request.data, partial=True)
        if "backend_service" in data:
            backend_id = data.pop("backend_service")
            data["backend_service"] = selectors.service_get(user=request.user, pk=backend_id) if backend_id else None
        _hosted_entry(data)
        services.mcp_server_update(actor=request.user, mcp_server=server, **data)
        return Response(McpServerOutput(selectors.mcp_server_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.mcp_server_delete(actor=request.user, mcp_server=selectors.mcp_server_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- tools

class ToolOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    method = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    args = serializers.JSONField()
    input_schema = serializers.SerializerMethodField()
    output_schema = serializers.JSONField()
    enabled = serializers.BooleanField()
    origin = serializers.CharField()
    updated_at = serializers.DateTimeField()

    def get_method(self, obj) -> str:
        return (obj.request_template or {}).get("method", "GET")

    def get_url(self, obj) -> str:
        return (obj.request_template or {}).get("url", "")

    def get_input_schema(self, obj) -> dict:
        return input_schema_from_args(obj.args or [])


class ToolUpdateInput(serializers.Serializer):
    enabled = serializers.BooleanField()


class ToolListApi(APIView):
    @extend_schema(responses=ToolOutput(many=True))
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        qs = selectors.tool_list(user=request.user, mcp_server=server)
        if request.query_params.get("q"):
            qs = qs.filter(name__icontains=request.query_params["q"])
        return _paginate(self, request, qs.order_by("name"), ToolOutput)


class ToolsYamlApi(APIView):
    parser_classes = [BoundedJSONParser, YamlParser]

    @extend_schema(
        request={"application/yaml": {"type": "string"}},
        responses={200: {"type": "object", "properties": {
            "created": {"type": "array", "items": {"type": "string"}},
            "updated": {"type": "array", "items": {"type": "string"}},
            "unchanged": {"type": "array", "items": {"type": "string"}}}}},
        examples=[OpenApiExample("A tool", value="tools:\n  - name: getPet\n    description: Fetch one pet\n")],
        description="Create or update tools from a REST-to-MCP (Higress-compatible) YAML document. Errors name "
                    "the field and the line.",
    )
    def put(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        text = request.data
        if isinstance(text, dict):  # JSON body {"yaml": "..."} for clients that cannot send raw text
            text = text.get("yaml", "")
        if not isinstance(text, str):
            raise DomainError("Send the YAML document as the request body.", {"yaml": ["Expected text."]})
        result = services.tools_apply_yaml(actor=request.user, mcp_server=server, text=text)
        return Response(result.as_dict())

    @extend_schema(responses={(200, "application/yaml"): {"type": "string"}})
    def get(self, request, pk: int):
        from django.http import HttpResponse

        from ..toolyaml import export_tool_yaml

        server = selectors.mcp_server_get(user=request.user, pk=pk)
        text = export_tool_yaml(server=server, tools=selectors.tool_list(user=request.user, mcp_server=server))
        return HttpResponse(text, content_type="application/yaml; charset=utf-8")


class ToolDetailApi(APIView):
    @extend_schema(responses=ToolOutput)
    def get(self, request, pk: int):
        return Response(ToolOutput(selectors.tool_get(user=request.user, pk=pk)).data)

    @extend_schema(request=ToolUpdateInput, responses=ToolOutput)
    def patch(self, request, pk: int):
        tool = selectors.tool_get(user=request.user, pk=pk)
        tool = services.tool_set_enabled(actor=request.user, tool=tool,
                                         enabled=_validated(ToolUpdateInput, request.data)["enabled"])
        return Response(ToolOutput(tool).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.tool_delete(actor=request.user, tool=selectors.tool_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
