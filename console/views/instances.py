"""Instances: the list (filtered by team and region), create, edit, delete, and an instance's overview."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import selectors, services
from ..errors import DomainError
from ..forms import InstanceForm
from ..permissions import MANAGE_TEAM, role_at_least
from .common import (
    apply_domain_error, current_region, current_team, done, error_text, fetch, follow_team, paginate, public_base_url,
    render_page, require, team_role,
)

PAGE_SIZE = 50


def instance_context(request, instance, section: str) -> dict:
    """What the instance's left navigation needs."""
    follow_team(request, instance.team_id)
    return {"instance": instance, "section": section}


@login_required
def instance_list(request):
    team = current_team(request)
    qs = selectors.instance_list(user=request.user, team=team)
    if team is None:  # a user in no team sees nothing, not everything
        qs = qs.none()
    region = current_region(request)
    if region:
        qs = qs.filter(region=region)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    page = paginate(request, qs.order_by("name"), PAGE_SIZE)
    return render_page(request, "console/instance_list.html", {"page": page, "q": q},
                       partial="console/_instance_rows.html")


@login_required
@require_http_methods(["GET", "POST"])
def instance_add(request):
    # Only teams where the user may create instances are offered; none at all is a 403.
    teams = [t for t in selectors.team_list(user=request.user).order_by("name")
             if role_at_least(team_role(request, t), MANAGE_TEAM)]
    team = current_team(request)
    if team is not None and team not in teams:
        if not teams:
            require(request, team, MANAGE_TEAM)
        team = teams[0]
    form = InstanceForm(request.POST or None, teams=teams, staff=request.user.is_superuser,
                        initial={"region": current_region(request) or "local", "team": team.pk if team else None})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = next((t for t in teams if t.pk == data.get("team")), team)
        try:
            if chosen is None:
                raise DomainError("Join a team first.", {"non_field": ["You are not a member of any team."]})
            instance = services.instance_create(actor=request.user, team=chosen, name=data["name"],
                                                region=data["region"], description=data["description"],
                                                is_default=data.get("is_default", False))
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("instance", args=[instance.pk]), f"Instance {instance.name} created.")
    return render_page(request, "console/instance_form.html", {"form": form, "title": "Create instance",
                                                               "action": reverse("instance_add"),
                                                               "cancel_url": reverse("instance_list")},
                       partial="console/_instance_form.html", status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def instance_edit(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    require(request, instance.team, MANAGE_TEAM)
    form = InstanceForm(request.POST or None, staff=request.user.is_superuser, initial={
        "name": instance.name, "region": instance.region, "description": instance.description,
        "is_default": instance.is_default})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.instance_update(actor=request.user, instance=instance, name=data["name"], region=data["region"],
                                     description=data["description"], is_default=data.get("is_default"))
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("instance", args=[instance.pk]), f"Instance {instance.name} saved.")
    return render_page(request, "console/instance_form.html", {
        "form": form, "title": f"Edit instance {instance.name}", "action": reverse("instance_edit", args=[pk]),
        "cancel_url": reverse("instance", args=[pk]),
        "instance": instance}, partial="console/_instance_form.html", status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def instance_delete(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    require(request, instance.team, MANAGE_TEAM)
    error = None
    if request.method == "POST":
        try:
            services.instance_delete(actor=request.user, instance=instance)
        except DomainError as exc:
            error = error_text(exc)
        else:
            return done(request, reverse("instance_list"), f"Instance {instance.name} deleted.")
    return render_page(request, "console/confirm_delete.html", {
        "object_kind": "instance", "object_name": instance.name, "error": error,
        "consequence": f"Its {instance.mcp_server_count} MCP server(s), their tools and its backend services are "
                       "deleted too; their endpoints stop answering at once.",
        "action": reverse("instance_delete", args=[pk]), "cancel_url": reverse("instance", args=[pk])},
        partial="console/_confirm_delete.html")


@login_required
def instance(request, pk: int):
    inst = fetch(selectors.instance_get, user=request.user, pk=pk)
    service_count = selectors.service_list(user=request.user, instance=inst).count()
    servers = selectors.mcp_server_list(user=request.user, instance=inst)
    stats = servers.order_by().aggregate(enabled=Count("pk", filter=Q(enabled=True)), tools=Sum("tool_count"))
    base = public_base_url(request)
    context = instance_context(request, inst, "overview")
    context.update({
        "service_count": service_count, "enabled_count": stats["enabled"], "tool_count": stats["tools"] or 0,
        "base_url": base, "no_dns_prefix": f"{base}/instances/{inst.name}/mcp-servers/",
    })
    return render_page(request, "console/instance_overview.html", context)

