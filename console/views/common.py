"""What every console page needs: the current team and region, HTMX-aware rendering, domain errors on forms."""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import url_has_allowed_host_and_scheme

from .. import selectors
from ..errors import DomainError, NotFound
from ..models import Team
from ..permissions import MANAGE_CONFIG, MANAGE_TEAM, OWN_TEAM, role_at_least, role_of

SESSION_TEAM = "console_team"
SESSION_REGION = "console_region"


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def htmx_target(request: HttpRequest) -> str:
    return request.headers.get("HX-Target", "") if is_htmx(request) else ""


def fetch(selector, **kwargs):
    """Call a scoped selector; an object outside the user's teams is simply not there (404, never 403)."""
    try:
        return selector(**kwargs)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def current_team(request: HttpRequest) -> Team | None:
    """The team the user works in now: the one chosen in the switcher, else their first team."""
    if hasattr(request, "_console_team"):
        return request._console_team
    teams = list(selectors.team_list(user=request.user).order_by("name"))
    request._console_teams = teams
    chosen = request.session.get(SESSION_TEAM)
    team = next((t for t in teams if t.pk == chosen), None) or (teams[0] if teams else None)
    request._console_team = team
    return team


def follow_team(request: HttpRequest, team_id: int) -> None:
    """Opening an object of another of the user's teams switches to that team, so the top bar tells the truth."""
    team = current_team(request)
    if team is None or team.pk != team_id:
        request.session[SESSION_TEAM] = team_id
        for candidate in getattr(request, "_console_teams", []):
            if candidate.pk == team_id:
                request._console_team = candidate


def team_role(request: HttpRequest, team: Team | None) -> str | None:
    """The user's role in `team`, asked once per request and team."""
    if team is None:
        return None
    cache = request.__dict__.setdefault("_console_roles", {})
    if team.pk not in cache:
        cache[team.pk] = role_of(user=request.user, team=team)
    return cache[team.pk]


def require(request: HttpRequest, team: Team, at_least: str) -> None:
    """A page the user's role may not use answers 403 (the object itself was found, so it is theirs to know of)."""
    role = team_role(request, team)
    if not role_at_least(role, at_least):
        raise PermissionDenied(f"This needs the {at_least} role (or higher) in team {team.name}; "
                               f"your role is {role or 'none'}.")


def role_context(request: HttpRequest, team: Team | None = None) -> dict[str, Any]:
    """What templates need to hide the buttons a role cannot use."""
    team = team if team is not None else current_team(request)
    role = team_role(request, team)
    return {"role": role, "can_write": role_at_least(role, MANAGE_CONFIG),
            "can_admin": role_at_least(role, MANAGE_TEAM), "can_own": role_at_least(role, OWN_TEAM)}


def current_region(request: HttpRequest) -> str:
    return request.session.get(SESSION_REGION, "")


def market_url() -> str | None:
    for name in ("market", "marketplace:index", "listing_list"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def page_context(request: HttpRequest) -> dict[str, Any]:
    team = current_team(request)
    regions: list[str] = []
    if team is not None:
        regions = sorted(set(
            selectors.instance_list(user=request.user, team=team).order_by().values_list("region", flat=True)
        ))
    return {
        "current_team": team,
        "teams": getattr(request, "_console_teams", []),
        "current_region": current_region(request),
        "regions": regions,
        "market_url": market_url(),
    }


def render_page(request: HttpRequest, template: str, context: dict[str, Any] | None = None, *,
                partial: str | None = None, status: int = 200) -> HttpResponse:
    """The full page, or only `partial` when HTMX asks for a fragment (panels, search results, rows)."""
    context = dict(context or {})
    for key, value in role_context(request).items():
        context.setdefault(key, value)
    if partial and is_htmx(request):
        context["in_drawer"] = htmx_target(request) == "drawer"
        return render(request, partial, context, status=status)
    context.update(page_context(request))
    context.setdefault("partial_template", partial)
    return render(request, template, context, status=status)


def done(request: HttpRequest, url: str, message: str | None = None) -> HttpResponse:
    """After a successful action: a redirect, which HTMX must perform as a full page load."""
    if message:
        messages.success(request, message)
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def form_page(request: HttpRequest, form: forms.BaseForm, context: dict[str, Any], act: Callable[[dict], HttpResponse],
              *, template: str, partial: str, aliases: dict[str, str] | None = None) -> HttpResponse:
    """The console's form flow: a valid POST runs `act(cleaned_data)`, whose answer (usually `done(...)`) is the
    page's; a DomainError it raises lands on the form's fields instead, and the form is shown again (400)."""
    if request.method == "POST" and form.is_valid():
        try:
            return act(form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc, aliases=aliases)
    context["form"] = form
    return render_page(request, template, context, partial=partial, status=400 if form.errors else 200)


def confirm_page(request: HttpRequest, context: dict[str, Any], act: Callable[[], HttpResponse]) -> HttpResponse:
    """The console's confirm-then-act page: GET asks (verb, object_kind, object_name, consequence, action and
    cancel_url in `context`); POST runs `act()` and answers with what it returns, or shows the DomainError it
    raised on the page (400) without acting."""
    error = None
    if request.method == "POST":
        try:
            return act()
        except DomainError as exc:
            error = error_text(exc)
    context["error"] = error
    return render_page(request, "console/confirm_delete.html", context, partial="console/_confirm_delete.html",
                       status=400 if error else 200)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


def apply_domain_error(form: forms.BaseForm, exc: DomainError, *, aliases: dict[str, str] | None = None) -> None:
    """Put a domain error's field map onto the form's fields; what matches no field goes on top of the form.

    A permission error is no form error: it becomes the 403 page, like every page the role may not use."""
    raise_permission(exc)
    aliases = aliases or {}
    for field, msgs in (exc.details or {}).items():
        if isinstance(msgs, str):
            msgs = [msgs]
        name = aliases.get(field, field)
        target = name if name in form.fields else None
        for msg in msgs:
            form.add_error(target, str(msg))
    if not exc.details:
        form.add_error(None, exc.message)


def raise_permission(exc: DomainError) -> None:
    if exc.code == "permission_denied":
        raise PermissionDenied(exc.message) from exc
    if exc.code == "not_found":
        raise Http404(exc.message) from exc


def error_text(exc: DomainError) -> str:
    """A domain error as one line for a confirmation page or a message; permission errors become a 403."""
    raise_permission(exc)
    return " ".join(str(m) for msgs in (exc.details or {}).values() for m in
                    (msgs if isinstance(msgs, list) else [msgs])) or exc.message


def paginate(request: HttpRequest, queryset, per_page: int):
    """A page of the queryset plus a query string for the other pages that keeps the filters."""
    page = Paginator(queryset, per_page).get_page(request.GET.get("page"))
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    page.querystring = urlencode(params)
    return page


def public_base_url(request: HttpRequest) -> str:
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{request.scheme}://{request.get_host()}"


class DomainErrorMiddleware(MiddlewareMixin):
    """The safety net for pages: a domain error no view caught is a 403 or a 404 page, never a 500.

    MiddlewareMixin keeps it usable by async views without a switch to a thread."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.views import defaults

        if not isinstance(exception, DomainError):
            return None
        if exception.code == "permission_denied":
            return defaults.permission_denied(request, PermissionDenied(exception.message))
        if exception.code == "not_found":
            return defaults.page_not_found(request, Http404(exception.message))
        return None
