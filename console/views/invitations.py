"""Invitations by link: create (the link is shown once), revoke, and the public page that accepts one."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import selectors, services
from ..errors import DomainError, NotFound
from ..forms import InvitationForm, InviteSignupForm
from ..models import Invitation
from ..permissions import MANAGE_TEAM, ROLE_HELP
from ..services.teams import INVITATION_GONE
from .common import (
    SESSION_TEAM, apply_domain_error, done, error_text, fetch, follow_team, public_base_url, render_page, require,
    team_role,
)
from .teams import roles_up_to


def invitation_url(request, secret: str) -> str:
    """The absolute link to hand over: PUBLIC_BASE_URL when set, else the host the request came to."""
    return public_base_url(request) + reverse("invitation_accept", args=[secret])


@login_required
@require_http_methods(["GET", "POST"])
def invitation_add(request, pk: int):
    team = fetch(selectors.team_get, user=request.user, pk=pk)
    require(request, team, MANAGE_TEAM)
    follow_team(request, team.pk)
    form = InvitationForm(request.POST or None, roles=roles_up_to(team_role(request, team)),
                          initial={"role": "member", "expires_in_days": 7})
    context = {"team": team, "title": "Invite someone", "action": reverse("invitation_add", args=[pk]),
               "cancel_url": reverse("team", args=[pk])}
    if request.method == "POST" and form.is_valid():
        try:
            invitation, secret = services.invitation_create(
                actor=request.user, team=team, role=form.cleaned_data["role"],
                expires_in_days=form.cleaned_data["expires_in_days"])
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            # Shown once, like an API token: only the digest is stored, so this page cannot be reloaded.
            context.update({"invitation": invitation, "url": invitation_url(request, secret)})
            return render_page(request, "console/invitation_created.html", context, status=201)
    context["form"] = form
    return render_page(request, "console/invitation_form.html", context, partial="console/_invitation_form.html",
                       status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def invitation_delete(request, pk: int):
    invitation = fetch(selectors.invitation_get, user=request.user, pk=pk)
    team = invitation.team
    require(request, team, MANAGE_TEAM)
    follow_team(request, team.pk)
    error = None
    if request.method == "POST":
        try:
            services.invitation_revoke(actor=request.user, invitation=invitation)
        except DomainError as exc:
            error = error_text(exc)
        else:
            return done(request, reverse("team", args=[team.pk]), "Invitation revoked: its link no longer works.")
    return render_page(request, "console/confirm_delete.html", {
        "team": team, "verb": "Revoke", "object_kind": "invitation",
        "object_name": f"{invitation.hint}… ({invitation.role})", "error": error,
        "consequence": "Whoever has the link can no longer join with it.",
        "action": reverse("invitation_delete", args=[pk]), "cancel_url": reverse("team", args=[team.pk])},
        partial="console/_confirm_delete.html", status=400 if error else 200)


def _gone(request, message: str, status: int):
    return render(request, "console/invitation_gone.html", {"message": message}, status=status)


@require_http_methods(["GET", "POST"])
def invitation_accept(request, secret: str):
    """The link's page: join as the signed-in user, or create an account and join (sign-up need not be open)."""
    try:
        invitation = selectors.invitation_by_secret(secret=secret)
    except NotFound:
        return _gone(request, "There is no invitation at this link. Check that it was copied completely.", 404)
    status = invitation.status
    if status != Invitation.Status.PENDING:
        return _gone(request, INVITATION_GONE[status], 410)
    signed_in = request.user.is_authenticated
    already = signed_in and team_role(request, invitation.team) is not None
    form = None if signed_in else InviteSignupForm(request.POST or None)
    if request.method == "POST":
        if signed_in:
            try:
                services.invitation_accept(user=request.user, invitation=invitation)
            except DomainError as exc:
                if exc.code == "gone":
                    return _gone(request, exc.message, 410)
                messages.info(request, exc.message)
                return redirect(reverse("team", args=[invitation.team_id]))
            return _joined(request, invitation)
        if form.is_valid():
            try:
                user = services.invitation_accept_new_user(invitation=invitation, **form.cleaned_data)
            except DomainError as exc:
                if exc.code == "gone":
                    return _gone(request, exc.message, 410)
                apply_domain_error(form, exc)
            else:
                auth_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
                return _joined(request, invitation)
    return render(request, "console/invitation_accept.html", {
        "invitation": invitation, "form": form, "already": already, "role_help": ROLE_HELP[invitation.role],
        "login_url": f"{reverse('login')}?next={request.path}",
    }, status=400 if form is not None and form.errors else 200)


def _joined(request, invitation: Invitation):
    request.session[SESSION_TEAM] = invitation.team_id
    messages.success(request, f"You joined team {invitation.team.name} as {invitation.role}.")
    return redirect(reverse("instance_list"))
