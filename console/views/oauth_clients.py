"""OAuth clients an operator pre-registers for the team (shown in an instance's navigation): list, register, delete.
MCP clients that register themselves (dynamic registration, metadata documents) need none of this."""
from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import selectors, services
from ..permissions import MANAGE_TEAM
from .common import confirm_page, done, fetch, form_page, render_page, require
from .instances import instance_context


class OAuthClientForm(forms.Form):
    name = forms.CharField(max_length=255, help_text="Shown to people on the consent page.")
    redirect_uris = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000,
                                    help_text="One per line; the exact URIs the client may be sent back to.")
    confidential = forms.BooleanField(required=False, help_text="A client that keeps a secret (a web app's server). "
                                                                "Public clients (apps, CLIs) use PKCE alone.")


@login_required
def oauth_client_list(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    context = instance_context(request, instance, "oauth_clients")
    context["clients"] = selectors.oauth_client_list(user=request.user, team=instance.team)
    return render_page(request, "console/oauth_client_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def oauth_client_add(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    require(request, instance.team, MANAGE_TEAM)
    context = instance_context(request, instance, "oauth_clients")
    context.update({"title": "Register an OAuth client", "action": reverse("oauth_client_add", args=[pk]),
                    "cancel_url": reverse("oauth_client_list", args=[pk])})

    def act(data):
        client, secret = services.oauth_client_register(actor=request.user, team=instance.team, name=data["name"],
                                                        redirect_uris=data["redirect_uris"],
                                                        confidential=data["confidential"])
        # The secret is shown once: only its hash is stored.
        context.update({"client": client, "secret": secret})
        return render_page(request, "console/oauth_client_created.html", context,
                           partial="console/_oauth_client_created.html", status=201)

    return form_page(request, OAuthClientForm(request.POST or None), context, act,
                     template="console/oauth_client_form.html", partial="console/_oauth_client_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def oauth_client_delete(request, pk: int, client_id: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    client = fetch(selectors.oauth_client_get, user=request.user, pk=client_id)
    if client.team_id != instance.team_id:
        raise Http404("No such OAuth client.")
    require(request, instance.team, MANAGE_TEAM)

    def act():
        services.oauth_client_delete(actor=request.user, client=client)
        return done(request, reverse("oauth_client_list", args=[pk]),
                    f"OAuth client {client.application.name} deleted.")

    context = instance_context(request, instance, "oauth_clients")
    context.update({"object_kind": "OAuth client", "object_name": client.application.name,
                    "consequence": "Its tokens are revoked with it; the client must be registered again.",
                    "action": reverse("oauth_client_delete", args=[pk, client_id]),
                    "cancel_url": reverse("oauth_client_list", args=[pk])})
    return confirm_page(request, context, act)
