"""URL routes of the console, its REST API and the built-in demo API (MCP endpoints never reach Django)."""
from django.contrib import admin
from django.urls import include, path

from .faults import healthz, readyz
from .views import governance as governance_views


urlpatterns = [
    path("admin/", admin.site.urls),
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
