"""Sign in and out, the team switcher and the region selector."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import selectors
from .common import SESSION_REGION, SESSION_TEAM, safe_next

login = auth_views.LoginView.as_view(template_name="console/login.html", redirect_authenticated_user=True)
logout = auth_views.LogoutView.as_view(next_page="login")


@login_required
def home(request):
    return redirect("instance_list")


@login_required
@require_POST
def team_switch(request):
    raw = request.POST.get("team", "")
    team = selectors.team_list(user=request.user).filter(pk=int(raw)).first() if raw.isdigit() else None
    if team is None:
        messages.error(request, "You are not a member of that team.")
    else:
        request.session[SESSION_TEAM] = team.pk
        request.session[SESSION_REGION] = ""
        messages.success(request, f"Switched to team {team.name}.")
    # Objects of the old team are not this team's: go back to a list, not to the page we came from.
    return redirect(reverse("instance_list"))


@login_required
@require_POST
def region_switch(request):
    request.session[SESSION_REGION] = request.POST.get("region", "").strip()[:63]
    return redirect(safe_next(request, reverse("instance_list")))
