"""The authorization server's pages and documents: consent, protected-resource metadata (RFC 9728), AS metadata."""
from __future__ import annotations

import json

from django import forms
from django.http import HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_application_model
from oauth2_provider.views import (
    AuthorizationView, DynamicClientRegistrationManagementView, DynamicClientRegistrationView,
    OAuthServerMetadataView, RevokeTokenView, TokenView,
)

from .. import selectors, services
from ..errors import DomainError, NotFound
from ..models import ConsumerAuthorization
from ..permissions import MANAGE_TEAM, role_at_least, role_of
from .resources import endpoint_base, scope_of, server_for_path, server_for_resource

NEW_CONSUMER = "new"


class ConsentForm(AllowForm):
    # Which of the team's consumers the client acts as: "new" (one named after the client) or a consumer id.
    consumer = forms.CharField(required=False, max_length=20)


def _has_nul(request) -> bool:
    """A parameter with U+0000 (PostgreSQL stores it in no text column): refused before anything looks it up."""
    return any("\x00" in value for query in (request.GET, request.POST) for values in query.lists()
               for value in values[1]) or any("\x00" in key for key in (*request.GET, *request.POST))


def _nul_refused() -> JsonResponse:
    return JsonResponse({"error": "invalid_request", "error_description": "A parameter contains a NUL character."},
                        status=400)


def _refuse(request, message: str, status: int = 400) -> HttpResponse:
    return render(request, "console/oauth_error.html", {"message": message}, status=status)


class ConsentView(AuthorizationView):
    """RFC 6749 authorization endpoint: the library's flow, with the MCP rules checked first and a consent page
    that picks the consumer. Refused before any page: a challenge method other than S256 (OAuth 2.1: PKCE S256),
    no resource or one that is not an MCP server with OAuth sign-in (RFC 8707), a scope of another server."""

    template_name = "console/oauth_consent.html"
    form_class = ConsentForm

    def _mcp_checks(self, data) -> HttpResponse | None:
        if _has_nul(self.request):
            return _refuse(self.request, "A parameter contains a NUL character.")
        method = data.get("code_challenge_method")
        if not data.get("code_challenge"):
            return _refuse(self.request, "This client did not send a PKCE code challenge; sign-in needs PKCE with "
                                         "S256.")
        if method != "S256":
            return _refuse(self.request, f"PKCE code challenge method {method or 'plain'} is not accepted; use "
                                         "S256.")
        resources = data.getlist("resource") if hasattr(data, "getlist") else [data.get("resource")]
        resources = [r for r in (" ".join(x for x in resources if x)).split() if r]
        if len(resources) != 1:
            return _refuse(self.request, "Name exactly one MCP server endpoint as the resource (RFC 8707).")
        server = server_for_resource(resources[0])
        if server is None:
            return _refuse(self.request, f"{resources[0]} is not an MCP server with OAuth sign-in here.")
        scope = scope_of(server)
        wanted = (data.get("scope") or "").split()
        if any(s != scope for s in wanted):
            return _refuse(self.request, f"This sign-in is for {server.name}: only the scope {scope} can be granted.")
        self.mcp_server = server
        return None

    def get(self, request, *args, **kwargs):
        refusal = self._mcp_checks(request.GET)
        if refusal is not None:
            return refusal
        if not request.GET.get("scope"):
            # No scope asked for: grant the resource's own (the library would otherwise find no default).
            query = request.GET.copy()
            query["scope"] = scope_of(self.mcp_server)
            return redirect(f"{request.path}?{query.urlencode()}")
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        server = self.mcp_server
        team = server.instance.team
        role = role_of(user=self.request.user, team=team)
        consumers = []
        if role is not None:
            authorized = set(ConsumerAuthorization.objects.filter(mcp_server=server).values_list("consumer_id",
                                                                                                  flat=True))
            consumers = [c for c in selectors.consumer_list(user=self.request.user, team=team)
                         if c.enabled and c.pk in authorized]
        context.update({"mcp_server": server, "team": team, "member": role is not None,
                        "may_create": role_at_least(role, MANAGE_TEAM), "consumers": consumers,
                        "resource": self.oauth2_data.get("resource", ""), "new_consumer": NEW_CONSUMER})
        return context

    def post(self, request, *args, **kwargs):
        refusal = self._mcp_checks(request.POST)
        if refusal is not None:
            return refusal
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        if form.cleaned_data.get("allow"):
            application = get_application_model().objects.filter(client_id=form.cleaned_data["client_id"]).first()
            if application is None:
                return _refuse(self.request, "Unknown client.")
            choice = form.cleaned_data.get("consumer") or NEW_CONSUMER
            try:
                consumer = None
                if choice != NEW_CONSUMER:
                    if not choice.isdigit():
                        raise DomainError("Choose a consumer.", {"consumer": ["Choose a consumer."]})
                    consumer = selectors.consumer_get(user=self.request.user, pk=int(choice))
                services.oauth_consent_grant(actor=self.request.user, mcp_server=self.mcp_server,
                                             application=application, consumer=consumer,
                                             scope=form.cleaned_data.get("scope") or "")
            except NotFound as exc:
                return _refuse(self.request, str(exc), status=403)
            except DomainError as exc:
                denied = exc.code in {"permission_denied", "not_found"}
                return _refuse(self.request, exc.message, status=403 if denied else 400)
        return super().form_valid(form)


def protected_resource_metadata(request, resource_path: str = ""):
    """RFC 9728 metadata of one MCP endpoint, at the well-known URI with the endpoint's path inserted (§3.1)."""
    path = "/" + resource_path
    base = endpoint_base(path)
    if base is not None and path.rstrip("/") not in {base, base + "/mcp", base + "/sse", base + "/message"}:
        base = None  # only the endpoint's own paths, not whatever follows its prefix
    host, _ = split_domain_port(request.get_host())
    server = server_for_path(host=host.strip("[]"), path=path) if base else None
    if server is None:
        response = JsonResponse({"error": "not_found", "error_description":
                                 f"No MCP server with OAuth sign-in at {path}."}, status=404)
        response["Access-Control-Allow-Origin"] = "*"
        return response
    origin = f"{request.scheme}://{request.get_host()}"
    response = JsonResponse({
        "resource": origin + base,
        "authorization_servers": [origin],
        "scopes_supported": [scope_of(server)],
        "bearer_methods_supported": ["header"],
        "resource_name": f"{server.name} ({server.instance.name})",
    })
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "max-age=300"
    return response


class AuthorizationServerMetadataView(OAuthServerMetadataView):
    """RFC 8414 metadata as the library builds it, minus endpoints MCP clients are not offered (introspection is
    for resource servers, and the gateway reads its own cache)."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        for key in ("introspection_endpoint", "introspection_endpoint_auth_methods_supported"):
            data.pop(key, None)
        data["code_challenge_methods_supported"] = ["S256"]
        answer = JsonResponse(data)
        answer["Access-Control-Allow-Origin"] = "*"
        return answer


class TokenEndpoint(TokenView):
    """The library's token endpoint; an error raised while the token is stored (a resource the grant does not
    cover) comes back without a media type, so every answer is labelled JSON and never cached (RFC 6749 §5.1)."""

    def post(self, request, *args, **kwargs):
        if _has_nul(request):
            return _nul_refused()
        response = super().post(request, *args, **kwargs)
        response["Content-Type"] = "application/json"
        response["Cache-Control"] = "no-store"
        return response


MAX_REGISTRATION_BYTES = 64 * 1024


class RegistrationEndpoint(DynamicClientRegistrationView):
    """RFC 7591 registration as the library does it, behind the limits every body here has: a registration is a
    few hundred bytes, so a large or deeply nested one is refused before the library's parser sees it."""

    def post(self, request, *args, **kwargs):
        from gateway.boundedjson import loads

        body = request.body
        problem = None
        if len(body) > MAX_REGISTRATION_BYTES:
            problem = f"The registration is larger than {MAX_REGISTRATION_BYTES // 1024} KB."
        else:
            try:
                loads(body, max_depth=8, max_values=2000, forbid_nul=True)
            except ValueError as exc:  # a syntax error, or JSON beyond a limit (JsonLimitError)
                problem = f"The registration is not acceptable JSON: {exc}."
        if problem is not None:
            return JsonResponse({"error": "invalid_client_metadata", "error_description": problem}, status=400)
        if not _registration_allowed(request):
            response = JsonResponse({"error": "temporarily_unavailable", "error_description":
                                     "Too many registrations from this address; try again later."}, status=429)
            response["Retry-After"] = "3600"
            return response
        return super().post(request, *args, **kwargs)


def _registration_allowed(request) -> bool:
    """Open registration creates a row per call: each client address gets OAUTH_DCR_PER_ADDRESS_PER_HOUR of them
    (counted in the cache, so across processes with Redis)."""
    from django.conf import settings
    from django.core.cache import cache

    key = "oauth-dcr:" + (request.META.get("REMOTE_ADDR") or "unknown")
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count <= settings.OAUTH_DCR_PER_ADDRESS_PER_HOUR


class RevocationEndpoint(RevokeTokenView):
    """RFC 7009 revocation as the library does it, with parameters held to what can be looked up."""

    def post(self, request, *args, **kwargs):
        if _has_nul(request):
            return _nul_refused()
        return super().post(request, *args, **kwargs)


class RegistrationManagementEndpoint(DynamicClientRegistrationManagementView):
    """RFC 7592 (read, update, delete a registration with its registration token), the library's, behind the same
    limits as registration."""

    def dispatch(self, request, *args, **kwargs):
        client_id = kwargs.get("client_id", "")
        if "\x00" in client_id or _has_nul(request):
            return _nul_refused()
        if len(client_id) > 255:  # longer than any client id the library stores
            return JsonResponse({"error": "invalid_request", "error_description": "No such client."}, status=404)
        if request.method in {"PUT", "POST"} and len(request.body) > MAX_REGISTRATION_BYTES:
            return JsonResponse({"error": "invalid_client_metadata", "error_description": "Too large."}, status=400)
        return super().dispatch(request, *args, **kwargs)
