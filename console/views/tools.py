"""Tools of an MCP server: the Tools tab (a Direct Proxy's lists its backend's catalogue), one tool's arguments and
schema, Add Tool (custom YAML), edit YAML."""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors, services
from ..errors import DomainError
from ..forms import BackendAuthForm, ToolYamlForm
from ..models import McpServer
from ..toolyaml import input_schema_from_args, tool_to_yaml
from ..permissions import MANAGE_CONFIG
from ..proxy_catalog import proxy_catalog
from .common import done, error_text, fetch, is_htmx, paginate, render_page, require, safe_next
from .mcp_servers import server_context
from .yaml_example import yaml_example

PAGE_SIZE = 50


def _decorate(tool):
    """The method and URL the rows and the detail panel show."""
    template = tool.request_template or {}
    tool.method = str(template.get("method") or "GET").upper()
    tool.url = str(template.get("url") or "")
    return tool


@login_required
def tool_list(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    if server.server_type in (McpServer.Type.DIRECT_PROXY, McpServer.Type.HOSTED_STDIO):
        return _proxy_tool_list(request, server)
    qs = selectors.tool_list(user=request.user, mcp_server=server).defer(
        "response_template", "error_response_template", "output_schema", "request_credential")
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q) | Q(title__icontains=q))
    state = request.GET.get("state", "")
    if state in ("enabled", "disabled"):
        qs = qs.filter(enabled=state == "enabled")
    page = paginate(request, qs.order_by("name"), PAGE_SIZE)
    for tool in page.object_list:
        _decorate(tool)
    context = server_context(request, server, "tools")
    context.update({"page": page, "q": q, "state": state,
                    "is_http_to_mcp": server.server_type == McpServer.Type.HTTP_TO_MCP})
    return render_page(request, "console/tool_list.html", context, partial="console/_tool_rows.html"
                       if request.headers.get("HX-Target") == "tool-rows" else None)


def _proxy_tool_list(request, server):
    """What the backend lists right now (cached for a few minutes; Refresh fetches it again)."""
    catalog = proxy_catalog(mcp_server=server, fresh=request.GET.get("refresh") == "1")
    context = server_context(request, server, "tools")
    context.update({"catalog": catalog, "published": sum(1 for t in catalog.tools if t["published"])})
    return render_page(request, "console/proxy_catalog.html", context)


@login_required
def tool(request, pk: int):
    item = _decorate(fetch(selectors.tool_get, user=request.user, pk=pk))
    server = fetch(selectors.mcp_server_get, user=request.user, pk=item.mcp_server_id)
    schema = input_schema_from_args(item.args or [])
    context = server_context(request, server, "tools")
    context.update({"tool": item, "input_schema": json.dumps(schema, indent=2, ensure_ascii=False),
                    "output_schema": json.dumps(item.output_schema, indent=2, ensure_ascii=False)
                    if item.output_schema else ""})
    return render_page(request, "console/tool_detail.html", context, partial="console/_tool_detail.html")


@login_required
@require_POST
def tool_toggle(request, pk: int):
    item = fetch(selectors.tool_get, user=request.user, pk=pk)
    require(request, item.mcp_server.instance.team, MANAGE_CONFIG)
    enabled = request.POST.get("enabled") == "1"
    error = None
    try:
        item = services.tool_set_enabled(actor=request.user, tool=item, enabled=enabled)
    except DomainError as exc:
        error = error_text(exc)
    if is_htmx(request):
        # Only the row changes; the table and its scroll position stay.
        return render(request, "console/_tool_row.html", {"tool": _decorate(item), "row_error": error,
                                                         "server": item.mcp_server, "can_write": True})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Tool {item.name} {'enabled' if enabled else 'disabled'}.")
    return done(request, safe_next(request, reverse("tool_list", args=[item.mcp_server_id])))


@login_required
@require_http_methods(["GET", "POST"])
def tool_delete(request, pk: int):
    item = fetch(selectors.tool_get, user=request.user, pk=pk)
    server = fetch(selectors.mcp_server_get, user=request.user, pk=item.mcp_server_id)
    require(request, server.instance.team, MANAGE_CONFIG)
    error = None
    if request.method == "POST":
        try:
            services.tool_delete(actor=request.user, tool=item)
        except DomainError as exc:
            error = error_text(exc)
        else:
            return done(request, reverse("tool_list", args=[server.pk]), f"Tool {item.name} deleted.")
    context = server_context(request, server, "tools")
    context.update({"object_kind": "tool", "object_name": item.name, "error": error,
                    "consequence": "Clients no longer see it in tools/list, at once.",
                    "action": reverse("tool_delete", args=[pk]), "cancel_url": reverse("tool_list", args=[server.pk])})
    return render_page(request, "console/confirm_delete.html", context, partial="console/_confirm_delete.html")


def _yaml_errors(exc: DomainError) -> tuple[list[dict], list[int]]:
    """Errors as rows that name the line and field, and the lines to mark in the editor."""
    error_text(exc)  # a permission error is a 403 page, not a YAML error
    rows = getattr(exc, "errors", None)
    if rows is None:
        rows = [{"line": None, "field": field, "message": str(msg)}
                for field, msgs in (exc.details or {"non_field": [exc.message]}).items() for msg in msgs]
    lines = sorted({row["line"] for row in rows if row.get("line")})
    return rows, lines


def _require_http_to_mcp(server):
    if server.server_type != McpServer.Type.HTTP_TO_MCP:
        raise Http404("Tools are written by hand only for HTTP-to-MCP servers.")


@login_required
@require_http_methods(["GET", "POST"])
def tool_add(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    _require_http_to_mcp(server)
    example = yaml_example(server)
    form = ToolYamlForm(request.POST or None)
    errors: list[dict] = []
    error_lines: list[int] = []
    status = 200
    if request.method == "POST" and request.POST.get("action") == "example":
        form = ToolYamlForm(initial={"yaml": example})  # "YAML Example" without JavaScript
    elif request.method == "POST" and form.is_valid():
        try:
            result = services.tools_apply_yaml(actor=request.user, mcp_server=server, text=form.cleaned_data["yaml"])
        except DomainError as exc:
            errors, error_lines = _yaml_errors(exc)
            status = 400
        else:
            parts = [f"{len(names)} {label}" for label, names in
                     (("created", result.created), ("updated", result.updated), ("unchanged", result.unchanged))
                     if names]
            names = ", ".join(result.created + result.updated) or "no changes"
            return done(request, reverse("tool_list", args=[server.pk]),
                        f"Tools saved: {', '.join(parts)} ({names}). They are live on the endpoint now.")
    current = selectors.backend_auth_get(mcp_server=server)
    context = server_context(request, server, "tools")
    context.update({
        "form": form, "yaml_errors": errors, "error_lines": error_lines, "example": example,
        "auth_form": BackendAuthForm(initial={"kind": current.kind, "location": current.location or "header",
                                              "param_name": current.param_name}),
        "backend_auth": current, "next": reverse("tool_add", args=[server.pk]),
    })
    return render_page(request, "console/tool_add.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def tool_edit(request, pk: int):
    item = fetch(selectors.tool_get, user=request.user, pk=pk)
    server = fetch(selectors.mcp_server_get, user=request.user, pk=item.mcp_server_id)
    require(request, server.instance.team, MANAGE_CONFIG)
    form = ToolYamlForm(request.POST or None, initial={"yaml": tool_to_yaml(item)})
    errors: list[dict] = []
    error_lines: list[int] = []
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            updated, result = services.tool_update_yaml(actor=request.user, tool=item, text=form.cleaned_data["yaml"])
        except DomainError as exc:
            errors, error_lines = _yaml_errors(exc)
            status = 400
        else:
            if result.unchanged:
                message = f"Tool {updated.name} unchanged."
            elif updated.name != item.name:
                message = f"Tool {item.name} renamed to {updated.name} and saved."
            else:
                message = f"Tool {updated.name} saved; the endpoint serves the new version now."
            return done(request, reverse("tool_list", args=[server.pk]), message)
    context = server_context(request, server, "tools")
    context.update({"tool": item, "form": form, "yaml_errors": errors, "error_lines": error_lines})
    return render_page(request, "console/tool_edit.html", context, status=status)
