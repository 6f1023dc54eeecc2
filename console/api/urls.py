"""REST API routes under /api/v1/."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from . import audit, imports, views

urlpatterns = [
    path("instances/", views.InstanceListApi.as_view(), name="api_instance_list"),
    path("instances/<int:pk>/", views.InstanceDetailApi.as_view(), name="api_instance"),
    path("services/", views.ServiceListApi.as_view(), name="api_service_list"),
    path("services/<int:pk>/", views.ServiceDetailApi.as_view(), name="api_service"),
    path("mcp-servers/", views.McpServerListApi.as_view(), name="api_mcp_server_list"),
    path("mcp-servers/<int:pk>/", views.McpServerDetailApi.as_view(), name="api_mcp_server"),
    path("mcp-servers/<int:pk>/tools/", views.ToolListApi.as_view(), name="api_tool_list"),
    path("mcp-servers/<int:pk>/tools/yaml", views.ToolsYamlApi.as_view(), name="api_tools_yaml"),
    path("tools/<int:pk>/", views.ToolDetailApi.as_view(), name="api_tool"),
    path("audit-events/", audit.AuditEventListApi.as_view(), name="api_audit_event_list"),
    path("mcp-servers/<int:pk>/imports/", imports.ImportListApi.as_view(), name="api_import_list"),
    path("imports/<int:pk>/", imports.ImportDetailApi.as_view(), name="api_import"),
    path("imports/<int:pk>/confirm/", imports.ImportConfirmApi.as_view(), name="api_import_confirm"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("", include("console.api.actions")),
    path("", include("console.api.teams")),
    path("", include("console.api.consumers")),
    path("", include("console.api.oauth")),
    path("", include("console.api.proxy")),
    path("", include("console.api.governance")),
    path("", include("console.api.faults")),
    path("", include("console.api.hosted")),
]
