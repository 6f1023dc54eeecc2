"""The REST API page: every operation of /api/v1/ from its OpenAPI schema, and API tokens (each shown once)."""
from __future__ import annotations

from functools import lru_cache

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_http_methods

from django.urls import reverse

from .. import selectors, services
from .common import done, fetch, render_page

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
    return render_page(request, "console/api_reference.html", {
        "operations": _operations(), "secret": secret, "tokens": selectors.api_token_list(user=request.user)[:50]})


@login_required
@require_http_methods(["GET", "POST"])
def token_delete(request, pk: int):
    token = fetch(selectors.api_token_get, user=request.user, pk=pk)
    if request.method == "POST":
        services.api_token_revoke(actor=request.user, token=token)
        return done(request, reverse("api_reference"), f"Token {token.name} ({token.hint}…) revoked.")
    return render_page(request, "console/confirm_delete.html", {
        "verb": "Revoke", "object_kind": "API token", "object_name": f"{token.name} ({token.hint}…)",
        "consequence": "Scripts that use it get 401 from now on.",
        "action": reverse("token_delete", args=[pk]), "cancel_url": reverse("api_reference")},
        partial="console/_confirm_delete.html")
