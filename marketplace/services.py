"""Writes of the market: listings and versions, subscriptions ("Get endpoint") through the console's services,
submissions and their review, server.json import. The market never writes console tables itself."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from django.db import IntegrityError, transaction
from django.utils import timezone

from console import services as console
from console.errors import DomainError, NotFound
from console.models import Instance, McpServer, Team
from console.permissions import MANAGE_CONFIG, MANAGE_TEAM, require_role
from console.services.common import audit
from console.toolyaml import ToolYamlError, export_tool_yaml, input_schema_from_args, parse_tool_yaml

from .models import Category, Listing, ListingVersion, Submission, Subscription

CONFIG_VALUE_MAX = 2000
TEXT_MAX = {"title": 100, "summary": 200, "publisher": 100, "version": 40, "changelog": 5000, "readme": 50_000}
SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$")
REGISTRY_NAME_RE = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")


def _invalid(field: str, message: str) -> DomainError:
    return DomainError("Please correct the errors below.", {field: [message]})


# ---------------------------------------------------------------- listings and versions

def tools_of_yaml(text: str) -> list[dict[str, Any]]:
    """The tools a subscriber will see (name, description, inputSchema), read from tool YAML."""
    doc = parse_tool_yaml(text)
    return [{"name": t.name, "description": t.description, "inputSchema": input_schema_from_args(t.args)}
            for t in doc.tools]


def _refresh_search(listing: Listing) -> None:
    latest = listing.latest_version()
    tools = latest.tools if latest else []
    listing.search_tools = " ".join(f"{t.get('name', '')} {t.get('description', '')}" for t in tools)[:20_000]
    listing.tool_count = len(tools)
    listing.listed = latest is not None
    listing.needs_key = any(f.get("secret") and f.get("required") for f in (latest.config_fields if latest else []))
    listing.save(update_fields=["search_tools", "tool_count", "listed", "needs_key", "updated_at"])


def _next_number(listing: Listing) -> int:
    last = listing.versions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def _clean_fields(fields) -> list[dict]:
    if not isinstance(fields, list) or len(fields) > 20:
        raise _invalid("config_fields", "Give at most 20 configuration fields as a list.")
    cleaned = []
    for field in fields:
        if not isinstance(field, dict) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$", str(field.get("name", ""))):
            raise _invalid("config_fields", "Each field needs a name of letters, digits and _.")
        cleaned.append({"name": field["name"], "label": str(field.get("label") or field["name"])[:100],
                        "help": str(field.get("help") or "")[:300], "required": bool(field.get("required")),
                        "secret": bool(field.get("secret")), "scheme": str(field.get("scheme") or "")[:100],
                        "default": "" if field.get("secret") else str(field.get("default") or "")[:CONFIG_VALUE_MAX]})
    return cleaned


def version_add(*, listing: Listing, version: str, readme: str = "", changelog: str = "", tool_yaml: str = "",
                config_fields=None, config_defaults: dict | None = None, remote_url: str = "",
                remote_transport: str = "", approved: bool = False) -> ListingVersion:
    """A new version of a listing (pending review unless `approved`); earlier versions are never changed."""
    tools: list[dict] = []
    if tool_yaml:
        tools = tools_of_yaml(tool_yaml)
    elif not remote_url:
        raise _invalid("tool_yaml", "Give the tool YAML (or, for a remote server, its URL).")
    row = ListingVersion.objects.create(
        listing=listing, number=_next_number(listing), version=(version or "1.0.0")[:40], readme=readme,
        changelog=changelog, tool_yaml=tool_yaml, config_fields=_clean_fields(config_fields or []),
        config_defaults=config_defaults or {}, remote_url=remote_url, remote_transport=remote_transport,
        tools=tools, status=ListingVersion.Status.APPROVED if approved else ListingVersion.Status.PENDING,
        approved_at=timezone.now() if approved else None)
    if approved:
        _refresh_search(listing)
    return row


# ---------------------------------------------------------------- subscriptions ("Get endpoint")

@dataclass
class SubscribeResult:
    subscription: Subscription
    api_key: str | None  # shown once, on the call that made the subscription
    created: bool


def _clean_config(version: ListingVersion, config) -> tuple[dict[str, str], dict[str, str]]:
    """(non-secret values, secret values) of a subscriber's configuration; unknown or missing fields are errors."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _invalid("config", "Give the configuration as an object of field names and values.")
    known = {f["name"]: f for f in version.config_fields}
    errors: dict[str, list[str]] = {}
    for name in config:
        if name not in known:
            errors.setdefault("config", []).append(f"{str(name)[:60]} is not a configuration field of this listing.")
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for name, field in known.items():
        value = config.get(name, field.get("default", ""))
        if value is None:
            value = ""
        if not isinstance(value, (str, int, float, bool)):
            errors[f"config.{name}"] = ["Give a text value."]
            continue
        value = str(value).strip()
        if len(value) > CONFIG_VALUE_MAX:
            errors[f"config.{name}"] = [f"Use at most {CONFIG_VALUE_MAX} characters."]
        elif field["required"] and not value:
            errors[f"config.{name}"] = [f"{field['label']} is required."]
        elif value:
            (secret if field["secret"] else plain)[name] = value
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    return plain, secret


def render_tool_yaml(version: ListingVersion, plain: dict[str, str], secret: dict[str, str]) -> str:
    """The version's tool YAML with the defaults and the subscriber's values in server.config, and each secret as
    its security scheme's credential (the console keeps it encrypted)."""
    doc = yaml.safe_load(version.tool_yaml) or {}
    server = doc.setdefault("server", {"name": version.listing.slug})
    config = server.setdefault("config", {}) or {}
    server["config"] = config
    config.update(version.config_defaults or {})
    schemes = {s.get("id"): s for s in server.get("securitySchemes") or [] if isinstance(s, dict)}
    for field in version.config_fields:
        name = field["name"]
        if field["secret"]:
            scheme = schemes.get(field.get("scheme"))
            if scheme is not None:
                scheme["defaultCredential"] = secret.get(name, "")
                if not scheme["defaultCredential"]:
                    scheme.pop("defaultCredential")
        elif name in plain:
            config[name] = plain[name]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000)


def _consumer_name(listing: Listing, user) -> str:
    return f"market-{listing.slug}-{getattr(user, 'username', '') or 'user'}"


@transaction.atomic
def listing_subscribe(*, actor, listing: Listing, team: Team, instance: Instance, config=None,
                      extra_consumers: tuple = ()) -> SubscribeResult:
    """One click: an endpoint provisioned in `instance`, or the subscription the user already has there."""
    if instance.team_id != team.pk:
        raise NotFound("No such instance.")
    # An endpoint is a consumer and its key, which the team's admins manage (console/permissions.py).
    require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
    existing = Subscription.objects.filter(team=team, user=actor, listing=listing).first()
    if existing is not None:
        return SubscribeResult(existing, None, False)
    version = listing.latest_version()
    if version is None:
        raise NotFound("No such listing.")
    plain, secret = _clean_config(version, config)
    endpoint = console.market_endpoint_provision(
        actor=actor, instance=instance, name=listing.slug, description=listing.summary,
        tool_yaml=render_tool_yaml(version, plain, secret) if version.tool_yaml else "",
        remote_url=version.remote_url, remote_transport=version.remote_transport,
        consumer_name=_consumer_name(listing, actor), extra_consumers=extra_consumers)
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                team=team, user=actor, listing=listing, version=version, instance=instance,
                mcp_server=endpoint.mcp_server, consumer=endpoint.consumer, api_key=endpoint.api_key,
                backend_service=endpoint.backend_service, config=plain)
    except IntegrityError as exc:  # a second click raced the first: its endpoint is rolled back with this one
        raise DomainError("You are already subscribed to this listing.", {"non_field": [
            "Open My subscriptions to see it."]}, code="conflict") from exc
    audit(actor=actor, team=team, action="market_subscription.create", obj=subscription,
          detail={"listing": listing.slug, "version": version.version, "mcp_server": endpoint.mcp_server.name})
    return SubscribeResult(subscription, endpoint.secret, True)


@transaction.atomic
def subscription_rotate_key(*, actor, subscription: Subscription) -> str:
    require_role(actor=actor, team=subscription.team, at_least=MANAGE_TEAM)
    if subscription.consumer is None:
        raise DomainError("This subscription's consumer was deleted in the console.", {"non_field": [
            "Unsubscribe and subscribe again."]})
    key, secret = console.market_endpoint_rotate_key(actor=actor, consumer=subscription.consumer,
                                                     api_key=subscription.api_key)
    subscription.api_key = key
    subscription.save(update_fields=["api_key", "updated_at"])
    audit(actor=actor, team=subscription.team, action="market_subscription.rotate_key", obj=subscription,
          detail={"listing": subscription.listing.slug, "hint": key.hint})
    return secret


@transaction.atomic
def subscription_upgrade(*, actor, subscription: Subscription) -> Subscription:
    """Move to the listing's latest approved version: its tools replace the old ones; endpoint and key stay."""
    require_role(actor=actor, team=subscription.team, at_least=MANAGE_TEAM)
    latest = subscription.listing.latest_version()
    if latest is None or latest.number <= subscription.version.number:
        raise DomainError("This subscription already has the latest version.", {"version": [
            "There is no newer version to upgrade to."]})
    if subscription.mcp_server is None:
        raise DomainError("This subscription's MCP server was deleted in the console.", {"non_field": [
            "Unsubscribe and subscribe again."]})
    if latest.tool_yaml and subscription.mcp_server.server_type == McpServer.Type.HTTP_TO_MCP:
        # Secrets stay as stored: a scheme without a new credential keeps the one the console holds.
        console.market_endpoint_retool(actor=actor, mcp_server=subscription.mcp_server,
                                       tool_yaml=render_tool_yaml(latest, subscription.config, {}))
    previous = subscription.version.version
    subscription.version = latest
    subscription.save(update_fields=["version", "updated_at"])
    audit(actor=actor, team=subscription.team, action="market_subscription.upgrade", obj=subscription,
          detail={"listing": subscription.listing.slug, "from": previous, "to": latest.version})
    return subscription


@transaction.atomic
def subscription_delete(*, actor, subscription: Subscription) -> None:
    """Unsubscribe: exactly the server, consumer (with its key) and backend service provisioned go."""
    require_role(actor=actor, team=subscription.team, at_least=MANAGE_TEAM)
    console.market_endpoint_remove(actor=actor, team=subscription.team, mcp_server=subscription.mcp_server,
                                   consumer=subscription.consumer, backend_service=subscription.backend_service)
    audit(actor=actor, team=subscription.team, action="market_subscription.delete", obj=subscription,
          detail={"listing": subscription.listing.slug})
    subscription.delete()


def subscriptions_remove_for_instance(*, actor, instance: Instance, **_signal) -> None:
    """An instance being deleted: each subscription in it is unsubscribed (its consumer and key go too, not only the
    server), and a market router living in it loses its consumer."""
    from .models import RouterKey

    for subscription in Subscription.objects.filter(instance=instance).select_related(
            "team", "listing", "mcp_server__instance", "consumer", "backend_service__instance"):
        subscription_delete(actor=actor, subscription=subscription)
    for router in RouterKey.objects.filter(instance=instance).select_related("consumer"):
        consumer = router.consumer
        router.delete()
        console.consumer_delete(actor=actor, consumer=consumer)


# ---------------------------------------------------------------- submissions and review

def _text(data: dict, field: str, *, required: bool = False) -> str:
    value = data.get(field, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _invalid(field, "Give text.")
    value = value.strip()
    if len(value) > TEXT_MAX.get(field, 200):
        raise _invalid(field, f"Use at most {TEXT_MAX.get(field, 200)} characters.")
    if required and not value:
        raise _invalid(field, "This field is required.")
    return value


def _tags(value) -> list[str]:
    if isinstance(value, str):
        value = [t for t in re.split(r"[,\s]+", value) if t]
    if not isinstance(value, list) or len(value) > 10 or not all(isinstance(t, str) and len(t) <= 30 for t in value):
        raise _invalid("tags", "Give at most 10 tags of up to 30 characters.")
    return [t.strip().lower() for t in value if t.strip()]


def _fields_for_server(server: McpServer) -> list[dict]:
    """A team's server published: each backend security scheme becomes a secret field its subscribers fill."""
    return [{"name": re.sub(r"[^A-Za-z0-9_]", "_", s.scheme_id)[:40] or "credential",
             "label": f"{s.scheme_id} credential", "help": "The backend credential this server needs.",
             "required": False, "secret": True, "scheme": s.scheme_id} for s in server.security_schemes.all()]


@transaction.atomic
def submission_create(*, actor, team: Team, source: str, data: dict[str, Any],
                      mcp_server: McpServer | None = None) -> Submission:
    """A listing (or a new version of the team's listing `data["listing"]`) waiting for staff review."""
    require_role(actor=actor, team=team, at_least=MANAGE_CONFIG)
    if source not in Submission.Source.values:
        raise _invalid("source", "Choose mcp_server, tool_yaml, openapi or server_json.")
    fields = data.get("config_fields") or []
    remote_url = remote_transport = ""
    if source == Submission.Source.MCP_SERVER:
        if mcp_server is None or mcp_server.instance.team_id != team.pk:
            raise _invalid("mcp_server", "Choose an MCP server of this team.")
        if mcp_server.server_type != McpServer.Type.HTTP_TO_MCP:
            raise _invalid("mcp_server", "Only HTTP-to-MCP servers are published as templates.")
        tool_yaml = export_tool_yaml(server=mcp_server, tools=mcp_server.tools.filter(enabled=True))
        fields = fields or _fields_for_server(mcp_server)
    elif source == Submission.Source.TOOL_YAML:
        tool_yaml = data.get("tool_yaml")
        if not isinstance(tool_yaml, str) or not tool_yaml.strip():
            raise _invalid("tool_yaml", "Paste the tool YAML.")
    elif source == Submission.Source.SERVER_JSON:
        return server_json_import(actor=actor, team=team, document=data.get("server_json"))
    else:
        tool_yaml, title = openapi_tool_yaml(actor=actor, team=team, text=data.get("openapi"),
                                             file_name=str(data.get("openapi_name") or "")[:200])
        fields = fields or _fields_for_yaml(tool_yaml)
        if title and not data.get("listing") and not data.get("title"):
            data = {**data, "title": title[:100]}
    if len(tool_yaml) > 500_000:
        raise _invalid("tool_yaml", "The tool YAML is too large (at most 500 kB).")
    try:
        tools_of_yaml(tool_yaml)
    except ToolYamlError as exc:
        raise DomainError(exc.message, {"tool_yaml": [m for ms in exc.details.values() for m in ms]}) from exc
    listing = _listing_for(actor=actor, team=team, data=data, kind=Listing.Kind.TEAM_SERVER)
    version = version_add(listing=listing, version=_text(data, "version") or "1.0.0",
                          readme=_text(data, "readme"), changelog=_text(data, "changelog"), tool_yaml=tool_yaml,
                          config_fields=fields, remote_url=remote_url, remote_transport=remote_transport)
    return _submission(actor=actor, team=team, source=source, listing=listing, version=version)


class _Scratch(Exception):
    """Raised to roll back the scratch server an OpenAPI submission is imported into, carrying the import's outcome."""

    def __init__(self, job):
        super().__init__("scratch import")
        self.job = job


def openapi_tool_yaml(*, actor, team: Team, text, file_name: str = "") -> tuple[str, str]:
    """(tool YAML, title) of an OpenAPI description, made by the console's import job (the task's own code, run here in
    the foreground) on a scratch HTTP-to-MCP server of the team's first instance that is rolled back with the job:
    a submission leaves nothing in the team's instances."""
    from console.models import ImportJob
    from console.services.imports import import_job_create, import_job_run

    if not isinstance(text, (str, bytes)) or not text.strip():
        raise _invalid("openapi", "Paste the OpenAPI description or upload its file.")
    instance = Instance.objects.filter(team=team).order_by("pk").first()
    if instance is None:
        raise _invalid("openapi", "The import needs an instance of the team: create one first.")
    try:
        with transaction.atomic():
            scratch = console.mcp_server_create(
                actor=actor, instance=instance, domains=[], description="Scratch server of a market import.",
                name=_free_server_name(instance, "market-import"))
            if isinstance(text, bytes):
                job = import_job_create(actor=actor, mcp_server=scratch, files=[(file_name or "openapi.yaml", text)])
            else:
                job = import_job_create(actor=actor, mcp_server=scratch, text=text)
            raise _Scratch(import_job_run(job_id=job.pk))
    except _Scratch as outcome:
        job = outcome.job
    except DomainError as exc:
        raise DomainError(exc.message, {"openapi": [m for ms in (exc.details or {}).values() for m in ms]
                                        or [exc.message]}, code=exc.code) from exc
    if job is None or job.status != ImportJob.Status.SUCCEEDED or not job.preview_yaml:
        problems = [str(p.get("message", ""))[:300] for p in (job.errors if job else [])][:20]
        raise DomainError("The OpenAPI description could not be imported.",
                          {"openapi": problems or ["The import made no tools."]})
    return job.preview_yaml, job.title


def _free_server_name(instance: Instance, base: str) -> str:
    from console.services.subscriptions import _free_name

    return _free_name(base, lambda n: McpServer.objects.filter(instance=instance, name=n).exists())


def _fields_for_yaml(tool_yaml: str) -> list[dict]:
    """Each security scheme of imported tool YAML becomes a secret field; the default upstream one is required."""
    server = (yaml.safe_load(tool_yaml) or {}).get("server") or {}
    default = (server.get("defaultUpstreamSecurity") or {}).get("id")
    fields = []
    for scheme in (server.get("securitySchemes") or [])[:20]:
        scheme_id = str(scheme.get("id") or "")
        if scheme_id:
            fields.append({"name": re.sub(r"[^A-Za-z0-9_]", "_", scheme_id)[:40] or "credential",
                           "label": f"{scheme_id} credential", "help": "The API's credential (kept encrypted).",
                           "required": scheme_id == default, "secret": True, "scheme": scheme_id})
    return fields


def _submission(*, actor, team: Team, source: str, listing: Listing, version: ListingVersion) -> Submission:
    submission = Submission.objects.create(team=team, submitted_by=actor if getattr(actor, "pk", None) else None,
                                           source=source, listing=listing, version=version)
    audit(actor=actor, team=team, action="market_submission.create", obj=submission,
          detail={"listing": listing.slug, "version": version.version})
    return submission


def _listing_for(*, actor, team: Team, data: dict, kind: str) -> Listing:
    """The team's own listing named by `listing` (a new version), or a new unlisted listing."""
    existing_slug = data.get("listing")
    if existing_slug:
        listing = Listing.objects.filter(slug=str(existing_slug)[:50], owner_team=team).first()
        if listing is None:
            raise NotFound("No such listing of this team.")
        return listing
    slug = _text(data, "slug", required=True).lower()
    if not SLUG_RE.match(slug):
        raise _invalid("slug", "Use 1-50 lowercase letters, digits or -, starting and ending with a letter or digit.")
    if Listing.objects.filter(slug=slug).exists():
        raise _invalid("slug", "A listing with this slug exists; choose another.")
    category = Category.objects.filter(slug=str(data.get("category") or "")).first()
    if category is None:
        raise _invalid("category", "Choose one of the market's categories.")
    registry_name = _text(data, "registry_name") or f"io.mcpgw.{team.slug}/{slug}"
    if not REGISTRY_NAME_RE.match(registry_name) or Listing.objects.filter(registry_name=registry_name).exists():
        raise _invalid("registry_name", "Give a free reverse-DNS name such as com.example/weather.")
    return Listing.objects.create(
        slug=slug, registry_name=registry_name, title=_text(data, "title", required=True),
        icon=_text(data, "title", required=True)[:2].upper(),
        publisher=_text(data, "publisher") or team.name, category=category, tags=_tags(data.get("tags") or []),
        summary=_text(data, "summary", required=True), kind=kind, owner_team=team, listed=False)


def _require_staff(actor) -> None:
    if not getattr(actor, "is_staff", False):
        raise DomainError("Only staff review submissions.", code="permission_denied")


@transaction.atomic
def submission_approve(*, actor, submission: Submission) -> Submission:
    _require_staff(actor)
    submission = Submission.objects.select_for_update().get(pk=submission.pk)
    if submission.status != Submission.Status.PENDING:
        raise _invalid("status", f"This submission was already {submission.status}.")
    version = submission.version
    version.status = ListingVersion.Status.APPROVED
    version.approved_at = timezone.now()
    version.save(update_fields=["status", "approved_at"])
    submission.status = Submission.Status.APPROVED
    submission.reviewed_by, submission.reviewed_at = actor, timezone.now()
    submission.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    _refresh_search(submission.listing)
    audit(actor=actor, team=submission.team, action="market_submission.approve", obj=submission,
          detail={"listing": submission.listing.slug, "version": version.version})
    return submission


@transaction.atomic
def submission_reject(*, actor, submission: Submission, reason: str) -> Submission:
    _require_staff(actor)
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise _invalid("reason", "Say why, so the submitter can fix it.")
    submission = Submission.objects.select_for_update().get(pk=submission.pk)
    if submission.status != Submission.Status.PENDING:
        raise _invalid("status", f"This submission was already {submission.status}.")
    submission.version.status = ListingVersion.Status.REJECTED
    submission.version.save(update_fields=["status"])
    submission.status, submission.reason = Submission.Status.REJECTED, reason[:2000]
    submission.reviewed_by, submission.reviewed_at = actor, timezone.now()
    submission.save(update_fields=["status", "reason", "reviewed_by", "reviewed_at"])
    audit(actor=actor, team=submission.team, action="market_submission.reject", obj=submission,
          detail={"listing": submission.listing.slug, "reason": submission.reason})
    return submission


# ---------------------------------------------------------------- server.json import

@transaction.atomic
def server_json_import(*, actor, team: Team, document) -> Submission:
    """A `server.json` (schema 2025-12-11) with a remote becomes a remote-server listing submission."""
    from .registry import validate_server_json

    require_role(actor=actor, team=team, at_least=MANAGE_CONFIG)
    doc = validate_server_json(document)
    remote = next((r for r in doc.get("remotes") or [] if r.get("type") in ("streamable-http", "sse")), None)
    if remote is None:
        raise _invalid("server_json", "The server.json has no streamable-http or sse remote to proxy to.")
    name = doc["name"]
    slug = re.sub(r"[^a-z0-9-]+", "-", name.split("/", 1)[1].lower()).strip("-")[:50] or "server"
    base, n = slug, 2
    while Listing.objects.filter(slug=slug).exists():
        slug, n = f"{base[:46]}-{n}", n + 1
    listing = Listing.objects.filter(registry_name=name, owner_team=team).first()
    if listing is None:
        if Listing.objects.filter(registry_name=name).exists():
            raise _invalid("server_json", f"{name} is listed by someone else.")
        category = Category.objects.filter(slug="developer").first() or Category.objects.first()
        listing = Listing.objects.create(
            slug=slug, registry_name=name, title=(doc.get("title") or name.split("/", 1)[1])[:100],
            icon=(doc.get("title") or name.split("/", 1)[1])[:2].upper(),
            publisher=team.name, category=category, tags=["remote"], summary=doc["description"][:200],
            kind=Listing.Kind.REMOTE, owner_team=team, listed=False)
    version = version_add(listing=listing, version=doc["version"], readme=f"# {listing.title}\n\n{doc['description']}",
                          remote_url=remote["url"],
                          remote_transport="sse" if remote["type"] == "sse" else "streamable_http")
    return _submission(actor=actor, team=team, source=Submission.Source.SERVER_JSON, listing=listing, version=version)


def _free_consumer_name(team: Team, base: str) -> str:
    from console.services.subscriptions import _free_name
    from console.models import Consumer

    return _free_name(base, lambda n: Consumer.objects.filter(team=team, name=n).exists())
