"""The catalogue of hosted stdio servers, for staff: list, add, edit, install or reinstall, an entry's state and log."""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors
from ..errors import DomainError
from ..forms import HostedEntryForm
from ..services import hosted as hosted_services
from .common import apply_domain_error, done, error_text, fetch, htmx_target, render_page

FORM_FIELDS = hosted_services.ENTRY_FIELDS


def _require_staff(request) -> None:
    if not selectors.is_staff(request.user):
        raise PermissionDenied("Only staff manage the catalogue of hosted stdio servers.")


@login_required
def hosted_entry_list(request):
    _require_staff(request)
    entries = selectors.hosted_entry_list(user=request.user).order_by("slug")
    return render_page(request, "console/hosted_entry_list.html", {"entries": entries})


def _form_page(request, form, *, title: str, action: str, cancel_url: str, entry=None):
    return render_page(request, "console/hosted_entry_form.html",
                       {"form": form, "title": title, "action": action, "cancel_url": cancel_url, "entry": entry},
                       status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def hosted_entry_add(request):
    _require_staff(request)
    form = HostedEntryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = hosted_services.hosted_entry_create(actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("hosted_entry", args=[entry.pk]),
                        f"Entry {entry.slug} added; installing {entry.package}@{entry.version}.")
    return _form_page(request, form, title="Add a hosted stdio server", action=reverse("hosted_entry_add"),
                      cancel_url=reverse("hosted_entry_list"))


@login_required
@require_http_methods(["GET", "POST"])
def hosted_entry_edit(request, pk: int):
    _require_staff(request)
    entry = fetch(selectors.hosted_entry_get, user=request.user, pk=pk)
    initial = {name: getattr(entry, name) for name in FORM_FIELDS}
    initial["args"] = "\n".join(entry.args or [])
    initial["variables"] = json.dumps(entry.variables or [], indent=1) if entry.variables else ""
    form = HostedEntryForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            entry = hosted_services.hosted_entry_update(actor=request.user, entry=entry, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            return done(request, reverse("hosted_entry", args=[entry.pk]), f"Entry {entry.slug} saved.")
    return _form_page(request, form, title=f"Edit {entry.slug}", action=reverse("hosted_entry_edit", args=[pk]),
                      cancel_url=reverse("hosted_entry", args=[pk]), entry=entry)


@login_required
def hosted_entry(request, pk: int):
    _require_staff(request)
    entry = fetch(selectors.hosted_entry_get, user=request.user, pk=pk)
    context = {"entry": entry, "servers": entry.mcp_servers.select_related("instance__team").order_by("name")}
    if htmx_target(request) == "install-state":
        return render_page(request, "console/_hosted_install_state.html", context)
    return render_page(request, "console/hosted_entry.html", context)


@login_required
@require_POST
def hosted_entry_install(request, pk: int):
    _require_staff(request)
    entry = fetch(selectors.hosted_entry_get, user=request.user, pk=pk)
    try:
        hosted_services.hosted_entry_install(actor=request.user, entry=entry)
    except DomainError as exc:
        messages.error(request, error_text(exc))
        return done(request, reverse("hosted_entry", args=[pk]))
    return done(request, reverse("hosted_entry", args=[pk]), f"Installing {entry.package}@{entry.version}.")
