"""Sign up, sign in and out, the team switcher and the region selector."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors, services
from ..errors import DomainError
from ..forms import SignupForm
from ..login_limits import LoginForm
from .common import SESSION_REGION, SESSION_TEAM, apply_domain_error, safe_next

login = auth_views.LoginView.as_view(template_name="console/login.html", redirect_authenticated_user=True,
                                     authentication_form=LoginForm,
                                     extra_context={"signup_enabled": lambda: settings.SIGNUP_ENABLED})
logout = auth_views.LogoutView.as_view(next_page="login")


@require_http_methods(["GET", "POST"])
def signup(request):
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is not enabled on this gateway.")
    # An MCP client's sign-in page (OAuth) sends people here with ?next= so they come back to the consent page.
    next_url = safe_next(request, "")
    if request.user.is_authenticated:
        return redirect(next_url or "home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user, team = services.user_signup(username=data["username"], email=data["email"],
                                              password=data["password1"])
        except DomainError as exc:
            apply_domain_error(form, exc, aliases={"password": "password1"})
        else:
            auth_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            request.session[SESSION_TEAM] = team.pk
            messages.success(request, f"Welcome, {user.get_username()}: your team {team.name} is ready.")
            return redirect(next_url or "instance_list")
    return render(request, "console/signup.html", {"form": form, "next": next_url},
                  status=400 if form.errors else 200)


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
