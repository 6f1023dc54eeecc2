"""Backend services of an instance: list with reachability, create (also in place from the MCP server panel),
edit, delete."""
from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import selectors, services
from ..errors import DomainError, NotFound
from ..forms import CircuitBreakerForm, McpServerForm, ServiceForm
from ..models import BackendService
from ..probes import service_reachability
from ..permissions import MANAGE_CONFIG
from .common import apply_domain_error, done, error_text, fetch, form_page, is_htmx, paginate, render_page, require
from .instances import instance_context

PAGE_SIZE = 50


@login_required
def service_list(request, pk: int):
    inst = fetch(selectors.instance_get, user=request.user, pk=pk)
    qs = selectors.service_list(user=request.user, instance=inst).annotate(
        mcp_server_count=Count("mcp_servers", distinct=True)).select_related("circuit_breaker")
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(base_url__icontains=q) | Q(description__icontains=q))
    protocol = request.GET.get("protocol", "")
    if protocol in BackendService.Protocol.values:
        qs = qs.filter(protocol=protocol)
    context = instance_context(request, inst, "services")
    page = paginate(request, qs.order_by("name"), PAGE_SIZE)
    for service in page.object_list:
        breaker = getattr(service, "circuit_breaker", None)
        service.circuit_enabled = bool(breaker and breaker.enabled)
    with_circuit_states(list(page.object_list))
    context.update({"page": page, "q": q, "protocol": protocol, "protocols": BackendService.Protocol.choices})
    return render_page(request, "console/service_list.html", context, partial="console/_service_rows.html")


@login_required
@require_http_methods(["GET", "POST"])
def service_add(request, pk: int):
    inst = fetch(selectors.instance_get, user=request.user, pk=pk)
    require(request, inst.team, MANAGE_CONFIG)
    inline = request.POST.get("inline") == "1"
    if inline:
        return _service_add_inline(request, inst)
    form = ServiceForm(request.POST or None, initial={"protocol": request.GET.get("protocol") or "http"})
    if request.method == "POST" and form.is_valid():
        try:
            service = services.service_create(actor=request.user, instance=inst, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("service_list", args=[inst.pk]), f"Service {service.name} created.")
    context = instance_context(request, inst, "services")
    context.update({"form": form, "title": "Create service", "action": reverse("service_add", args=[inst.pk]),
                    "cancel_url": reverse("service_list", args=[inst.pk])})
    return render_page(request, "console/service_form.html", context, partial="console/_service_form.html",
                       status=400 if form.errors else 200)


def _service_add_inline(request, inst):
    """Create a backend service from inside the Create MCP Service panel; answers with the refreshed service picker."""
    protocol = request.POST.get("new_service_protocol") or BackendService.Protocol.HTTP
    error: dict[str, list[str]] = {}
    created = None
    try:
        created = services.service_create(
            actor=request.user, instance=inst, name=request.POST.get("new_service_name", ""),
            base_url=request.POST.get("new_service_url", ""), protocol=protocol)
    except DomainError as exc:
        error_text(exc)  # a permission error is a 403, not an inline error
        error = exc.details or {"non_field": [exc.message]}
    selected = created.pk if created else request.POST.get("backend_service")
    server_form = McpServerForm(services=list(selectors.service_list(user=request.user, instance=inst)),
                                initial={"backend_service": selected})
    html = render_to_string("console/_backend_picker.html", {
        "form": server_form, "instance": inst, "inline_errors": error, "created": created,
        "new_service_name": "" if created else request.POST.get("new_service_name", ""),
        "new_service_url": "" if created else request.POST.get("new_service_url", ""),
        "new_service_protocol": protocol}, request=request)
    return HttpResponse(html, status=200 if created or is_htmx(request) else 400)


@login_required
@require_http_methods(["GET", "POST"])
def service_edit(request, pk: int):
    service = fetch(selectors.service_get, user=request.user, pk=pk)
    require(request, service.instance.team, MANAGE_CONFIG)
    form = ServiceForm(request.POST or None, initial={
        "name": service.name, "protocol": service.protocol, "base_url": service.base_url,
        "description": service.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.service_update(actor=request.user, service=service, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("service_list", args=[service.instance_id]), f"Service {service.name} saved.")
    context = instance_context(request, service.instance, "services")
    context.update({"form": form, "title": f"Edit service {service.name}", "service": service,
                    "action": reverse("service_edit", args=[pk]),
                    "cancel_url": reverse("service_list", args=[service.instance_id])})
    return render_page(request, "console/service_form.html", context, partial="console/_service_form.html",
                       status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def service_delete(request, pk: int):
    service = fetch(selectors.service_get, user=request.user, pk=pk)
    require(request, service.instance.team, MANAGE_CONFIG)
    error = None
    if request.method == "POST":
        try:
            services.service_delete(actor=request.user, service=service)
        except DomainError as exc:
            error = error_text(exc)
        else:
            return done(request, reverse("service_list", args=[service.instance_id]),
                        f"Service {service.name} deleted.")
    context = instance_context(request, service.instance, "services")
    context.update({"object_kind": "backend service", "object_name": service.name, "error": error,
                    "consequence": "MCP servers cannot use it any more (a service in use cannot be deleted).",
                    "action": reverse("service_delete", args=[pk]),
                    "cancel_url": reverse("service_list", args=[service.instance_id])})
    return render_page(request, "console/confirm_delete.html", context, partial="console/_confirm_delete.html",
                       status=400 if error else 200)


async def service_reachability_badge(request, pk: int):
    """The reachability badge of one service, loaded by each row after the page (the probe may take seconds)."""
    user = await request.auser()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        service = await sync_to_async(selectors.service_get)(user=user, pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    result = await service_reachability(service=service, fresh=request.GET.get("fresh") == "1")
    # No request context: its processors would touch the user synchronously.
    return HttpResponse(render_to_string("console/_reachability.html", {"service": service, "result": result}))


@login_required
@require_http_methods(["GET", "POST"])
def service_circuit_breaker(request, pk: int):
    service = fetch(selectors.service_get, user=request.user, pk=pk)
    require(request, service.instance.team, MANAGE_CONFIG)
    breaker = selectors.circuit_breaker_get(service=service)
    form = CircuitBreakerForm(request.POST or None, initial={
        "enabled": breaker.enabled, "failure_threshold": breaker.failure_threshold,
        "open_seconds": breaker.open_seconds})

    def act(data: dict) -> HttpResponse:
        services.service_set_circuit_breaker(actor=request.user, service=service, **data)
        state = "on" if data["enabled"] else "off"
        return done(request, reverse("service_list", args=[service.instance_id]),
                    f"Circuit breaking of {service.name} is {state}.")

    context = instance_context(request, service.instance, "services")
    context.update({"title": f"Circuit breaking of {service.name}", "service": service,
                    "action": reverse("service_circuit_breaker", args=[pk]),
                    "cancel_url": reverse("service_list", args=[service.instance_id])})
    return form_page(request, form, context, act, template="console/service_circuit_breaker.html",
                     partial="console/_service_circuit_breaker_form.html")


def with_circuit_states(services_on_page: list[BackendService]) -> None:
    """Attach each service's circuit breaking (setting and last reported state) for the Services page."""
    from gateway.circuit import circuit_states

    enabled = [s.pk for s in services_on_page if getattr(s, "circuit_enabled", False)]
    states = circuit_states(enabled)
    for service in services_on_page:
        service.circuit = states.get(service.pk, {"state": "closed"}) if service.pk in enabled else None
