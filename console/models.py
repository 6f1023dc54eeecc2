"""Configuration owned by the console: teams, instances, backend services, MCP servers and tools."""
from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from .crypto import EncryptedTextField

SLUG_RE = r"^[a-z0-9]([a-z0-9-_]{0,61}[a-z0-9])?$"
slug_validator = RegexValidator(
    SLUG_RE, "Use 1-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit."
)
TOOL_NAME_RE = r"^[A-Za-z0-9_.-]{1,128}$"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=63, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"
        VIEWER = "viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="uniq_team_member")]


class Instance(models.Model):
    """A gateway instance; its name is global because the no-DNS path form names it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="instances")
    name = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    region = models.CharField(max_length=63, default="local")
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False, help_text="Serves requests whose Host matches no domain.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_instance")
        ]

    def __str__(self) -> str:
        return self.name


class BackendService(models.Model):
    class Protocol(models.TextChoices):
        HTTP = "http", "HTTP"
        MCP = "mcp", "MCP"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=63, validators=[slug_validator])
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.HTTP)
    base_url = models.URLField(max_length=500)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="uniq_service_name")]

    def __str__(self) -> str:
        return self.name


class McpServer(models.Model):
    class Type(models.TextChoices):
        HTTP_TO_MCP = "http_to_mcp", "HTTP to MCP"
        DIRECT_PROXY = "direct_proxy", "Direct Proxy"

    class Transport(models.TextChoices):
        SSE = "sse", "SSE"
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="mcp_servers")
    name = models.CharField(max_length=63, validators=[slug_validator])
    description = models.TextField(blank=True)
    server_type = models.CharField(max_length=16, choices=Type.choices, default=Type.HTTP_TO_MCP)
    backend_service = models.ForeignKey(
        BackendService, null=True, blank=True, on_delete=models.PROTECT, related_name="mcp_servers"
    )
    backend_transport = models.CharField(max_length=16, choices=Transport.choices, blank=True)
    backend_path = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    # `server.config` of the tool YAML: templates see it as .config
    config = models.JSONField(default=dict, blank=True)
    # defaultDownstreamSecurity / defaultUpstreamSecurity {id, passthrough}; credentials live encrypted below
    default_downstream_security = models.JSONField(default=dict, blank=True)
    default_upstream_security = models.JSONField(default=dict, blank=True)
    default_upstream_credential = EncryptedTextField(blank=True, default="")
    allow_tools = models.JSONField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="uniq_mcp_server_name")]

    def __str__(self) -> str:
        return self.name


class McpDomain(models.Model):
    """A host name an MCP server answers on; it belongs to one MCP server across the whole installation."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="domains")
    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="domains")
    host = models.CharField(max_length=253)

    class Meta:
        ordering = ["host"]
        constraints = [models.UniqueConstraint(fields=["host"], name="uniq_domain_host")]

    def __str__(self) -> str:
        return self.host


class SecurityScheme(models.Model):
    """A backend (upstream) authentication scheme of an MCP server: Basic, Bearer or API key."""

    class Type(models.TextChoices):
        HTTP = "http"
        API_KEY = "apiKey"

    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="security_schemes")
    scheme_id = models.CharField(max_length=100)
    type = models.CharField(max_length=8, choices=Type.choices)
    scheme = models.CharField(max_length=10, blank=True)  # basic | bearer for type http
    location = models.CharField(max_length=10, blank=True)  # header | query for apiKey
    param_name = models.CharField(max_length=200, blank=True)
    default_credential = EncryptedTextField(blank=True, default="")

    class Meta:
        ordering = ["scheme_id"]
        constraints = [models.UniqueConstraint(fields=["mcp_server", "scheme_id"], name="uniq_scheme_id")]


class Tool(models.Model):
    class Origin(models.TextChoices):
        MANUAL = "manual", "Hand-written"
        OPENAPI = "openapi", "Imported from OpenAPI"

    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=128)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    args = models.JSONField(default=list, blank=True)
    request_template = models.JSONField(default=dict, blank=True)  # without security.credential
    request_credential = EncryptedTextField(blank=True, default="")  # requestTemplate.security.credential
    response_template = models.JSONField(default=dict, blank=True)
    error_response_template = models.TextField(blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    annotations = models.JSONField(null=True, blank=True)
    security = models.JSONField(default=dict, blank=True)  # downstream {id, passthrough}
    enabled = models.BooleanField(default=True)
    # Where the tool came from, so a later OpenAPI re-import can tell hand edits from its own output.
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    origin_ref = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["mcp_server", "name"], name="uniq_tool_name")]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A REST API token: shown once, stored only as its SHA-256 digest."""

    PREFIX = "mgc_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="cli")
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def new_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()


class Invitation(models.Model):
    """A link that lets one person join a team with a role; the secret is shown once, stored as a digest."""

    PREFIX = "mgi_"

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REVOKED = "revoked"
        EXPIRED = "expired"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=10, choices=TeamMembership.Role.choices, default=TeamMembership.Role.MEMBER)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    @classmethod
    def new_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def status_at(self, now) -> str:
        if self.accepted_at is not None:
            return self.Status.ACCEPTED
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at <= now:
            return self.Status.EXPIRED
        return self.Status.PENDING

    @property
    def status(self) -> str:
        from django.utils import timezone

        return self.status_at(timezone.now())


class AuditEvent(models.Model):
    """One configuration change, written in the same transaction as the change."""

    team = models.ForeignKey(Team, null=True, on_delete=models.SET_NULL, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class DemoPet(models.Model):
    """A row of the built-in demo REST API (/demo-api/), which exists to exercise HTTP-to-MCP."""

    name = models.CharField(max_length=100)
    tag = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, default="available")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
