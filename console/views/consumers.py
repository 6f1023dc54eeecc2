"""Consumers (the team's client identities, shown in an instance's navigation) with their API keys and JWT
credentials, and an MCP server's Consumer Authentication tab with its authorizations and the Debug credential."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors, services
from ..api.consumers import key_status
from ..crypto import mask
from ..errors import DomainError
from ..forms import AuthorizationForm, ConsumerApiKeyForm, ConsumerAuthForm, ConsumerForm, JwtCredentialForm
from ..models import McpServer
from ..permissions import MANAGE_TEAM
from .common import (
    apply_domain_error, confirm_page, done, error_text, fetch, form_page, paginate, render_page, require,
)
from .instances import instance_context
from .mcp_servers import server_context

PAGE_SIZE = 50


def _consumer_in(request, pk: int, consumer_id: int):
    """The instance whose navigation frames the page and one consumer of its team (another team's: 404)."""
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    consumer = fetch(selectors.consumer_get, user=request.user, pk=consumer_id)
    if consumer.team_id != instance.team_id:
        raise Http404("No such consumer.")
    return instance, consumer


def _consumer_child(request, pk: int, consumer_id: int, selector, child_id: int, what: str):
    """The instance, a consumer of its team and one of that consumer's API keys or JWT credentials, for an admin."""
    instance, consumer = _consumer_in(request, pk, consumer_id)
    child = fetch(selector, user=request.user, pk=child_id)
    if child.consumer_id != consumer.pk:
        raise Http404(f"No such {what}.")
    require(request, instance.team, MANAGE_TEAM)
    return instance, consumer, child


def _consumer_url(instance, consumer) -> str:
    return reverse("consumer", args=[instance.pk, consumer.pk])


# ---------------------------------------------------------------- consumers

@login_required
def consumer_list(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    context = instance_context(request, instance, "consumers")
    qs = selectors.consumer_list(user=request.user, team=instance.team)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(name__icontains=q)
    context.update({"page": paginate(request, qs, PAGE_SIZE), "q": q})
    return render_page(request, "console/consumer_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def consumer_add(request, pk: int):
    instance = fetch(selectors.instance_get, user=request.user, pk=pk)
    require(request, instance.team, MANAGE_TEAM)

    def act(data):
        consumer = services.consumer_create(actor=request.user, team=instance.team, **data)
        return done(request, _consumer_url(instance, consumer), f"Consumer {consumer.name} created.")

    context = instance_context(request, instance, "consumers")
    context.update({"title": "Add consumer", "action": reverse("consumer_add", args=[pk]),
                    "cancel_url": reverse("consumer_list", args=[pk])})
    return form_page(request, ConsumerForm(request.POST or None, initial={"enabled": True}), context, act,
                     template="console/consumer_form.html", partial="console/_consumer_form.html")


@login_required
def consumer(request, pk: int, consumer_id: int):
    instance, consumer = _consumer_in(request, pk, consumer_id)
    keys = list(selectors.consumer_api_key_list(user=request.user, consumer=consumer))
    for key in keys:
        key.status = key_status(key)
    credentials = list(selectors.jwt_credential_list(user=request.user, consumer=consumer))
    for credential in credentials:
        credential.secret_masked = mask(credential.secret)
    context = instance_context(request, instance, "consumers")
    context.update({"consumer": consumer, "api_keys": keys, "jwt_credentials": credentials,
                    "oauth_tokens": selectors.consumer_oauth_token_list(user=request.user, consumer=consumer),
                    "authorizations": selectors.consumer_authorization_list(user=request.user, consumer=consumer)})
    context["rate_limits"] = selectors.rate_limit_list_of_consumer(user=request.user, consumer=consumer)
    return render_page(request, "console/consumer_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def consumer_edit(request, pk: int, consumer_id: int):
    instance, consumer = _consumer_in(request, pk, consumer_id)
    require(request, instance.team, MANAGE_TEAM)
    form = ConsumerForm(request.POST or None, initial={"name": consumer.name, "description": consumer.description,
                                                       "enabled": consumer.enabled})

    def act(data):
        services.consumer_update(actor=request.user, consumer=consumer, **data)
        return done(request, _consumer_url(instance, consumer), f"Consumer {consumer.name} saved.")

    context = instance_context(request, instance, "consumers")
    context.update({"title": f"Edit consumer {consumer.name}", "consumer": consumer,
                    "action": reverse("consumer_edit", args=[pk, consumer_id]),
                    "cancel_url": _consumer_url(instance, consumer)})
    return form_page(request, form, context, act, template="console/consumer_form.html",
                     partial="console/_consumer_form.html")


@login_required
@require_POST
def consumer_toggle(request, pk: int, consumer_id: int):
    instance, consumer = _consumer_in(request, pk, consumer_id)
    require(request, instance.team, MANAGE_TEAM)
    enabled = request.POST.get("enabled") == "1"
    services.consumer_update(actor=request.user, consumer=consumer, enabled=enabled)
    state = "enabled" if enabled else "disabled: its keys and tokens are refused"
    return done(request, _consumer_url(instance, consumer), f"Consumer {consumer.name} {state}.")


@login_required
@require_http_methods(["GET", "POST"])
def consumer_delete(request, pk: int, consumer_id: int):
    instance, consumer = _consumer_in(request, pk, consumer_id)
    require(request, instance.team, MANAGE_TEAM)

    def act():
        services.consumer_delete(actor=request.user, consumer=consumer)
        return done(request, reverse("consumer_list", args=[pk]), f"Consumer {consumer.name} deleted.")

    context = instance_context(request, instance, "consumers")
    context.update({"object_kind": "consumer", "object_name": consumer.name,
                    "consequence": f"Its {consumer.api_key_count} API key(s), {consumer.jwt_credential_count} JWT "
                                   f"credential(s) and {consumer.authorization_count} authorization(s) go with it; "
                                   "clients using them are refused at once.",
                    "action": reverse("consumer_delete", args=[pk, consumer_id]),
                    "cancel_url": _consumer_url(instance, consumer)})
    return confirm_page(request, context, act)


@login_required
@require_http_methods(["GET", "POST"])
def consumer_api_key_add(request, pk: int, consumer_id: int):
    instance, consumer = _consumer_in(request, pk, consumer_id)
    require(request, instance.team, MANAGE_TEAM)
    context = instance_context(request, instance, "consumers")
    context.update({"consumer": consumer, "title": f"Issue an API key for {consumer.name}",
                    "action": reverse("consumer_api_key_add", args=[pk, consumer_id]),
                    "cancel_url": _consumer_url(instance, consumer)})

    def act(data):
        key, secret = services.consumer_api_key_issue(actor=request.user, consumer=consumer, **data)
        # Shown once: only the digest is stored, so this answer cannot be had again.
        context.update({"api_key": key, "secret": secret})
        return render_page(request, "console/consumer_api_key_created.html", context,
                           partial="console/_consumer_api_key_created.html", status=201)

    return form_page(request, ConsumerApiKeyForm(request.POST or None), context, act,
                     template="console/consumer_form.html", partial="console/_consumer_api_key_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def consumer_api_key_delete(request, pk: int, consumer_id: int, key_id: int):
    instance, consumer, key = _consumer_child(request, pk, consumer_id, selectors.consumer_api_key_get, key_id,
                                              "API key")

    def act():
        services.consumer_api_key_revoke(actor=request.user, api_key=key)
        return done(request, _consumer_url(instance, consumer), f"API key {key.hint} revoked.")

    context = instance_context(request, instance, "consumers")
    context.update({"verb": "Revoke", "object_kind": "API key", "object_name": key.name or key.hint,
                    "consequence": "Clients using it are refused within a second; streams it opened end at their next "
                                   "keepalive.",
                    "action": reverse("consumer_api_key_delete", args=[pk, consumer_id, key_id]),
                    "cancel_url": _consumer_url(instance, consumer)})
    return confirm_page(request, context, act)


@login_required
@require_http_methods(["GET", "POST"])
def consumer_oauth_token_delete(request, pk: int, consumer_id: int, token_id: int):
    instance, consumer, token = _consumer_child(request, pk, consumer_id, selectors.consumer_oauth_token_get,
                                                token_id, "OAuth token")

    def act():
        services.consumer_oauth_token_revoke(actor=request.user, token=token)
        return done(request, _consumer_url(instance, consumer), f"OAuth token of {token.client_name} revoked.")

    context = instance_context(request, instance, "consumers")
    context.update({"verb": "Revoke", "object_kind": "OAuth token", "object_name": token.client_name,
                    "consequence": "The client is refused from its next request on every gateway process, and its "
                                   "refresh token stops working: it must sign in again.",
                    "action": reverse("consumer_oauth_token_delete", args=[pk, consumer_id, token_id]),
                    "cancel_url": _consumer_url(instance, consumer)})
    return confirm_page(request, context, act)


@login_required
@require_http_methods(["GET", "POST"])
def jwt_credential_add(request, pk: int, consumer_id: int):
    instance, consumer = _consumer_in(request, pk, consumer_id)
    require(request, instance.team, MANAGE_TEAM)

    def act(data):
        services.jwt_credential_create(actor=request.user, consumer=consumer, **data)
        return done(request, _consumer_url(instance, consumer), "JWT credential added.")

    context = instance_context(request, instance, "consumers")
    context.update({"consumer": consumer, "title": f"Add a JWT credential for {consumer.name}",
                    "action": reverse("jwt_credential_add", args=[pk, consumer_id]),
                    "cancel_url": _consumer_url(instance, consumer)})
    return form_page(request, JwtCredentialForm(request.POST or None), context, act,
                     template="console/consumer_form.html", partial="console/_jwt_credential_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def jwt_credential_delete(request, pk: int, consumer_id: int, credential_id: int):
    instance, consumer, credential = _consumer_child(request, pk, consumer_id, selectors.jwt_credential_get,
                                                     credential_id, "JWT credential")

    def act():
        services.jwt_credential_delete(actor=request.user, credential=credential)
        return done(request, _consumer_url(instance, consumer), "JWT credential deleted.")

    context = instance_context(request, instance, "consumers")
    context.update({"object_kind": "JWT credential", "object_name": f"{credential.algorithm} #{credential.pk}",
                    "consequence": "Tokens it verified are refused from now on.",
                    "action": reverse("jwt_credential_delete", args=[pk, consumer_id, credential_id]),
                    "cancel_url": _consumer_url(instance, consumer)})
    return confirm_page(request, context, act)


# ---------------------------------------------------------------- a server's Consumer Authentication tab

def _tool_names(server: McpServer) -> list[str]:
    if server.server_type != McpServer.Type.HTTP_TO_MCP:
        return []
    return list(server.tools.order_by("name").values_list("name", flat=True))


def _consumer_auth_page(request, server, form, *, status: int = 200):
    context = server_context(request, server, "consumer_auth")
    authorizations = list(selectors.authorization_list(user=request.user, mcp_server=server))
    # Each authorization row shows the consumer's own rate limits on this server (one query for all rows).
    limits: dict[int, list] = {}
    for policy in selectors.rate_limit_list(user=request.user, mcp_server=server).filter(consumer__isnull=False) \
            .order_by("tool", "pk"):
        limits.setdefault(policy.consumer_id, []).append(policy)
    for authorization in authorizations:
        authorization.rate_limits = limits.get(authorization.consumer_id, [])
    context.update({"auth_form": form, "consumer_auth": selectors.consumer_auth_get(mcp_server=server),
                    "authorizations": authorizations})
    return render_page(request, "console/mcp_server_consumer_auth.html", context, status=status)


def _consumer_auth_form(server, data=None) -> ConsumerAuthForm:
    return ConsumerAuthForm(data, initial=selectors.consumer_auth_get(mcp_server=server).as_dict())


@login_required
def mcp_server_consumer_auth(request, pk: int):
    """The Consumer Authentication tab: the settings (a form for admins) and the authorized consumers."""
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    return _consumer_auth_page(request, server, _consumer_auth_form(server))


@login_required
@require_http_methods(["GET", "POST"])
def mcp_server_consumer_auth_edit(request, pk: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_TEAM)
    form = _consumer_auth_form(server, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.mcp_server_set_consumer_auth(actor=request.user, mcp_server=server, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            state = ("on: only authorized consumers reach the server" if form.cleaned_data["enabled"]
                     else "off: anyone who reaches the endpoint may call it")
            return done(request, reverse("mcp_server_consumer_auth", args=[pk]),
                        f"Consumer Authentication is {state}.")
    return _consumer_auth_page(request, server, form, status=400 if form.errors else 200)


def _authorization_context(request, server, **extra) -> dict:
    context = server_context(request, server, "consumer_auth")
    context.update({"cancel_url": reverse("mcp_server_consumer_auth", args=[server.pk])})
    context.update(extra)
    return context


def _chosen_tools(form) -> list[str] | None:
    return None if form.cleaned_data["all_tools"] else list(form.cleaned_data["tools"])


@login_required
@require_http_methods(["GET", "POST"])
def authorization_add(request, pk: int):
    """Authorize a consumer of the team, or create one in place (the drop-down's last entry)."""
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    team = server.instance.team
    require(request, team, MANAGE_TEAM)
    authorized = set(selectors.authorization_list(user=request.user, mcp_server=server)
                     .values_list("consumer_id", flat=True))
    consumers = [c for c in selectors.consumer_list(user=request.user, team=team) if c.pk not in authorized]
    form = AuthorizationForm(request.POST or None, consumers=consumers, tools=_tool_names(server),
                             initial={"all_tools": True,
                                      "consumer": str(consumers[0].pk) if consumers else AuthorizationForm.NEW})

    def act(data):
        # One transaction: a consumer created here exists only if its authorization does too.
        with transaction.atomic():
            if data["consumer"] == AuthorizationForm.NEW:
                consumer = services.consumer_create(actor=request.user, team=team, name=data["new_name"],
                                                    description=data["new_description"])
            else:
                consumer = fetch(selectors.consumer_get, user=request.user, pk=int(data["consumer"]))
            services.consumer_authorize(actor=request.user, mcp_server=server, consumer=consumer,
                                        tools=_chosen_tools(form))
        return done(request, reverse("mcp_server_consumer_auth", args=[pk]),
                    f"Consumer {consumer.name} authorized on {server.name}.")

    context = _authorization_context(request, server, title="Authorize a consumer",
                                     action=reverse("authorization_add", args=[pk]))
    return form_page(request, form, context, act, template="console/authorization_form.html",
                     partial="console/_authorization_form.html",
                     aliases={"name": "new_name", "description": "new_description"})


@login_required
@require_http_methods(["GET", "POST"])
def authorization_edit(request, pk: int, consumer_id: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    authorization = fetch(selectors.authorization_get, user=request.user, mcp_server=server, consumer_id=consumer_id)
    require(request, server.instance.team, MANAGE_TEAM)
    consumer = authorization.consumer
    form = AuthorizationForm(request.POST or None, consumers=[consumer], tools=_tool_names(server), editing=True,
                             initial={"consumer": str(consumer.pk), "all_tools": authorization.tools is None,
                                      "tools": authorization.tools or []})

    def act(data):
        services.consumer_authorize(actor=request.user, mcp_server=server, consumer=consumer,
                                    tools=_chosen_tools(form))
        return done(request, reverse("mcp_server_consumer_auth", args=[pk]),
                    f"Tools of {consumer.name} on {server.name} saved.")

    context = _authorization_context(request, server, title=f"Tools {consumer.name} may use",
                                     action=reverse("authorization_edit", args=[pk, consumer_id]), editing=True)
    return form_page(request, form, context, act, template="console/authorization_form.html",
                     partial="console/_authorization_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def authorization_delete(request, pk: int, consumer_id: int):
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    authorization = fetch(selectors.authorization_get, user=request.user, mcp_server=server, consumer_id=consumer_id)
    require(request, server.instance.team, MANAGE_TEAM)
    consumer = authorization.consumer

    def act():
        services.consumer_authorization_revoke(actor=request.user, mcp_server=server, consumer=consumer)
        return done(request, reverse("mcp_server_consumer_auth", args=[pk]),
                    f"Consumer {consumer.name} may no longer call {server.name}.")

    context = server_context(request, server, "consumer_auth")
    context.update({"verb": "Revoke", "object_kind": "authorization", "object_name": consumer.name,
                    "consequence": f"{consumer.name} is refused by {server.name} within a second (403).",
                    "action": reverse("authorization_delete", args=[pk, consumer_id]),
                    "cancel_url": reverse("mcp_server_consumer_auth", args=[pk])})
    return confirm_page(request, context, act)


@login_required
@require_POST
def mcp_server_debug_credential(request, pk: int):
    """A short-lived credential for the Debug tab to call the endpoint as the chosen consumer (admin)."""
    server = fetch(selectors.mcp_server_get, user=request.user, pk=pk)
    require(request, server.instance.team, MANAGE_TEAM)
    try:
        consumer_id = int(request.POST.get("consumer", ""))
    except ValueError:
        return JsonResponse({"detail": "Choose a consumer."}, status=400)
    consumer = fetch(selectors.consumer_get, user=request.user, pk=consumer_id)
    try:
        secret, expires_at = services.consumer_debug_credential_issue(actor=request.user, mcp_server=server,
                                                                      consumer=consumer)
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404(exc.message) from exc
        return JsonResponse({"detail": error_text(exc)}, status=400)
    return JsonResponse({"credential": secret, "consumer": consumer.name, "expires_at": expires_at.isoformat(),
                         "expires_in": int((expires_at - timezone.now()).total_seconds())})

