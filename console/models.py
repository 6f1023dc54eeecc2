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


class DigestedSecret:
    """A secret shown once and kept only as its SHA-256 digest: a recognisable prefix plus 32 random bytes."""

    PREFIX = ""

    @classmethod
    def new_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()


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


class ConsumerAuthMethod(models.TextChoices):
    API_KEY = "api_key", "API Key"
    JWT = "jwt", "JWT"
    # MCP clients sign in through the console (console/oauth); API keys in the Authorization header still work.
    OAUTH = "oauth", "OAuth sign-in"


class CredentialSource(models.TextChoices):
    BEARER = "bearer", "Authorization: Bearer"
    HEADER = "header", "Header"
    QUERY = "query", "Query parameter"


class McpServer(models.Model):
    class Type(models.TextChoices):
        HTTP_TO_MCP = "http_to_mcp", "HTTP to MCP"
        DIRECT_PROXY = "direct_proxy", "Direct Proxy"
        HOSTED_STDIO = "hosted_stdio", "Hosted stdio"

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
    # Consumer Authentication: who may call this server's endpoint, and where the gateway reads the credential.
    consumer_auth_enabled = models.BooleanField(default=False)
    consumer_auth_method = models.CharField(max_length=8, choices=ConsumerAuthMethod.choices,
                                            default=ConsumerAuthMethod.API_KEY)
    consumer_auth_source = models.CharField(max_length=8, choices=CredentialSource.choices,
                                            default=CredentialSource.BEARER)
    consumer_auth_name = models.CharField(max_length=200, blank=True)  # header or query parameter name
    # Hosted stdio: the catalogue entry it runs, and the values of the entry's variables as a JSON object
    # (encrypted at rest as a whole, so secrets and plain values alike never sit in the table in the clear).
    hosted_entry = models.ForeignKey("HostedStdioEntry", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="mcp_servers")
    hosted_variables = EncryptedTextField(blank=True, default="")
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


class Consumer(models.Model):
    """A client identity of a team (an app, an agent, a laptop) that MCP servers may authorize."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="consumers")
    name = models.CharField(max_length=63, validators=[slug_validator])
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="uniq_consumer_name")]

    def __str__(self) -> str:
        return self.name


class ConsumerApiKey(DigestedSecret, models.Model):
    """An API key of a consumer: a prefix plus 32 random bytes, shown once, stored only as its SHA-256 digest."""

    PREFIX = "mck_"

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=16)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Written by the gateway off the request path (batched), so it lags by up to a flush interval.
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class JwtCredential(models.Model):
    """How a consumer's JWTs are verified: an HMAC secret, a PEM public key or a JWKS URL, plus the claims."""

    class Algorithm(models.TextChoices):
        HS256 = "HS256"
        HS384 = "HS384"
        HS512 = "HS512"
        RS256 = "RS256"
        RS384 = "RS384"
        RS512 = "RS512"
        PS256 = "PS256"
        PS384 = "PS384"
        PS512 = "PS512"
        ES256 = "ES256"
        ES384 = "ES384"
        ES512 = "ES512"
        EDDSA = "EdDSA"

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="jwt_credentials")
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices)
    secret = EncryptedTextField(blank=True, default="")  # HS* only
    public_key = models.TextField(blank=True)  # PEM, asymmetric algorithms
    jwks_url = models.URLField(max_length=500, blank=True)  # asymmetric algorithms, fetched through the egress policy
    issuer = models.CharField(max_length=500, blank=True)  # required `iss` when set
    audience = models.CharField(max_length=500, blank=True)  # required in `aud` when set
    # The claim whose value is the consumer's name (e.g. sub = "billing-agent").
    consumer_claim = models.CharField(max_length=100, default="sub")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class ConsumerAuthorization(models.Model):
    """A consumer allowed to call an MCP server; `tools` limits it to those tool names (null: all tools)."""

    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="authorizations")
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="authorizations")
    tools = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["consumer__name"]
        constraints = [models.UniqueConstraint(fields=["mcp_server", "consumer"], name="uniq_authorization")]


class OAuthConsent(models.Model):
    """A user's approval that an OAuth client acts as one consumer of the server's team on one MCP server."""

    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="oauth_consents")
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="oauth_consents")
    application = models.ForeignKey("oauth2_provider.Application", on_delete=models.CASCADE,
                                    related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mcp_server", "application", "user"],
                                               name="uniq_oauth_consent")]


class ConsumerOAuthToken(models.Model):
    """An OAuth access token issued to a client acting as a consumer: listed on the consumer's page, revocable."""

    access_token = models.OneToOneField("oauth2_provider.AccessToken", on_delete=models.CASCADE,
                                        related_name="mcp_grant")
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="oauth_tokens")
    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="oauth_tokens")
    client_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class TeamOAuthClient(models.Model):
    """An OAuth client an operator registered for the team (a confidential web app, a fixed redirect URI)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="oauth_clients")
    application = models.OneToOneField("oauth2_provider.Application", on_delete=models.CASCADE,
                                       related_name="team_client")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class ApiToken(DigestedSecret, models.Model):
    """A REST API token: shown once, stored only as its SHA-256 digest."""

    PREFIX = "mgc_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="cli")
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)


class Invitation(DigestedSecret, models.Model):
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


# ---------------------------------------------------------------- governance: rate limits and call records

class RateLimitPolicy(models.Model):
    """A request quota on an MCP server for each consumer; a consumer and/or a tool narrows it (the most specific
    matching policy is the one applied)."""

    class Window(models.TextChoices):
        SECOND = "second"
        MINUTE = "minute"
        HOUR = "hour"
        DAY = "day"

    class AppliesTo(models.TextChoices):
        TOOL_CALLS = "tool_calls", "tools/call only"
        ALL = "all", "Every request (initialize, ping and listings too)"

    WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="rate_limits")
    consumer = models.ForeignKey(Consumer, null=True, blank=True, on_delete=models.CASCADE, related_name="rate_limits")
    tool = models.CharField(max_length=128, blank=True)  # blank: every tool
    requests = models.PositiveIntegerField()
    window = models.CharField(max_length=8, choices=Window.choices, default=Window.MINUTE)
    burst = models.PositiveIntegerField(null=True, blank=True)  # back-to-back requests allowed; null: `requests`
    applies_to = models.CharField(max_length=12, choices=AppliesTo.choices, default=AppliesTo.TOOL_CALLS)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["consumer__name", "tool", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["mcp_server", "consumer", "tool"], condition=Q(consumer__isnull=False),
                                    name="uniq_limit_consumer_tool"),
            models.UniqueConstraint(fields=["mcp_server", "tool"], condition=Q(consumer__isnull=True),
                                    name="uniq_limit_tool"),
        ]

    def describe(self) -> str:
        return f"{self.requests} per {self.window}" + (f" (burst {self.burst})" if self.burst else "")


class CallRecord(models.Model):
    """One tool call as the gateway saw it; written in batches off the request path."""

    class Outcome(models.TextChoices):
        OK = "ok"
        TOOL_ERROR = "tool_error", "Tool error"
        BACKEND_ERROR = "backend_error", "Backend error"
        REFUSED = "refused"
        LIMITED = "limited"

    at = models.DateTimeField(db_index=True)
    # No database constraint on either key: records arrive in batches after the call, so a server or consumer deleted
    # meanwhile must not make its deletion fail at commit (PostgreSQL checks deferred keys then). The batch writer
    # drops records of servers that are gone; a record racing a deletion is never shown (pages join the server).
    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="call_records",
                                   db_constraint=False)
    instance = models.CharField(max_length=63)
    consumer = models.ForeignKey(Consumer, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="call_records", db_constraint=False)
    consumer_name = models.CharField(max_length=63, blank=True)
    tool = models.CharField(max_length=128, blank=True)
    method = models.CharField(max_length=64, default="tools/call")
    transport = models.CharField(max_length=16, blank=True)  # sse | streamable | stateless
    revision = models.CharField(max_length=16, blank=True)
    session_id = models.CharField(max_length=100, blank=True)
    client_name = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    backend_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    request_bytes = models.PositiveIntegerField(default=0)
    response_bytes = models.PositiveIntegerField(default=0)
    arguments = models.JSONField(null=True, blank=True)  # only when the server records them; secrets redacted
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["mcp_server", "-at"], name="call_server_at"),
                   models.Index(fields=["consumer", "-at"], name="call_consumer_at")]


class CallRecordSettings(models.Model):
    """What a server's call records keep of the arguments."""

    mcp_server = models.OneToOneField(McpServer, on_delete=models.CASCADE, related_name="call_record_settings")
    record_arguments = models.BooleanField(default=False)
    redact_fields = models.JSONField(default=list, blank=True)  # argument names replaced by "[redacted]"
class CircuitBreaker(models.Model):
    """Circuit breaking for one backend service: after `failure_threshold` failed calls in a row (no connection, a
    timeout, a 5xx answer) the gateway stops calling it for `open_seconds`, then lets one call through to try."""

    service = models.OneToOneField(BackendService, on_delete=models.CASCADE, related_name="circuit_breaker")
    enabled = models.BooleanField(default=False)
    failure_threshold = models.PositiveIntegerField(default=5)
    open_seconds = models.PositiveIntegerField(default=30)
    updated_at = models.DateTimeField(auto_now=True)
class ImportJob(models.Model):
    """An OpenAPI import into one MCP server: its input, progress, preview (nothing written yet) and outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    step = models.CharField(max_length=40, default="queued")
    percent = models.PositiveSmallIntegerField(default=0)
    source_kind = models.CharField(max_length=8)  # upload | text | url
    source_name = models.CharField(max_length=500, blank=True)  # file names, or the URL
    source = models.BinaryField(default=b"", blank=True)  # the input files, as one zip archive
    options = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=300, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    preview = models.JSONField(null=True, blank=True)  # {"tools": […], "server": {…}, "security": […]}
    preview_yaml = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)  # what confirming applied
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="import_job_status")]


# ---------------------------------------------------------------- hosted stdio servers

class HostedStdioEntry(models.Model):
    """A stdio MCP server staff allow tenants to run: a pinned package, how to start it, what it needs, its limits.

    Installation-wide (no team): staff write it, every team may pick an installed entry for a Hosted stdio server.
    """

    class Runtime(models.TextChoices):
        NPM = "npm", "npm"
        PYPI = "pypi", "PyPI"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        INSTALLING = "installing", "Installing"
        INSTALLED = "installed", "Installed"
        FAILED = "failed", "Failed"

    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    runtime = models.CharField(max_length=8, choices=Runtime.choices, default=Runtime.NPM)
    package = models.CharField(max_length=214)
    version = models.CharField(max_length=64)
    # The program, a name among the package's installed executables, and its arguments: never a shell line.
    command = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    # [{name, description, secret, required, default}]
    variables = models.JSONField(default=list, blank=True)
    shareable = models.BooleanField(default=False, help_text="One pool of processes serves many client sessions.")
    allow_install_scripts = models.BooleanField(default=False)
    max_processes = models.PositiveIntegerField(default=10)
    # RLIMIT_AS: address space, not resident memory. Node reserves about 1 GB of it up front (server-everything under
    # load: 1.1 GB of address space for 150 MB resident), so a Node entry needs well over 1 GB here.
    memory_mb = models.PositiveIntegerField(default=2048)
    cpu_seconds = models.PositiveIntegerField(default=300)
    open_files = models.PositiveIntegerField(default=256)
    startup_timeout_seconds = models.PositiveIntegerField(default=30)
    idle_timeout_seconds = models.PositiveIntegerField(default=600)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    # What the last successful install put in the cache (runtime, package, version): a change needs a reinstall.
    installed_spec = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def spec(self) -> str:
        return f"{self.runtime}:{self.package}@{self.version}"

    @property
    def ready(self) -> bool:
        return self.state == self.State.INSTALLED and self.installed_spec == self.spec
