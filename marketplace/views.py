"""The market's pages: browse and search, a listing, Get endpoint, My subscriptions, submissions and review."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import selectors as console_selectors
from console.errors import DomainError
from console.permissions import MANAGE_CONFIG, MANAGE_TEAM, role_at_least, role_of
from console.views.common import (
    current_team, done, error_text, fetch, paginate, public_base_url, raise_permission, render_page, require,
)

from . import selectors, services
from .models import Category, Submission
from .present import subscription_client_configs, subscription_endpoints
from .readme import render_readme

SERVER_JSON_MAX = 256 * 1024
SORT_CHOICES = [("popular", "Most popular"), ("new", "Newest"), ("name", "Name")]


def _browsable(view):
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not selectors.may_browse(request.user):
            return redirect(f"{reverse('login')}?next={request.get_full_path()}")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@_browsable
def market(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:selectors.QUERY_MAX]
    category = request.GET.get("category", "")[:40]
    sort = request.GET.get("sort", "")
    results = selectors.listing_search(q=q, category=category, sort=sort)
    page = Paginator(results, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    page.querystring = urlencode({k: v for k, v in (("q", q), ("category", category), ("sort", sort)) if v})
    return render_page(request, "market/market.html", {
        "page": page, "q": q, "category": category, "sort": sort, "sorts": SORT_CHOICES,
        "categories": selectors.category_list(), "section": "browse",
    }, partial="market/_listing_grid.html")


def _listing_context(request: HttpRequest, listing, **extra) -> dict:
    versions = list(selectors.listing_versions(listing=listing))
    latest = versions[0] if versions else None
    context = {"listing": listing, "latest": latest, "versions": versions, "section": "browse",
               "readme_html": render_readme(latest.readme if latest else ""),
               "tools": [dict(t, schema_text=json.dumps(t.get("inputSchema", {}), indent=2)) for t in
                         (latest.tools if latest else [])]}
    if request.user.is_authenticated:
        teams = list(console_selectors.team_list(user=request.user).order_by("name"))
        instances = list(console_selectors.instance_list(user=request.user).order_by("name"))
        team = current_team(request)
        # Only the teams where the user may make consumers and keys (admins and owners) are offered.
        teams = [t for t in teams if role_at_least(role_of(user=request.user, team=t), MANAGE_TEAM)]
        instances = [i for i in instances if i.team_id in {t.pk for t in teams}]
        team = team if team in teams else (teams[0] if teams else None)
        default_instance = next((i for i in instances if team and i.team_id == team.pk), None)
        context.update({"teams": teams, "instances": instances, "chosen_team": team,
                        "chosen_instance": default_instance,
                        "subscription": selectors.subscription_of(user=request.user, team=team, listing=listing)
                        if team else None})
    context.update(extra)
    return context


@_browsable
def listing(request: HttpRequest, slug: str) -> HttpResponse:
    item = fetch(selectors.listing_get, slug=slug)
    return render_page(request, "market/listing.html", _listing_context(request, item))


@login_required
@require_POST
def listing_subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    item = fetch(selectors.listing_get, slug=slug)
    config = {key[len("config."):]: value for key, value in request.POST.items() if key.startswith("config.")}
    try:
        team = console_selectors.team_get(user=request.user, pk=int(request.POST.get("team") or 0))
        instance = console_selectors.instance_get(user=request.user, pk=int(request.POST.get("instance") or 0))
        result = services.listing_subscribe(actor=request.user, listing=item, team=team, instance=instance,
                                            config=config)
    except (ValueError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.code in ("permission_denied", "not_found"):
            raise_permission(exc)
        message = "Choose a team and an instance." if isinstance(exc, ValueError) else error_text(exc)
        errors = exc.details if isinstance(exc, DomainError) else {}
        context = _listing_context(request, item, form_error=message, field_errors=errors,
                                   given={k: v for k, v in config.items()
                                          if not any(f["name"] == k and f["secret"]
                                                     for f in (item.latest_version().config_fields or []))})
        return render_page(request, "market/listing.html", context, status=400)
    if not result.created:
        messages.info(request, f"You already subscribed to {item.title}: here is that subscription.")
        return redirect("market_subscription", result.subscription.pk)
    return _show_endpoint(request, result.subscription, result.api_key,
                          f"Subscribed to {item.title}. Copy the key now: it is shown only once.")


def _show_endpoint(request: HttpRequest, subscription, api_key: str | None, notice: str = "",
                   status: int = 200) -> HttpResponse:
    base = public_base_url(request)
    may_manage = role_at_least(role_of(user=request.user, team=subscription.team), MANAGE_TEAM)
    return render_page(request, "market/subscription.html", {
        "subscription": subscription, "api_key": api_key, "notice": notice, "section": "subscriptions",
        "may_manage": may_manage,
        "endpoints": subscription_endpoints(subscription, base),
        "client_configs": subscription_client_configs(subscription, base, api_key),
        "newer": _newer(subscription),
    }, status=status)


def _newer(subscription):
    latest = subscription.listing.latest_version()
    return latest if latest and latest.number > subscription.version.number else None


@login_required
def subscription_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.subscription_list(user=request.user).order_by("listing__title", "pk")
    for row in rows:
        row.newer = _newer(row)
    return render_page(request, "market/subscription_list.html", {
        "page": paginate(request, rows, 25), "section": "subscriptions"})


@login_required
def subscription(request: HttpRequest, pk: int) -> HttpResponse:
    return _show_endpoint(request, fetch(selectors.subscription_get, user=request.user, pk=pk), None)


def _act(request: HttpRequest, act):
    try:
        return act()
    except DomainError as exc:
        raise_permission(exc)
        messages.error(request, error_text(exc))
        return None


@login_required
@require_POST
def subscription_rotate_key(request: HttpRequest, pk: int) -> HttpResponse:
    row = fetch(selectors.subscription_get, user=request.user, pk=pk)
    secret = _act(request, lambda: services.subscription_rotate_key(actor=request.user, subscription=row))
    if secret is None:
        return redirect("market_subscription", pk)
    return _show_endpoint(request, row, secret, "A new key: the old one no longer works. Copy it now.")


@login_required
@require_POST
def subscription_upgrade(request: HttpRequest, pk: int) -> HttpResponse:
    row = fetch(selectors.subscription_get, user=request.user, pk=pk)
    if _act(request, lambda: services.subscription_upgrade(actor=request.user, subscription=row)) is not None:
        messages.success(request, f"Upgraded to version {row.version.version}; endpoint and key are unchanged.")
    return redirect("market_subscription", pk)


@login_required
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    from console.views.common import confirm_page

    row = fetch(selectors.subscription_get, user=request.user, pk=pk)
    require(request, row.team, MANAGE_TEAM)

    def act():
        services.subscription_delete(actor=request.user, subscription=row)
        return done(request, reverse("market_subscriptions"), f"Unsubscribed from {row.listing.title}.")

    return confirm_page(request, {
        "verb": "Unsubscribe", "object_kind": "subscription", "object_name": row.listing.title,
        "consequence": "Its MCP server, consumer and API key are deleted; clients using the key are refused.",
        "action": reverse("market_subscription_delete", args=[pk]),
        "cancel_url": reverse("market_subscription", args=[pk])}, act)


# ---------------------------------------------------------------- submissions and review

def _submitter_teams(request: HttpRequest) -> list:
    """The teams whose members may submit (members and above)."""
    return [t for t in console_selectors.team_list(user=request.user).order_by("name")
            if role_at_least(role_of(user=request.user, team=t), MANAGE_CONFIG)]


@login_required
def submission_list(request: HttpRequest) -> HttpResponse:
    teams = {t.pk for t in console_selectors.team_list(user=request.user)}
    own = [s for s in selectors.submission_list(user=request.user) if s.team_id in teams]
    return render_page(request, "market/submission_list.html", {
        "submissions": own, "section": "submissions", "may_submit": bool(_submitter_teams(request))})


@login_required
def submission_add(request: HttpRequest) -> HttpResponse:
    teams = _submitter_teams(request)
    if not teams:
        raise PermissionDenied("Submitting a listing needs the member role (or higher) in a team.")
    servers = list(console_selectors.mcp_server_list(user=request.user).filter(
        server_type="http_to_mcp", instance__team__in=teams).order_by("instance__name", "name"))
    own = [s for s in selectors.submission_list(user=request.user) if s.team_id in {t.pk for t in teams}]
    context = {"teams": teams, "servers": servers, "categories": Category.objects.all(),
               "section": "submissions", "given": {}, "own_listings": sorted({s.listing.slug for s in own})}
    if request.method == "POST":
        data = {k: request.POST.get(k, "") for k in ("slug", "title", "summary", "category", "tags", "readme",
                                                    "version", "changelog", "tool_yaml", "listing", "publisher")}
        if not data["listing"]:
            data.pop("listing")
        source = request.POST.get("source", "")
        try:
            team = console_selectors.team_get(user=request.user, pk=int(request.POST.get("team") or 0))
            server = None
            if source == Submission.Source.MCP_SERVER:
                server = console_selectors.mcp_server_get(user=request.user,
                                                          pk=int(request.POST.get("mcp_server") or 0))
            if source == Submission.Source.SERVER_JSON:
                upload = request.FILES.get("server_json_file")
                text = upload.read(SERVER_JSON_MAX + 1) if upload else request.POST.get("server_json") or ""
                if len(text) > SERVER_JSON_MAX:
                    raise DomainError("The server.json is too large.", {"server_json": ["At most 256 kB."]})
                try:
                    data["server_json"] = json.loads(text)
                except ValueError as exc:
                    raise DomainError("The server.json is not JSON.", {"server_json": [str(exc)[:200]]}) from exc
            if source == Submission.Source.OPENAPI:
                upload = request.FILES.get("openapi_file")
                limit = int(getattr(settings, "OPENAPI_IMPORT_MAX_BYTES", 20 * 1024 * 1024))
                data["openapi"] = upload.read(limit + 1) if upload else request.POST.get("openapi", "")
                data["openapi_name"] = upload.name if upload else ""
            services.submission_create(actor=request.user, team=team, source=source, data=data, mcp_server=server)
        except ValueError:
            context.update(form_error="Choose a team (and an MCP server).", given=_given(data))
        except DomainError as exc:
            if exc.code in ("permission_denied", "not_found"):
                raise_permission(exc)
            detail = error_text(exc)
            context.update(form_error=f"{exc.message} {detail}".strip(), given=_given(data))
        else:
            return done(request, reverse("market_submissions"), "Submitted: staff will review it.")
        return render_page(request, "market/submission_form.html", context, status=400)
    return render_page(request, "market/submission_form.html", context)


def _given(data: dict) -> dict:
    """What the form shows back: the text fields (an uploaded file is not echoed)."""
    return {k: v for k, v in data.items() if isinstance(v, str)}


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise Http404("No such page.")
    rows = selectors.submission_list(user=request.user)
    return render_page(request, "market/review.html", {
        "pending": [s for s in rows if s.status == Submission.Status.PENDING],
        "reviewed": [s for s in rows if s.status != Submission.Status.PENDING][:50], "section": "review"})


@login_required
@require_POST
def review_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    if not request.user.is_staff:
        raise Http404("No such page.")
    row = fetch(selectors.submission_get, user=request.user, pk=pk)
    if decision == "approve":
        ok = _act(request, lambda: services.submission_approve(actor=request.user, submission=row))
        text = f"Approved {row.listing.title} {row.version.version}: it is listed."
    else:
        ok = _act(request, lambda: services.submission_reject(actor=request.user, submission=row,
                                                              reason=request.POST.get("reason", "")))
        text = f"Rejected {row.listing.title} {row.version.version}."
    if ok is not None:
        messages.success(request, text)
    return redirect("market_review")
