"""URL routes of the console, its REST API and the built-in demo API (MCP endpoints never reach Django)."""
from django.contrib import admin
from django.urls import include, path

from .faults import healthz, readyz
from .oauth import views as oauth_views
from .views import governance as governance_views


urlpatterns = [
    path("admin/", admin.site.urls),
    # OAuth sign-in for MCP clients: the authorization server, its metadata (RFC 8414) and each protected MCP
    # endpoint's metadata at the path-inserted well-known URI (RFC 9728 §3.1).
    path("oauth/", include("console.oauth.urls")),
    path(".well-known/oauth-authorization-server", oauth_views.AuthorizationServerMetadataView.as_view(),
         name="oauth_server_metadata"),
    path(".well-known/oauth-protected-resource/<path:resource_path>", oauth_views.protected_resource_metadata,
         name="oauth_resource_metadata"),
    path("api/v1/", include("console.api.urls")),
    path("demo-api/", include("console.demo_urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", governance_views.metrics, name="metrics"),
    path("readyz", readyz, name="readyz"),
    path("", include("console.web_urls")),
    # The market: pages, its REST API, the MCP Registry API (v0.1) and the demo APIs its offline listings call.
    path("api/v1/market/", include("marketplace.api")),
    path("v0.1/", include("marketplace.registry")),
    path("", include("marketplace.urls")),
]
