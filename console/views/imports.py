"""Add Tool → Swagger File: start an import (upload, paste, URL), follow it live, choose from the preview, confirm."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors
from ..errors import DomainError
from ..permissions import MANAGE_CONFIG
from ..services import imports as import_services
from .common import done, error_text, fetch, render_page, require
from .mcp_servers import server_context
from .tools import _require_http_to_mcp

RECENT = 20
# Larger previews are not put in a textarea: the form could not send them back within its body limit.
YAML_EDIT_MAX = 1_000_000


def _page(request, server, *, status: int = 200, error: str = "", values: dict | None = None):
    import_services.import_job_sweep()
    context = server_context(request, server, "tools")
    context.update({"jobs": selectors.import_job_list(user=request.user, mcp_server=server)[:RECENT],
                    "error": error, "values": values or {}})
    return render_page(request, "console/import_start.html", context, status=status)


@login_required
def import_list(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    _require_http_to_mcp(server)
    return _page(request, server)


@login_required
@require_POST
def import_add(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    _require_http_to_mcp(server)
    files = [(f.name, f.read()) for f in request.FILES.getlist("file")]
    text = request.POST.get("text", "")
    url = request.POST.get("url", "").strip()
    try:
        job = import_services.import_job_create(actor=request.user, mcp_server=server, files=files or None,
                                                text=text if text.strip() else None, url=url or None,
                                                base_url=request.POST.get("base_url", "").strip())
    except DomainError as exc:
        return _page(request, server, status=400, error=error_text(exc), values={"url": url, "text": text})
    return redirect("import_job", pk=job.pk)


def _tags(rows: list[dict]) -> list[str]:
    return sorted({tag for row in rows for tag in row.get("tags") or []})


@login_required
def import_job(request, pk: int):
    job = fetch(selectors.import_job_get, user=request.user, pk=pk)
    server = fetch(selectors.mcp_server_get, user=request.user, pk=job.mcp_server_id)
    context = server_context(request, server, "tools")
    rows = (job.preview or {}).get("tools", []) if job.status == job.Status.SUCCEEDED else []
    context.update({
        "job": job, "rows": rows, "tags": _tags(rows),
        "security": (job.preview or {}).get("security", []), "warnings": job.warnings[:200],
        "ws_path": f"/ws/imports/{job.pk}/", "finished": job.status in (job.Status.SUCCEEDED, job.Status.FAILED),
        "selected_count": sum(1 for r in rows if r.get("selected")),
        "yaml_editable": len(job.preview_yaml) <= YAML_EDIT_MAX,
    })
    return render_page(request, "console/import_job.html", context)


@login_required
@require_http_methods(["POST"])
def import_confirm(request, pk: int):
    job = fetch(selectors.import_job_get, user=request.user, pk=pk)
    require(request, job.mcp_server.instance.team, MANAGE_CONFIG)
    chosen = request.POST.getlist("tool")
    renames = {name: request.POST.get(f"rename:{name}", "").strip() for name in chosen}
    credentials = {key.split(":", 1)[1]: value for key, value in request.POST.items()
                   if key.startswith("credential:") and value}
    yaml_text = request.POST.get("yaml", "") if request.POST.get("use_yaml") == "1" else ""
    try:
        result = import_services.import_job_confirm(
            actor=request.user, job=job, tools=chosen, yaml_text=yaml_text or None, credentials=credentials,
            renames={k: v for k, v in renames.items() if v and v != k})
    except DomainError as exc:
        from django.contrib import messages

        messages.error(request, error_text(exc) + _details(exc))
        return redirect("import_job", pk=job.pk)
    parts = [f"{len(v)} {k}" for k, v in result.items() if v]
    return done(request, reverse("tool_list", args=[job.mcp_server_id]),
                f"Import applied: {', '.join(parts) or 'nothing changed'}. The tools are live on the endpoint now.")


def _details(exc: DomainError) -> str:
    rows = getattr(exc, "errors", None)
    if rows:
        return " " + "; ".join(f"line {r['line']}: {r['message']}" if r.get("line") else r["message"]
                               for r in rows[:5])
    messages = [m for ms in (exc.details or {}).values() for m in ms][:5]
    return (" " + "; ".join(messages)) if messages else ""
