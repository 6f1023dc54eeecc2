"""The gateway's read model of configuration: immutable snapshots built from console tables, cached per config version."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CircuitConfig:
    """Circuit breaking for calls to one backend service (gateway/circuit.py)."""

    service_id: int
    service_name: str
    failure_threshold: int
    open_seconds: int


@dataclass(frozen=True, slots=True)
class SchemeConfig:
    """A backend security scheme (`server.securitySchemes[]`), credential already decrypted."""

    id: str
    type: str  # "http" | "apiKey"
    scheme: str = ""  # "basic" | "bearer" (type http)
    location: str = ""  # "header" | "query" (type apiKey)
    name: str = ""  # header or query parameter name (type apiKey)
    default_credential: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamSecurity:
    """Which scheme a tool's backend call uses, and the credential chosen for it (may be empty)."""

    scheme: SchemeConfig
    credential: str = ""
    passthrough: bool = False


@dataclass(frozen=True, slots=True)
class ToolConfig:
    name: str
    description: str
    input_schema: dict[str, Any]
    args: tuple[dict[str, Any], ...] = ()
    # requestTemplate without security: url, method, headers [{key, value}], body,
    # argsToJsonBody, argsToUrlParam, argsToFormBody
    request: dict[str, Any] = field(default_factory=dict)
    # responseTemplate: body | prependBody / appendBody
    response: dict[str, Any] = field(default_factory=dict)
    error_template: str = ""
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    title: str = ""
    upstream_security: UpstreamSecurity | None = None
    downstream_security: dict[str, Any] = field(default_factory=dict)

    def listing(self) -> dict[str, Any]:
        """The tool as tools/list shows it."""
        item: dict[str, Any] = {"name": self.name, "description": self.description, "inputSchema": self.input_schema}
        if self.title:
            item["title"] = self.title
        if self.output_schema:
            item["outputSchema"] = self.output_schema
        if self.annotations:
            item["annotations"] = self.annotations
        return item


@dataclass(frozen=True, slots=True)
class ApiKeyConfig:
    """A consumer API key as the gateway knows it: found by the SHA-256 digest of the presented key."""

    id: int
    consumer_id: int
    expires_at: float | None = None  # Unix time; None never expires


@dataclass(frozen=True, slots=True)
class JwtCredentialConfig:
    """How one consumer's JWTs are verified (console model JwtCredential), secrets already decrypted."""

    id: int
    consumer_id: int
    consumer_name: str
    algorithm: str  # HS256 … EdDSA: the only algorithm accepted for this credential
    secret: str = ""  # HS*
    public_key: str = ""  # PEM
    jwks_url: str = ""
    issuer: str = ""
    audience: str = ""
    consumer_claim: str = "sub"  # its value must equal consumer_name


@dataclass(frozen=True, slots=True)
class ConsumerAuthConfig:
    """A server's Consumer Authentication with everything needed to decide a request without a query."""

    enabled: bool
    method: str  # "api_key" | "jwt" | "oauth" (OAuth sign-in; API keys in the Authorization header still work)
    source: str  # "bearer" | "header" | "query"
    name: str = ""  # header or query parameter name (source header/query)
    consumers: dict[int, str] = field(default_factory=dict)  # enabled consumers of the server's team: id -> name
    api_keys: dict[str, ApiKeyConfig] = field(default_factory=dict)  # digest -> key (live keys of those consumers)
    jwt_credentials: tuple[JwtCredentialConfig, ...] = ()
    # consumer id -> the tool names it may use (None: all tools); absent: not authorized for this server
    authorizations: dict[int, frozenset[str] | None] = field(default_factory=dict)
    # consumer id -> gateway.consumer_auth.ConsumerIdentity, for the enabled and authorized ones: built once per
    # config version so a request only looks one up
    identities: dict[int, Any] = field(default_factory=dict)
    oauth_scope: str = ""  # OAuth sign-in: the scope a token needs for this server (gateway.oauth_tokens.server_scope)


@dataclass(frozen=True, slots=True)
class HostedLimits:
    """What one child process of a hosted stdio entry may use (already capped by the installation's settings)."""

    max_processes: int
    memory_mb: int
    cpu_seconds: int
    open_files: int
    startup_timeout: float
    idle_timeout: float


@dataclass(frozen=True, slots=True)
class HostedConfig:
    """A Hosted stdio server's program: the entry's installed executable, its arguments and the environment built
    from the declared variables (secrets decrypted), or why it cannot start (`unavailable`)."""

    entry_id: int
    entry_slug: str
    spec: str  # runtime:package@version
    program: str  # absolute path inside the install cache
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str
    shareable: bool
    limits: HostedLimits
    unavailable: str = ""  # not installed, a required variable missing …: the JSON-RPC error a client gets


@dataclass(frozen=True, slots=True)
class ServerConfig:
    id: int
    instance: str
    name: str
    description: str
    type: str  # "http_to_mcp" | "direct_proxy" | "hosted_stdio"
    enabled: bool
    config: dict[str, Any]
    timeout: float
    tools: dict[str, ToolConfig]
    tool_order: tuple[str, ...]
    schemes: dict[str, SchemeConfig] = field(default_factory=dict)
    backend_url: str = ""
    backend_transport: str = ""
    backend_path: str = ""
    version: int = 0
    consumer_auth: ConsumerAuthConfig | None = None  # None or enabled=False: the endpoint is open
    # Direct Proxy: the backend tools the server publishes (None: all of them), and the backend credential it sends.
    allow_tools: frozenset[str] | None = None
    backend_security: UpstreamSecurity | None = None
    governance: Any = None  # gateway.governance.ServerGovernance: rate limits, what call records keep
    circuit: CircuitConfig | None = None  # circuit breaking of the backend service; None: off
    hosted: HostedConfig | None = None  # Hosted stdio: the program the gateway runs for it

    @property
    def key(self) -> str:
        return f"{self.instance}/{self.name}"
