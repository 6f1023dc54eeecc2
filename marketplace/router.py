"""The market router: a per-user MCP endpoint (Streamable HTTP, JSON answers) whose three tools let an agent search
the market, subscribe to a listing and call a subscribed server's tool through the gateway."""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from console import selectors as console_selectors
from console import services as console
from console.errors import DomainError
from console.permissions import MANAGE_TEAM, role_at_least, role_of
from console.models import ConsumerApiKey
from console.views.common import current_team, public_base_url, raise_permission, render_page
from console.views.endpoints import BRIDGE_INSTALL
from gateway import boundedjson, egress
from gateway.protocol import HANDSHAKE_VERSIONS, LATEST_HANDSHAKE

from . import selectors, services
from .models import Listing, RouterKey, Subscription
from .present import subscription_endpoints

BODY_MAX = 1024 * 1024
CALL_TIMEOUT = 30
RESULT_MAX = 1024 * 1024
SEARCH_LIMIT = 5
STATELESS_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}

TOOLS = [
    {"name": "search_mcp_server",
     "description": "Search the MCP market for servers that fit a task; answers ranked listings with their name, "
                    "description and tools.",
     "inputSchema": {"type": "object", "properties": {
         "task_description": {"type": "string", "description": "What you want to do, e.g. generate a cat image."},
         "key_words": {"type": "string", "description": "Extra keywords, comma- or space-separated."}},
         "required": ["task_description"]}},
    {"name": "add_mcp_server",
     "description": "Subscribe to a market server by name (exactly as the Get endpoint button does); answers its tools.",
     "inputSchema": {"type": "object", "properties": {
         "mcp_server_name": {"type": "string", "description": "The listing's name from search_mcp_server."},
         "config": {"type": "object", "description": "The configuration the listing asks for (search_mcp_server "
                                                     "names it), e.g. its backend API key."}},
         "required": ["mcp_server_name"]}},
    {"name": "use_tool",
     "description": "Call a tool of a subscribed market server through the gateway (its authentication and limits "
                    "apply).",
     "inputSchema": {"type": "object", "properties": {
         "mcp_server_name": {"type": "string"}, "mcp_tool_name": {"type": "string"},
         "params": {"type": "object", "description": "The tool's arguments."}},
         "required": ["mcp_server_name", "mcp_tool_name"]}},
]


class ToolFailure(Exception):
    """A tool call that cannot be done: answered as a result with isError, which the agent can read and fix."""


# ---------------------------------------------------------------- the page: the user's router key and configuration

@transaction.atomic
def router_key_issue(*, actor, team, instance) -> tuple[RouterKey, str]:
    """The user's market consumer (created once) with a fresh key; an earlier key is revoked."""
    row = RouterKey.objects.select_for_update().filter(user=actor).first()
    if row is not None and row.team_id != team.pk:
        console.consumer_delete(actor=actor, consumer=row.consumer)
        row.delete()
        row = None
    if row is None:
        consumer = console.consumer_create(
            actor=actor, team=team, description=f"Market router of {actor.get_username()}.",
            name=services._free_consumer_name(team, f"market-router-{actor.get_username()}"))
        row = RouterKey.objects.create(user=actor, team=team, instance=instance, consumer=consumer)
    key, secret = console.consumer_api_key_issue(actor=actor, consumer=row.consumer, name="market router")
    if row.api_key is not None:
        console.consumer_api_key_revoke(actor=actor, api_key=row.api_key)
    row.api_key, row.instance = key, instance
    row.save(update_fields=["api_key", "instance"])
    return row, secret


def router_client_configs(*, url: str, base_url: str, key: str | None) -> list[dict]:
    """Ready-to-paste configurations for the router endpoint; the key fills in when it is shown (once)."""
    shown = key or "<YOUR_API_KEY>"
    return [
        {"id": "cursor", "label": "Cursor", "text": json.dumps(
            {"mcpServers": {"market": {"url": url, "headers": {"Authorization": f"Bearer {shown}"}}}}, indent=2)},
        {"id": "vscode", "label": "VS Code", "text": json.dumps(
            {"servers": {"market": {"type": "http", "url": url,
                                    "headers": {"Authorization": f"Bearer {shown}"}}}}, indent=2)},
        {"id": "claude", "label": "Claude Desktop", "text": json.dumps(
            {"mcpServers": {"market": {"command": "npx", "args": [
                "-y", "mcp-remote", url, "--header", f"Authorization: Bearer {shown}"]}}}, indent=2)},
        # In place of `npx nacos-mcp-router`: the same three tools over stdio, address and key in env.
        {"id": "stdio", "label": "Local stdio bridge", "install": BRIDGE_INSTALL, "text": json.dumps(
            {"mcpServers": {"market": {"command": "mcp-gateway", "args": ["router"], "env": {
                "MCP_GATEWAY_URL": base_url, "MCP_GATEWAY_ROUTER_KEY": shown}}}}, indent=2)},
    ]


def _router_url(request: HttpRequest) -> str:
    return public_base_url(request) + "/market/router/mcp"


@login_required
def router_page(request: HttpRequest) -> HttpResponse:
    return _router_page(request)


@login_required
@require_POST
def router_key_new(request: HttpRequest) -> HttpResponse:
    return _router_page(request, issue=True)


def _router_page(request: HttpRequest, *, issue: bool = False) -> HttpResponse:
    row = RouterKey.objects.filter(user=request.user).select_related("api_key", "team", "instance").first()
    secret = None
    error = None
    team = current_team(request)
    if issue:
        instance = next(iter(console_selectors.instance_list(user=request.user, team=team).order_by(
            "-is_default", "name")), None) if team else None
        if instance is None:
            error = "Your team needs an instance first."
        else:
            try:
                row, secret = router_key_issue(actor=request.user, team=team, instance=instance)
            except DomainError as exc:
                raise_permission(exc)
                error = exc.message
    url = _router_url(request)
    configs = router_client_configs(url=url, base_url=public_base_url(request), key=secret)
    may_issue = team is not None and role_at_least(role_of(user=request.user, team=team), MANAGE_TEAM)
    return render_page(request, "market/router.html", {"row": row, "secret": secret, "url": url, "error": error,
                                                       "client_configs": configs, "section": "router",
                                                       "may_issue": may_issue},
                       status=400 if error else 200)


# ---------------------------------------------------------------- the MCP endpoint

def _rpc_error(msg_id: Any, code: int, message: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}, status=status)


def _authenticate(request: HttpRequest) -> RouterKey | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    secret = header[7:].strip()
    if not secret.startswith(ConsumerApiKey.PREFIX) or len(secret) > 200:
        return None
    key = (ConsumerApiKey.objects.filter(digest=ConsumerApiKey.digest_of(secret), revoked_at__isnull=True)
           .select_related("consumer").first())
    if key is None or not key.consumer.enabled or (key.expires_at and key.expires_at <= timezone.now()):
        return None
    row = RouterKey.objects.filter(api_key=key).select_related("user", "team", "instance", "consumer").first()
    if row is not None:
        row.secret = secret
    return row


@csrf_exempt
def router_endpoint(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = HttpResponse(status=405)
        response["Allow"] = "POST"
        return response
    router = _authenticate(request)
    if router is None:
        response = JsonResponse({"error": "invalid_token",
                                 "error_description": "Send your market router key as Authorization: Bearer …"},
                                status=401)
        response["WWW-Authenticate"] = 'Bearer realm="market-router"'
        return response
    if len(request.body) > BODY_MAX:
        return _rpc_error(None, -32600, "The request body is too large.", status=413)
    try:
        message = boundedjson.loads(request.body, max_depth=32, max_values=10_000)
    except ValueError:
        return _rpc_error(None, -32700, "Parse error: the body is not JSON.", status=400)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        return _rpc_error(None, -32600, "Send one JSON-RPC 2.0 request.", status=400)
    msg_id = message.get("id")
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    method = message["method"]
    if "id" not in message:
        return HttpResponse(status=202)  # notifications (initialized, cancelled) need no answer
    if method == "initialize":
        asked = params.get("protocolVersion")
        version = asked if asked in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE
        return JsonResponse({"jsonrpc": "2.0", "id": msg_id, "result": {
            "protocolVersion": version, "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "market-router", "version": "1.0.0"},
            "instructions": "Find servers with search_mcp_server, subscribe with add_mcp_server, call with use_tool."}})
    if method == "ping":
        return JsonResponse({"jsonrpc": "2.0", "id": msg_id, "result": {}})
    if method == "tools/list":
        return JsonResponse({"jsonrpc": "2.0", "id": msg_id, "result": {"tools": TOOLS}})
    if method != "tools/call":
        return _rpc_error(msg_id, -32601, f"Method not found: {method[:100]}")
    name = params.get("name")
    arguments = params.get("arguments") if isinstance(params.get("arguments"), dict) else {}
    handler = {"search_mcp_server": _search, "add_mcp_server": _add, "use_tool": _use}.get(name)
    if handler is None:
        return _rpc_error(msg_id, -32602, f"Unknown tool: {str(name)[:100]}")
    try:
        result = handler(request, router, arguments)
    except ToolFailure as exc:
        result = {"content": [{"type": "text", "text": str(exc)}], "isError": True}
    except DomainError as exc:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.details.items())
        result = {"content": [{"type": "text", "text": f"{exc.message} {details}".strip()}], "isError": True}
    return JsonResponse({"jsonrpc": "2.0", "id": msg_id, "result": result})


def _text_result(payload: Any) -> dict:
    return {"content": [{"type": "text", "text": json.dumps(payload, indent=2)}], "structuredContent": payload,
            "isError": False}


def _string(arguments: dict, name: str, *, required: bool = True, limit: int = 300) -> str:
    value = arguments.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ToolFailure(f"Give {name} as text.")
    return value.strip()[:limit]


def _search(request, router: RouterKey, arguments: dict) -> dict:
    query = _string(arguments, "task_description") + " " + _string(arguments, "key_words", required=False)
    listings = list(selectors.listing_search(q=query))[:SEARCH_LIMIT]
    subscribed = set(Subscription.objects.filter(user=router.user, team=router.team)
                     .values_list("listing__slug", flat=True))
    out = []
    for listing in listings:
        latest = listing.latest_version()
        out.append({"name": listing.slug, "title": listing.title, "description": listing.summary,
                    "works_offline": listing.works_offline, "subscribed": listing.slug in subscribed,
                    "configuration": [f["name"] for f in (latest.config_fields if latest else [])],
                    "tools": [{"name": t["name"], "description": t["description"]}
                              for t in (latest.tools if latest else [])]})
    return _text_result({"servers": out})


def _listing(arguments: dict) -> Listing:
    slug = _string(arguments, "mcp_server_name", limit=50)
    listing = Listing.objects.filter(slug=slug, listed=True).first()
    if listing is None:
        raise ToolFailure(f"No market server is named {slug}; search_mcp_server gives the names.")
    return listing


def _add(request, router: RouterKey, arguments: dict) -> dict:
    listing = _listing(arguments)
    config = arguments.get("config") if isinstance(arguments.get("config"), dict) else None
    result = services.listing_subscribe(actor=router.user, listing=listing, team=router.team,
                                        instance=router.instance, config=config,
                                        extra_consumers=(router.consumer,))
    subscription = result.subscription
    _authorize_router(router, subscription)
    tools = subscription.version.tools
    return _text_result({"mcp_server_name": listing.slug, "subscribed": True, "new": result.created,
                         "endpoint": subscription_endpoints(subscription, public_base_url(request))["streamable_http"],
                         "tools": [{"name": t["name"], "description": t["description"],
                                    "inputSchema": t["inputSchema"]} for t in tools]})


def _authorize_router(router: RouterKey, subscription: Subscription) -> None:
    """A subscription made with the button is callable through the router once the router's consumer may call it."""
    server = subscription.mcp_server
    if server is not None and not server.authorizations.filter(consumer=router.consumer).exists():
        console.consumer_authorize(actor=router.user, mcp_server=server, consumer=router.consumer)


def _self_base(request: HttpRequest) -> str:
    """This process's own address: the gateway serves the subscribed endpoint in the same process group."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/")
    host = request.META.get("SERVER_NAME") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "localhost", ""):
        host = "127.0.0.1"
    return f"http://{host}:{request.META.get('SERVER_PORT') or 80}"


def _use(request, router: RouterKey, arguments: dict) -> dict:
    listing = _listing(arguments)
    tool = _string(arguments, "mcp_tool_name", limit=128)
    params = arguments.get("params") or {}
    if not isinstance(params, dict):
        raise ToolFailure("Give params as an object of the tool's arguments.")
    subscription = (Subscription.objects.filter(user=router.user, team=router.team, listing=listing)
                    .select_related("mcp_server__instance").first())
    if subscription is None or subscription.mcp_server is None:
        raise ToolFailure(f"Subscribe to {listing.slug} first (add_mcp_server).")
    _authorize_router(router, subscription)
    server = subscription.mcp_server
    url = _self_base(request) + f"/instances/{server.instance.name}/mcp-servers/{server.name}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": params, "_meta": STATELESS_META}}
    headers = {"Authorization": f"Bearer {router.secret}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
               "Mcp-Name": tool}
    try:
        with egress.requests_session() as http:
            response = http.post(url, data=json.dumps(body), headers=headers, timeout=CALL_TIMEOUT, stream=True)
            raw = response.raw.read(RESULT_MAX + 1, decode_content=True)
    except Exception as exc:  # refused by the egress policy, unreachable, timed out: the agent reads why
        raise ToolFailure(f"The gateway could not be reached for {listing.slug}: {exc.__class__.__name__}.") from exc
    if len(raw) > RESULT_MAX:
        raise ToolFailure("The tool's answer is larger than the router passes on (1 MB).")
    text = raw.decode("utf-8", "replace")
    if "text/event-stream" in response.headers.get("Content-Type", ""):
        text = "\n".join(line[5:].strip() for line in text.splitlines() if line.startswith("data:"))
    try:
        answer = json.loads(text)
    except ValueError as exc:
        raise ToolFailure(f"The gateway answered HTTP {response.status_code} for {listing.slug}.") from exc
    if isinstance(answer, dict) and "result" in answer:
        return answer["result"]
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    raise ToolFailure(f"{listing.slug} refused the call: {error.get('message', response.status_code)}")
