"""REST endpoint for what a Direct Proxy server's backend lists (parity with the server's Tools tab)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..proxy_catalog import proxy_catalog


class BackendCatalogOutput(serializers.Serializer):
    backend_name = serializers.CharField()
    tools = serializers.ListField(child=serializers.JSONField(),
                                  help_text="name, title, description, input_schema, published (the allow-list's say)")
    resources = serializers.ListField(child=serializers.JSONField())
    resource_templates = serializers.ListField(child=serializers.JSONField())
    prompts = serializers.ListField(child=serializers.JSONField())
    truncated = serializers.BooleanField()
    fetched_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="Why the backend could not be listed (empty when it was).")


class BackendCatalogApi(APIView):
    @extend_schema(responses=BackendCatalogOutput, parameters=[
        OpenApiParameter("refresh", bool, description="Fetch from the backend now instead of the cached catalogue.")],
        description="The tools, resources and prompts a Direct Proxy server's backend MCP service lists.")
    def get(self, request, pk: int):
        # An HTTP-to-MCP server answers with empty lists and `error` saying so, like an unreachable backend.
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        fresh = request.query_params.get("refresh", "").lower() in ("1", "true", "yes")
        return Response(BackendCatalogOutput(proxy_catalog(mcp_server=server, fresh=fresh).as_dict()).data)


urlpatterns = [
    path("mcp-servers/<int:pk>/backend-catalog", BackendCatalogApi.as_view(), name="api_backend_catalog"),
]
