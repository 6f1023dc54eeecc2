"""The market's own records: categories, listings and their versions, submissions under review, subscriptions."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Category(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Listing(models.Model):
    """An MCP server offered in the market; what a subscriber gets is its latest approved version."""

    class Kind(models.TextChoices):
        TEMPLATE = "template", "Hosted HTTP-to-MCP template"
        REMOTE = "remote", "Remote MCP server"
        TEAM_SERVER = "team_server", "Published from a team's instance"

    slug = models.SlugField(max_length=50, unique=True)
    # Registry name in reverse-DNS form (`namespace/name`), unique across the market.
    registry_name = models.CharField(max_length=200, unique=True)
    title = models.CharField(max_length=100)
    publisher = models.CharField(max_length=100)
    icon = models.CharField(max_length=8, default="MC")  # a short monogram, drawn as the listing's tile
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="listings")
    tags = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TEMPLATE)
    works_offline = models.BooleanField(default=False)
    needs_key = models.BooleanField(default=False)  # the latest version asks for a secret (a backend key)
    # The team that published it (null: shipped with the product).
    owner_team = models.ForeignKey("console.Team", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="market_listings")
    # Filled from the latest approved version, so search reads one row per listing.
    search_tools = models.TextField(blank=True)
    tool_count = models.PositiveIntegerField(default=0)
    listed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def latest_version(self) -> "ListingVersion | None":
        return self.versions.filter(status=ListingVersion.Status.APPROVED).order_by("-number").first()


class ListingVersion(models.Model):
    """One published state of a listing: README, tools, configuration fields, transports; immutable once approved."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()  # 1, 2, 3… in order of submission: what "newer" means
    version = models.CharField(max_length=40)  # as the publisher names it, e.g. 1.2.0
    changelog = models.TextField(blank=True)
    readme = models.TextField(blank=True)
    tool_yaml = models.TextField(blank=True)  # template and team-server listings
    # Non-secret defaults of the tool YAML's server.config (e.g. baseUrl).
    config_defaults = models.JSONField(default=dict, blank=True)
    # What a subscriber supplies: [{name, label, help, required, secret, scheme, default}]; a secret field with a
    # `scheme` becomes that security scheme's credential (encrypted by the console), others land in server.config.
    config_fields = models.JSONField(default=list, blank=True)
    remote_url = models.URLField(max_length=500, blank=True)  # remote listings
    remote_transport = models.CharField(max_length=16, blank=True)  # streamable_http | sse
    tools = models.JSONField(default=list, blank=True)  # [{name, description, inputSchema}] as subscribers see them
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["listing", "number"], name="uniq_listing_version_number")]

    def __str__(self) -> str:
        return f"{self.listing.slug} {self.version}"


class Submission(models.Model):
    """A team's request to list a server (or a new version of its listing), waiting for staff review."""

    class Source(models.TextChoices):
        MCP_SERVER = "mcp_server", "An MCP server of the team"
        TOOL_YAML = "tool_yaml", "Tool YAML"
        OPENAPI = "openapi", "OpenAPI file"
        SERVER_JSON = "server_json", "server.json"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    team = models.ForeignKey("console.Team", on_delete=models.CASCADE, related_name="market_submissions")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=12, choices=Source.choices)
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="submissions")
    version = models.OneToOneField(ListingVersion, on_delete=models.CASCADE, related_name="submission")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class Subscription(models.Model):
    """What "Get endpoint" provisioned for a user of a team: exactly these console objects, removed together."""

    team = models.ForeignKey("console.Team", on_delete=models.CASCADE, related_name="market_subscriptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="market_subscriptions")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="subscriptions")
    version = models.ForeignKey(ListingVersion, on_delete=models.PROTECT, related_name="subscriptions")
    instance = models.ForeignKey("console.Instance", on_delete=models.CASCADE, related_name="+")
    mcp_server = models.ForeignKey("console.McpServer", null=True, on_delete=models.SET_NULL, related_name="+")
    consumer = models.ForeignKey("console.Consumer", null=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey("console.ConsumerApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    backend_service = models.ForeignKey("console.BackendService", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    config = models.JSONField(default=dict, blank=True)  # the non-secret values the subscriber gave
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["team", "user", "listing"], name="uniq_market_subscription")]


class RouterKey(models.Model):
    """A user's market consumer: the identity the market router endpoint authenticates (key stored as a digest)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="market_router")
    team = models.ForeignKey("console.Team", on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey("console.Instance", on_delete=models.CASCADE, related_name="+")
    consumer = models.ForeignKey("console.Consumer", on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("console.ConsumerApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
