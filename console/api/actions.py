"""REST endpoints for console actions beyond create/read/update/delete: backend authentication, one tool's YAML,
service reachability. Mounted by console/api/urls.py."""
from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse
from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..errors import DomainError, NotFound
from ..probes import service_reachability
from ..toolyaml import tool_to_yaml
from .auth import ApiTokenAuthentication
from .views import ToolOutput, YamlParser


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
        return Response(services.backend_auth_get(mcp_server=server).as_dict())

    @extend_schema(request=BackendAuthInput, responses=BackendAuthOutput,
                   examples=[OpenApiExample("API key in a header", value={
                       "kind": "api_key", "location": "header", "param_name": "X-API-Key", "credential": "s3cret"})])
    def put(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        serializer = BackendAuthInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.mcp_server_set_backend_auth(actor=request.user, mcp_server=server, **serializer.validated_data)
        return Response(result.as_dict())


class ToolYamlApi(APIView):
    parser_classes = [JSONParser, YamlParser]

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


async def service_reachability_api(request, pk: int):
    """GET /api/v1/services/{id}/reachability: {reachable, status, latency_ms, message}.

    A plain async view, not an APIView: the probe may call a backend this very process serves (the demo API),
    which a synchronous view would block.
    """
    if request.method != "GET":
        return JsonResponse({"detail": "Method not allowed.", "code": "method_not_allowed", "errors": {}}, status=405)
    user = await request.auser()
    if not user.is_authenticated:
        try:
            found = await sync_to_async(ApiTokenAuthentication().authenticate)(request)
        except exceptions.AuthenticationFailed as exc:
            return JsonResponse({"detail": str(exc.detail), "code": "not_authenticated", "errors": {}}, status=401)
        if found is None:
            return JsonResponse({"detail": "Authentication credentials were not provided.",
                                 "code": "not_authenticated", "errors": {}}, status=401)
        user = found[0]
    try:
        service = await sync_to_async(selectors.service_get)(user=user, pk=pk)
    except NotFound as exc:
        return JsonResponse(exc.as_dict(), status=404)
    result = await service_reachability(service=service, fresh=request.GET.get("fresh") == "1")
    return JsonResponse(result.as_dict())


urlpatterns = [
    path("mcp-servers/<int:pk>/backend-auth", BackendAuthApi.as_view(), name="api_backend_auth"),
    path("tools/<int:pk>/yaml", ToolYamlApi.as_view(), name="api_tool_yaml"),
    path("services/<int:pk>/reachability", service_reachability_api, name="api_service_reachability"),
]
