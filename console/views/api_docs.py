"""The REST API page: every operation of /api/v1/ from its OpenAPI schema, and API tokens (each shown once)."""
from __future__ import annotations

from functools import lru_cache

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_http_methods

from .. import services
from .common import render_page

METHODS = ("get", "post", "put", "patch", "delete")


@lru_cache(maxsize=1)
def _operations() -> tuple[dict, ...]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    rows = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            rows.append({
                "method": method.upper(), "path": path, "browsable": method == "get" and "{" not in path,
                "summary": (operation.get("description") or operation.get("summary")
                            or operation.get("operationId", "").replace("_", " ")).split("\n")[0],
                "tag": (operation.get("tags") or [""])[0],
            })
    return tuple(rows)


@login_required
@require_http_methods(["GET", "POST"])
def api_reference(request):
    secret = None
    if request.method == "POST":
        name = (request.POST.get("name") or "console").strip()[:100] or "console"
        _, secret = services.api_token_create(user=request.user, name=name)
    return render_page(request, "console/api_reference.html", {"operations": _operations(), "secret": secret})
