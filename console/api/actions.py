"""REST endpoints for console actions beyond create/read/update/delete: backend authentication, one tool's YAML,
service reachability. Mounted by console/api/urls.py."""
from __future__ import annotations

from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..errors import DomainError
from ..probes import service_reachability
from ..toolyaml import tool_to_yaml
from .parsers import BoundedJSONParser, YamlParser
from .views import ToolOutput


class BackendAuthOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["none", "basic", "bearer", "api_key"])
    scheme_id = serializers.CharField(help_text="The security scheme (securitySchemes[].id) the server uses.")
    location = serializers.CharField(help_text="header or query (API key only).")
    param_name = serializers.CharField(help_text="Header or query parameter name (API key only).")
    credential = serializers.CharField(help_text="The stored credential, masked.")
    has_credential = serializers.BooleanField()


class BackendAuthInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["none", "basic", "bearer", "api_key"])
    location = serializers.ChoiceField(choices=["header", "query"], required=False, default="header")
    param_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    credential = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000,
                                       help_text="Basic: user:password. Bearer: the token. API key: the key. "
                                                 "Blank keeps the stored credential.")


class BackendAuthApi(APIView):
    @extend_schema(responses=BackendAuthOutput, description="How the gateway authenticates to the backend of an "
                   "HTTP-to-MCP server (its defaultUpstreamSecurity); the credential is masked.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return Response(selectors.backend_auth_get(mcp_server=server).as_dict())

    @extend_schema(request=BackendAuthInput, responses=BackendAuthOutput,
                   examples=[OpenApiExample("API key in a header", value={
                       "kind": "api_key", "location": "header", "param_name": "X-API-Key", "credential": "s3cret"})])
    def put(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        serializer = BackendAuthInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.mcp_server_set_backend_auth(actor=request.user, mcp_server=server,
                                                      **serializer.validated_data)
        return Response(result.as_dict())


class ToolYamlApi(APIView):
    parser_classes = [BoundedJSONParser, YamlParser]

    @extend_schema(responses={(200, "application/yaml"): {"type": "string"}},
                   description="One tool as a `tools:` YAML document (credentials masked).")
    def get(self, request, pk: int):
        tool = selectors.tool_get(user=request.user, pk=pk)
        return HttpResponse(tool_to_yaml(tool), content_type="application/yaml; charset=utf-8")

    @extend_schema(request={"application/yaml": {"type": "string"}}, responses=ToolOutput,
                   description="Replace the tool by the one tool the document describes; a new name renames it. "
                               "Errors name the field and the line.")
    def put(self, request, pk: int):
        tool = selectors.tool_get(user=request.user, pk=pk)
        text = request.data
        if isinstance(text, dict):
            text = text.get("yaml", "")
        if not isinstance(text, str):
            raise DomainError("Send the YAML document as the request body.", {"yaml": ["Expected text."]})
        updated, _ = services.tool_update_yaml(actor=request.user, tool=tool, text=text)
        return Response(ToolOutput(updated).data)


class ReachabilityOutput(serializers.Serializer):
    reachable = serializers.BooleanField()
    status = serializers.IntegerField(allow_null=True, help_text="The HTTP status the base URL answered with.")
    latency_ms = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class ServiceReachabilityApi(APIView):
    @extend_schema(responses=ReachabilityOutput, parameters=[OpenApiParameter(
        "fresh", bool, description="Probe now instead of answering from the last 30 seconds' result.")],
        description="Whether the service's base URL answers HTTP (any status counts), and how fast.")
    def get(self, request, pk: int):
        service = selectors.service_get(user=request.user, pk=pk)
        # Each ASGI request has its own thread for synchronous code, so probing a backend this very process
        # serves (the demo API) does not wait on itself.
        result = async_to_sync(service_reachability)(service=service, fresh=request.query_params.get("fresh") == "1")
        return Response(result.as_dict())


urlpatterns = [
    path("mcp-servers/<int:pk>/backend-auth", BackendAuthApi.as_view(), name="api_backend_auth"),
    path("tools/<int:pk>/yaml", ToolYamlApi.as_view(), name="api_tool_yaml"),
    path("services/<int:pk>/reachability", ServiceReachabilityApi.as_view(), name="api_service_reachability"),
]
