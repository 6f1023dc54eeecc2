"""MCP Management: the grid of MCP servers, the Create MCP Service panel, a server's page, edit, enable, delete,
Debug."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors, services
from ..errors import DomainError
from ..forms import BackendAuthForm, McpServerForm
from ..models import McpServer
from ..permissions import MANAGE_CONFIG
from .common import (
    apply_domain_error, done, error_text, fetch, htmx_target, paginate, public_base_url, render_page, require, safe_next,
)
from .endpoints import client_configs, endpoints, no_dns_path, primary_endpoint, server_path
from ..services.hosted import hosted_variables_of, hosted_variables_shown
from .instances import instance_context

PAGE_SIZE = 24
TYPE_FILTERS = [("", "All types")] + list(McpServer.Type.choices)
STATUS_FILTERS = [("", "Any status"), ("enabled", "Enabled"), ("disabled", "Disabled")]


@login_required
def mcp_server_list(request, pk: int):
    inst = fetch(selectors.instance_get, user=request.user, pk=pk)
    qs = selectors.mcp_server_list(user=request.user, instance=inst).prefetch_related("security_schemes")
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q) | Q(domains__host__icontains=q)).distinct()
    server_type = request.GET.get("type", "")
    if server_type in McpServer.Type.values:
        qs = qs.filter(server_type=server_type)
    status = request.GET.get("status", "")
    if status in ("enabled", "disabled"):
        qs = qs.filter(enabled=status == "enabled")
    page = paginate(request, qs.order_by("name"), PAGE_SIZE)
    for server in page.object_list:
        server.backend_auth = selectors.backend_auth_get(mcp_server=server)
        server.endpoint_path = no_dns_path(server) if not server.instance.is_default else server_path(server)
    context = instance_context(request, inst, "mcp")
    context.update({"page": page, "q": q, "type": server_type, "status": status,
                    "type_filters": TYPE_FILTERS, "status_filters": STATUS_FILTERS})
    partial = "console/_mcp_server_grid.html" if htmx_target(request) == "server-grid" else None
    return render_page(request, "console/mcp_server_list.html", context, partial=partial)


def _server_form_context(request, inst, form, **extra) -> dict:
    context = instance_context(request, inst, "mcp")
    context.update({"form": form, "base_url": public_base_url(request)})
    context.update(extra)
    return context


@login_required
@require_http_methods(["GET", "POST"])
def mcp_server_add(request, pk: int):
    inst = fetch(selectors.instance_get, user=request.user, pk=pk)
    require(request, inst.team, MANAGE_CONFIG)
    backends = list(selectors.service_list(user=request.user, instance=inst))
    form = McpServerForm(request.POST or None, services=backends,
                         hosted_entries=selectors.hosted_entry_list(user=request.user).filter(state="installed"),
                         initial={"server_type": request.GET.get("type") or McpServer.Type.HTTP_TO_MCP,
                                  "backend_transport": McpServer.Transport.STREAMABLE_HTTP})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        backend = form.backend()
        config = {"baseUrl": backend.base_url} if backend and data["server_type"] == McpServer.Type.HTTP_TO_MCP else {}
        try:
            server = services.mcp_server_create(
                actor=request.user, instance=inst, name=data["name"], description=data["description"],
                server_type=data["server_type"], domains=data["domains"], backend_service=backend,
                backend_transport=data["backend_transport"], backend_path=data["backend_path"], config=config,
                timeout_seconds=data["timeout_seconds"], enabled=request.POST.get("publish", "1") == "1",
                allow_tools=form.allow_list() if data["server_type"] == McpServer.Type.DIRECT_PROXY else None,
                **({"hosted_entry": form.hosted(), "hosted_variables": data["hosted_variables"]}
                   if data["server_type"] == McpServer.Type.HOSTED_STDIO else {}))
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            state = "published" if server.enabled else "saved (disabled)"
            next_url = (reverse("tool_add", args=[server.pk]) if server.server_type == McpServer.Type.HTTP_TO_MCP
                        else reverse("mcp_server", args=[server.pk]))
            return done(request, next_url, f"MCP server {server.name} {state}.")
    context = _server_form_context(request, inst, form, title="Create MCP Service",
                                   action=reverse("mcp_server_add", args=[inst.pk]),
                                   cancel_url=reverse("mcp_server_list", args=[inst.pk]))
    return render_page(request, "console/mcp_server_form.html", context, partial="console/_mcp_server_form.html",
                       status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def mcp_server_edit(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    inst = server.instance
    require(request, inst.team, MANAGE_CONFIG)
    backends = list(selectors.service_list(user=request.user, instance=inst))
    hosted_values = hosted_variables_of(server) if server.server_type == McpServer.Type.HOSTED_STDIO else {}
    secret = {v["name"] for v in (server.hosted_entry.variables if server.hosted_entry else []) if v.get("secret")}
    form = McpServerForm(request.POST or None, services=backends, editing=True,
                         hosted_entries=selectors.hosted_entry_list(user=request.user).filter(
                             Q(state="installed") | Q(pk=server.hosted_entry_id)), initial={
        "hosted_entry": server.hosted_entry_id,
        # Plain values are shown to edit; secrets never leave the server.
        "hosted_variables": "\n".join(f"{k}={v}" for k, v in hosted_values.items() if k not in secret),
        "name": server.name, "description": server.description,
        "domains": "\n".join(d.host for d in server.domains.all()), "backend_service": server.backend_service_id,
        "backend_transport": server.backend_transport, "backend_path": server.backend_path,
        "timeout_seconds": server.timeout_seconds, "allow_tools": "\n".join(server.allow_tools or [])})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        backend = form.backend()
        config = None
        old = server.backend_service
        if server.server_type == McpServer.Type.HTTP_TO_MCP and backend and backend != old:
            # config.baseUrl follows the backend when it was the backend's URL (or unset), not when set by hand.
            current = (server.config or {}).get("baseUrl")
            if current is None or (old is not None and current == old.base_url):
                config = {**(server.config or {}), "baseUrl": backend.base_url}
        try:
            services.mcp_server_update(
                actor=request.user, mcp_server=server, name=data["name"], description=data["description"],
                domains=data["domains"], backend_service=backend, backend_transport=data["backend_transport"],
                backend_path=data["backend_path"], config=config, timeout_seconds=data["timeout_seconds"],
                **({"allow_tools": form.allow_list()} if server.server_type == McpServer.Type.DIRECT_PROXY else {}),
                **({"hosted_entry": form.hosted(), "hosted_variables": data["hosted_variables"]}
                   if server.server_type == McpServer.Type.HOSTED_STDIO else {}))
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("mcp_server", args=[server.pk]), f"MCP server {server.name} saved.")
    context = _server_form_context(request, inst, form, title=f"Edit MCP server {server.name}", server=server,
                                   server_type=server.server_type, action=reverse("mcp_server_edit", args=[pk]),
                                   cancel_url=reverse("mcp_server", args=[pk]))
    return render_page(request, "console/mcp_server_form.html", context, partial="console/_mcp_server_form.html",
                       status=400 if form.errors else 200)


@login_required
@require_POST
def mcp_server_toggle(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    enabled = request.POST.get("enabled") == "1"
    next_url = safe_next(request, reverse("mcp_server", args=[pk]))
    try:
        services.mcp_server_update(actor=request.user, mcp_server=server, enabled=enabled)
    except DomainError as exc:
        messages.error(request, error_text(exc))
        return done(request, next_url)
    state = "enabled: its endpoint answers" if enabled else "disabled: its endpoint stops answering"
    return done(request, next_url, f"MCP server {server.name} {state}.")


@login_required
@require_http_methods(["GET", "POST"])
def mcp_server_delete(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    error = None
    if request.method == "POST":
        try:
            services.mcp_server_delete(actor=request.user, mcp_server=server)
        except DomainError as exc:
            error = error_text(exc)
        else:
            return done(request, reverse("mcp_server_list", args=[server.instance_id]),
                        f"MCP server {server.name} deleted.")
    context = instance_context(request, server.instance, "mcp")
    context.update({"object_kind": "MCP server", "object_name": server.name, "error": error,
                    "consequence": f"Its {server.tool_count} tool(s) are deleted and its endpoints stop answering "
                                   "at once; connected clients lose it.",
                    "action": reverse("mcp_server_delete", args=[pk]),
                    "cancel_url": reverse("mcp_server", args=[pk])})
    return render_page(request, "console/confirm_delete.html", context, partial="console/_confirm_delete.html")


def server_context(request, server, tab: str) -> dict:
    context = instance_context(request, server.instance, "mcp")
    context.update({"server": server, "tab": tab})
    return context


@login_required
def mcp_server(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    base = public_base_url(request)
    all_endpoints = endpoints(server, base)
    chosen = request.GET.get("endpoint", "")
    primary = (all_endpoints[int(chosen)] if chosen.isdigit() and int(chosen) < len(all_endpoints)
               else primary_endpoint(server, base))
    context = server_context(request, server, "info")
    context.update({
        "endpoints": all_endpoints, "primary": primary, "client_configs": client_configs(server, primary),
        "backend_auth": selectors.backend_auth_get(mcp_server=server),
    })
    if server.server_type == McpServer.Type.HOSTED_STDIO:
        from ..api.hosted import hosted_status

        context["hosted"] = hosted_status(server)
        context["hosted_variables"] = hosted_variables_shown(server)
        if htmx_target(request) == "hosted-status":
            return render_page(request, "console/_hosted_status.html", context)
    return render_page(request, "console/mcp_server_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def mcp_server_backend_auth(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_CONFIG)
    current = selectors.backend_auth_get(mcp_server=server)
    form = BackendAuthForm(request.POST or None, initial={
        "kind": current.kind, "location": current.location or "header", "param_name": current.param_name})
    next_url = safe_next(request, reverse("tool_add", args=[pk]))
    if request.method == "POST" and form.is_valid():
        try:
            result = services.mcp_server_set_backend_auth(actor=request.user, mcp_server=server, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            message = ("Backend authentication turned off." if result.kind == "none"
                       else f"Backend authentication saved ({dict(BackendAuthForm.KIND_CHOICES)[result.kind]}).")
            return done(request, next_url, message)
    context = server_context(request, server, "tools")
    context.update({"auth_form": form, "backend_auth": current, "next": next_url, "cancel_url": next_url,
                    "title": "Backend authentication"})
    return render_page(request, "console/backend_auth.html", context, partial="console/_backend_auth_form.html",
                       status=400 if form.errors else 200)


@login_required
def mcp_server_debug(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    context = server_context(request, server, "debug")
    # Same origin as the page, so the browser may call it; the no-DNS form works for every instance.
    context.update({"debug_endpoint": no_dns_path(server),
                    "consumer_auth": selectors.consumer_auth_get(mcp_server=server),
                    "debug_consumers": (selectors.consumer_list(user=request.user, team=server.instance.team)
                                        if server.consumer_auth_enabled else [])})
    return render_page(request, "console/mcp_server_debug.html", context)
