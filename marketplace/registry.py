"""The MCP Registry API (stable revision v0.1) over the market's approved listings, and server.json validation."""
from __future__ import annotations

import base64
import binascii
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from django.http import HttpRequest, JsonResponse
from django.urls import re_path

from console.errors import DomainError
from console.views.common import public_base_url

from . import selectors
from .models import Listing, ListingVersion

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "server.schema.json"
DEFAULT_LIMIT = 30
MAX_LIMIT = 100
DOCUMENT_MAX = 256 * 1024
OFFICIAL = "io.modelcontextprotocol.registry/official"


@functools.cache
def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def validate_server_json(document: Any) -> dict:
    """The document if it is a valid server.json of schema 2025-12-11, else a domain error naming each problem."""
    if isinstance(document, (str, bytes)):
        if len(document) > DOCUMENT_MAX:
            raise DomainError("The server.json is too large.", {"server_json": ["At most 256 kB."]})
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise DomainError("The server.json is not JSON.", {"server_json": [str(exc)[:200]]}) from exc
    if not isinstance(document, dict):
        raise DomainError("The server.json must be a JSON object.", {"server_json": ["Give a JSON object."]})
    if len(json.dumps(document)) > DOCUMENT_MAX:
        raise DomainError("The server.json is too large.", {"server_json": ["At most 256 kB."]})
    problems = []
    for error in sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))[:20]:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"{where}: {error.message[:200]}")
    if problems:
        raise DomainError("The server.json does not follow the 2025-12-11 schema.", {"server_json": problems})
    return document


# ---------------------------------------------------------------- documents

def _endpoint_base(request: HttpRequest, listing: Listing) -> str:
    return f"{public_base_url(request)}/mcp-servers/{listing.slug}"


def server_document(request: HttpRequest, listing: Listing, version: ListingVersion) -> dict:
    """The listing as server.json: its remotes are this gateway's endpoints, the subscription key a secret header."""
    key_header = {"name": "Authorization", "description": "Bearer and the API key that Get endpoint shows "
                                                          f"({public_base_url(request)}/market/l/{listing.slug}/).",
                  "isRequired": True, "isSecret": True}
    base = _endpoint_base(request, listing)
    doc = {
        "$schema": SCHEMA_URL, "name": listing.registry_name, "title": listing.title[:100],
        "description": listing.summary[:100], "version": version.version,
        "websiteUrl": f"{public_base_url(request)}/market/l/{listing.slug}/",
        "remotes": [{"type": "streamable-http", "url": base, "headers": [key_header]},
                    {"type": "sse", "url": base + "/sse", "headers": [key_header]}],
    }
    return doc


def _entry(request, listing: Listing, version: ListingVersion, latest_number: int) -> dict:
    return {"server": server_document(request, listing, version), "_meta": {OFFICIAL: {
        "status": "active", "publishedAt": (version.approved_at or version.created_at).isoformat(),
        "updatedAt": (version.approved_at or version.created_at).isoformat(),
        "isLatest": version.number == latest_number}}}


def _approved() -> Any:
    return (ListingVersion.objects.filter(status=ListingVersion.Status.APPROVED, listing__listed=True)
            .select_related("listing"))


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"title": message, "status": status, "detail": message}, status=status)


def _cursor_decode(raw: str) -> tuple[str, int] | None:
    try:
        name, _, number = base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)).decode().rpartition("|")
        return name, int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _cursor_encode(name: str, number: int) -> str:
    return base64.urlsafe_b64encode(f"{name}|{number}".encode()).decode().rstrip("=")


def _browsable(request) -> JsonResponse | None:
    if not selectors.may_browse(request.user):
        return _error(401, "Sign in to read the market's registry.")
    return None


def server_list(request: HttpRequest) -> JsonResponse:
    denied = _browsable(request)
    if denied:
        return denied
    try:
        limit = int(request.GET.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        return _error(400, "limit must be a whole number from 1 to 100.")
    if not 1 <= limit <= MAX_LIMIT:
        return _error(400, "limit must be a whole number from 1 to 100.")
    versions = _approved()
    search = (request.GET.get("search") or "")[:200]
    if search:
        versions = versions.filter(listing__registry_name__icontains=search)
    latest = {}
    for listing_id, number in versions.values_list("listing_id", "number"):
        latest[listing_id] = max(number, latest.get(listing_id, 0))
    if request.GET.get("version") == "latest":
        versions = [v for v in versions if v.number == latest[v.listing_id]]
    elif request.GET.get("version"):
        versions = versions.filter(version=request.GET["version"][:40])
    rows = sorted(versions, key=lambda v: (v.listing.registry_name, v.number))
    if request.GET.get("cursor"):
        after = _cursor_decode(request.GET["cursor"][:500])
        if after is None:
            return _error(400, "The cursor is not one this registry gave out.")
        rows = [v for v in rows if (v.listing.registry_name, v.number) > after]
    page = rows[:limit]
    metadata: dict[str, Any] = {"count": len(page)}
    if len(rows) > limit:
        metadata["nextCursor"] = _cursor_encode(page[-1].listing.registry_name, page[-1].number)
    return JsonResponse({"servers": [_entry(request, v.listing, v, latest[v.listing_id]) for v in page],
                         "metadata": metadata})


def _versions_of(name: str):
    versions = list(_approved().filter(listing__registry_name=name).order_by("number"))
    return versions, (versions[-1].number if versions else 0)


def server_versions(request: HttpRequest, name: str) -> JsonResponse:
    denied = _browsable(request)
    if denied:
        return denied
    versions, latest = _versions_of(name)
    if not versions:
        return _error(404, "Server not found")
    return JsonResponse({"servers": [_entry(request, v.listing, v, latest) for v in versions],
                         "metadata": {"count": len(versions)}})


def server_version(request: HttpRequest, name: str, version: str) -> JsonResponse:
    denied = _browsable(request)
    if denied:
        return denied
    versions, latest = _versions_of(name)
    chosen = [v for v in versions if v.number == latest] if version == "latest" else \
        [v for v in versions if v.version == version]
    if not chosen:
        return _error(404, "Server not found")
    v = chosen[-1]
    return JsonResponse(_entry(request, v.listing, v, latest))


# serverName arrives URL-decoded (its "/" was %2F), so it is matched greedily up to /versions.
urlpatterns = [
    re_path(r"^servers$", server_list, name="registry_server_list"),
    re_path(r"^servers/(?P<name>.+)/versions$", server_versions, name="registry_server_versions"),
    re_path(r"^servers/(?P<name>.+)/versions/(?P<version>[^/]+)$", server_version, name="registry_server_version"),
]
