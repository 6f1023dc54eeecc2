"""The first run's market: categories and listings, three of them over demo APIs this app serves; idempotent."""
from __future__ import annotations

import yaml
from django.db import transaction

from . import catalogue
from .models import Category, Listing
from .services import version_add

PUBLISHER = "MCP Gateway"
NAMESPACE = "io.mcpgw.market"


def _petstore_yaml(demo_api_base: str) -> str:
    from console.demo_seed import petstore_yaml

    doc = yaml.safe_load(petstore_yaml(base_url=demo_api_base))
    for scheme in doc["server"].get("securitySchemes", []):
        scheme.pop("defaultCredential", None)  # the subscriber supplies the key
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000)


@transaction.atomic
def seed_market(*, demo_api_base: str) -> list[str]:
    """Create what is missing; the offline listings follow the demo API's address (it moves with the port)."""
    created: list[str] = []
    site_root = demo_api_base.removesuffix("/demo-api")
    for position, (slug, name) in enumerate(catalogue.CATEGORIES):
        Category.objects.update_or_create(slug=slug, defaults={"name": name, "position": position})
    categories = {c.slug: c for c in Category.objects.all()}
    for entry in catalogue.LISTINGS:
        offline = entry.get("offline", False)
        base = demo_api_base if entry.get("yaml") == "petstore" else f"{site_root}/market-demo"
        listing = Listing.objects.filter(slug=entry["slug"]).first()
        if listing is None:
            listing = Listing.objects.create(
                slug=entry["slug"], registry_name=f"{NAMESPACE}/{entry['slug']}", title=entry["title"],
                publisher=entry.get("publisher", PUBLISHER), icon=entry["icon"], category=categories[entry["category"]],
                tags=entry["tags"], summary=entry["summary"], kind=entry.get("kind", Listing.Kind.TEMPLATE),
                works_offline=offline)
            tool_yaml = ""
            if entry.get("yaml") == "petstore":
                tool_yaml = _petstore_yaml(demo_api_base)
            elif entry.get("yaml"):
                tool_yaml = entry["yaml"]
            version_add(listing=listing, version="1.0.0", readme=catalogue.readme_for(entry),
                        changelog="First release.", tool_yaml=tool_yaml, config_fields=entry.get("fields", []),
                        config_defaults={"baseUrl": base} if offline else {},
                        remote_url=entry.get("remote_url", ""), remote_transport=entry.get("remote_transport", ""),
                        approved=True)
            created.append(f"market listing {listing.slug}")
        elif offline:
            # Defaults are not part of what a version promises its subscribers' tools; the address follows the port.
            listing.versions.exclude(config_defaults={"baseUrl": base}).update(config_defaults={"baseUrl": base})
    return created
