"""Django settings, read from environment variables only (every one is listed in .env.example)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if not value:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    # A generated key is kept on disk so a restart still decrypts stored backend credentials.
    if env("SECRET_KEY"):
        return env("SECRET_KEY")
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
# MCP domains are configured at run time, so Host is checked by the gateway's own routing.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "channels",
    "oauth2_provider",
    "console",
    "gateway",
    "marketplace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A permission error no page caught becomes the 403 page (console/permissions.py decides who may).
    "console.views.common.DomainErrorMiddleware",
]

ROOT_URLCONF = "console.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "console.asgi.application"

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
# Under ASGI connections are not reused across requests (see channels notes): CONN_MAX_AGE stays 0.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The gateway reads configuration from worker threads while the console writes.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Background jobs (OpenAPI imports) write while requests do: a transaction that starts by reading and then
    # writes could not wait for the lock (SQLite answers "database is locked" at once); IMMEDIATE takes it first.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # A file (not :memory:) so live-server processes could share it; one per run so parallel runs don't collide.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve vendored assets straight from static/ as well, so a server works before (or without) collectstatic.
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # JSON bodies within API_MAX_JSON_DEPTH / API_MAX_JSON_VALUES; Django bounds the form parsers (below).
    "DEFAULT_PARSER_CLASSES": [
        "console.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# Request bodies of the console and its API (the gateway has its own MCP_MAX_* limits). A tool YAML document
# may be 2,000,000 bytes; sent as a JSON string it grows by its escapes, hence 4 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_REQUEST_BYTES", 4 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("API_MAX_FORM_FIELDS", 1000)
DATA_UPLOAD_MAX_NUMBER_FILES = 20
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 64)
API_MAX_JSON_VALUES = env_int("API_MAX_JSON_VALUES", 100_000)
SPECTACULAR_SETTINGS = {
    "TITLE": "MCP Gateway Console API",
    "DESCRIPTION": "Configure instances, backend services, MCP servers and their tools.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Shared state: in-process unless REDIS_URL names a Redis server.
REDIS_URL = env("REDIS_URL")
# Connections one gateway process opens to Redis at most; further commands wait for a free one.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 128)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
# Without a broker, jobs run in-process so the embedded profile needs no worker.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not bool(REDIS_URL))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_TIME_LIMIT = 600

# Backend credentials are encrypted with this key (Fernet, urlsafe base64 of 32 bytes);
# derived from SECRET_KEY when not given.
CREDENTIALS_KEY = env("CREDENTIALS_KEY")

# Gateway
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS")
MCP_SESSION_TTL = env_int("MCP_SESSION_TTL", 3600)
MCP_TOOLS_PAGE_SIZE = env_int("MCP_TOOLS_PAGE_SIZE", 100)
MCP_MAX_REQUEST_BYTES = env_int("MCP_MAX_REQUEST_BYTES", 4 * 1024 * 1024)
# Request body limits beyond size: containers nested in each other, values in all, messages in a batch.
MCP_MAX_JSON_DEPTH = env_int("MCP_MAX_JSON_DEPTH", 64)
MCP_MAX_JSON_VALUES = env_int("MCP_MAX_JSON_VALUES", 100_000)
MCP_MAX_BATCH_LENGTH = env_int("MCP_MAX_BATCH_LENGTH", 100)
MCP_SSE_KEEPALIVE_SECONDS = env_int("MCP_SSE_KEEPALIVE_SECONDS", 15)
GATEWAY_BACKEND_TIMEOUT = env_int("GATEWAY_BACKEND_TIMEOUT", 30)
GATEWAY_MAX_BACKEND_RESPONSE_BYTES = env_int("GATEWAY_MAX_BACKEND_RESPONSE_BYTES", 10 * 1024 * 1024)
GATEWAY_CONFIG_POLL_SECONDS = float(env("GATEWAY_CONFIG_POLL_SECONDS", "0.25"))
# Consumer API keys' "last used": each gateway process writes the keys it saw in one UPDATE this often.
GATEWAY_KEY_USAGE_FLUSH_SECONDS = float(env("GATEWAY_KEY_USAGE_FLUSH_SECONDS", "5"))
# Egress policy (gateway/egress.py): comma-separated addresses, CIDR networks and host names (*.example.com for
# subdomains). Public addresses are allowed; loopback, private, link-local, CGNAT and reserved ranges are denied
# unless ALLOW names them; a DENY entry always wins. `make run` allows 127.0.0.1 for the built-in demo API.
GATEWAY_EGRESS_ALLOW = env_list("GATEWAY_EGRESS_ALLOW")
GATEWAY_EGRESS_DENY = env_list("GATEWAY_EGRESS_DENY")
# Base URL printed in endpoints and client configs; defaults to the request's own scheme and host.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL")
# The built-in demo REST API's key (the seeded petstore server sends it as X-API-Key).
DEMO_API_KEY = env("DEMO_API_KEY", "demo-key")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}

# --- Shared names, sign-up and sign-in -------------------------------------------------------------
# Host names of the gateway itself (besides PUBLIC_BASE_URL's host and loopback): no MCP server may claim them.
GATEWAY_PUBLIC_HOSTS = [h.lower() for h in env_list("GATEWAY_PUBLIC_HOSTS")]
# Anyone may create an account (and a personal team) at /signup/.
SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", False)
# Failed sign-ins allowed per username and per client address within LOGIN_LOCKOUT_SECONDS.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
AUTHENTICATION_BACKENDS = ["console.login_limits.RateLimitedModelBackend"]
# Sign-in counters live in the cache, so with Redis they hold across every process.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "mcpgw"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Governance: call records, rate limits, metrics -------------------------------------------------
# Every tools/call leaves a call record, buffered in memory and written in batches by a background thread.
GATEWAY_CALL_RECORDS = env_bool("GATEWAY_CALL_RECORDS", True)
GATEWAY_CALL_RECORD_FLUSH_SECONDS = float(env("GATEWAY_CALL_RECORD_FLUSH_SECONDS", "1"))
GATEWAY_CALL_RECORD_BATCH = env_int("GATEWAY_CALL_RECORD_BATCH", 500)
# Past this many unwritten records (the database is away) new ones are dropped and counted.
GATEWAY_CALL_RECORD_BUFFER = env_int("GATEWAY_CALL_RECORD_BUFFER", 50_000)
# Records older than this are purged (Celery beat hourly; in-process in the embedded profile). 0 keeps them.
GATEWAY_CALL_RECORD_RETENTION_DAYS = env_int("GATEWAY_CALL_RECORD_RETENTION_DAYS", 30)
# /metrics: a bearer token, and/or client addresses (CIDR) allowed without it; with neither, loopback only.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOW = env_list("METRICS_ALLOW")
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE["purge-call-records"] = {"task": "gateway.governance.tasks.call_records_purge",
                                              "schedule": 3600.0}
CELERY_IMPORTS = [*globals().get("CELERY_IMPORTS", []), "gateway.governance.tasks"]
# --- Faults and health -----------------------------------------------------------------------------
# Every Redis wait of a gateway process (connect, each command, a free pooled connection) ends after this long;
# then the request answers 503 with Retry-After rather than hanging.
REDIS_TIMEOUT_SECONDS = float(env("REDIS_TIMEOUT_SECONDS", "2"))
# Retry-After of a 503 answered while Redis or the database is unreachable.
GATEWAY_RETRY_AFTER_SECONDS = env_int("GATEWAY_RETRY_AFTER_SECONDS", 5)
# On SIGTERM a process stops taking gateway calls, lets in-flight ones finish for at most this long, closes its
# event streams and exits (manage.py serve waits this long plus a margin before it kills Daphne).
GATEWAY_DRAIN_SECONDS = float(env("GATEWAY_DRAIN_SECONDS", "20"))
# A database or Redis that cannot be reached answers 503 (page or JSON) with Retry-After, never a 500.
MIDDLEWARE.append("console.faults.DependencyUnavailableMiddleware")
# A PostgreSQL server that does not answer fails the connection after this long instead of hanging the request.
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))
# HTTP-to-MCP backend calls: each MCP server's timeout bounds the whole call; within it a connection must be made
# within CONNECT and the backend must send something (then keep sending) within FIRST_BYTE (0: the server's timeout).
GATEWAY_BACKEND_CONNECT_TIMEOUT = float(env("GATEWAY_BACKEND_CONNECT_TIMEOUT", "5"))
GATEWAY_BACKEND_FIRST_BYTE_TIMEOUT = float(env("GATEWAY_BACKEND_FIRST_BYTE_TIMEOUT", "0"))
# Background jobs survive a lost worker and an unreachable broker: a job is acknowledged only once it finished
# (a worker killed mid-job leaves it queued, and Redis hands it out again after the visibility timeout), a worker
# takes one job at a time, and the broker connection is retried with backoff instead of the worker exiting.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60  # a job hears of its end in time to record why
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300,
                                   "socket_timeout": REDIS_TIMEOUT_SECONDS * 2,
                                   "socket_connect_timeout": REDIS_TIMEOUT_SECONDS * 2}
# OpenAPI import (Add Tool → Swagger File): bounds, remote $refs (off: only the uploaded files are read), time limit.
OPENAPI_IMPORT_MAX_BYTES = env_int("OPENAPI_IMPORT_MAX_BYTES", 20 * 1024 * 1024)
OPENAPI_IMPORT_REMOTE_REFS = env_bool("OPENAPI_IMPORT_REMOTE_REFS", False)
OPENAPI_IMPORT_TIME_LIMIT = env_int("OPENAPI_IMPORT_TIME_LIMIT", 600)
OPENAPI_IMPORT_SELECT_THRESHOLD = env_int("OPENAPI_IMPORT_SELECT_THRESHOLD", 50)
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE["openapi-import-sweep"] = {"task": "console.tasks.openapi_import_sweep", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["oauth-tokens-clear"] = {"task": "console.tasks.oauth_tokens_clear", "schedule": 3600.0}
# Market: browsing is for signed-in users unless the operator opens it to anonymous visitors.
MARKET_ANONYMOUS_BROWSING = env_bool("MARKET_ANONYMOUS_BROWSING", False)
# Hosted stdio servers: where catalogue entries are installed, the Node used to run npm entries, and the caps no
# entry's limits may exceed (HOSTED_MAX_PROCESSES also bounds the children of all entries in one gateway process).
HOSTED_CACHE_DIR = Path(env("HOSTED_CACHE_DIR", str(DATA_DIR / "hosted")))
if not HOSTED_CACHE_DIR.is_absolute():  # programs are started by absolute path, whatever the working directory
    HOSTED_CACHE_DIR = BASE_DIR / HOSTED_CACHE_DIR
HOSTED_NODE_DIR = env("HOSTED_NODE_DIR", "")  # a directory holding `node` (and `npm`); empty: the one on PATH
HOSTED_INSTALL_TIMEOUT = env_int("HOSTED_INSTALL_TIMEOUT", 600)
HOSTED_MAX_PROCESSES = env_int("HOSTED_MAX_PROCESSES", 50)
HOSTED_MAX_MEMORY_MB = env_int("HOSTED_MAX_MEMORY_MB", 8192)
HOSTED_MAX_CPU_SECONDS = env_int("HOSTED_MAX_CPU_SECONDS", 3600)
HOSTED_MAX_OPEN_FILES = env_int("HOSTED_MAX_OPEN_FILES", 4096)
HOSTED_MAX_STARTUP_SECONDS = env_int("HOSTED_MAX_STARTUP_SECONDS", 120)
HOSTED_MAX_IDLE_SECONDS = env_int("HOSTED_MAX_IDLE_SECONDS", 86400)
# A child that exits unasked this many times within the window is not started again until the window has passed.
HOSTED_CRASH_LOOP_COUNT = env_int("HOSTED_CRASH_LOOP_COUNT", 5)
HOSTED_CRASH_LOOP_SECONDS = env_int("HOSTED_CRASH_LOOP_SECONDS", 60)
# A line a child writes on stdout (one JSON-RPC message) is at most this long; its stderr log keeps this many lines.
HOSTED_MAX_LINE_BYTES = env_int("HOSTED_MAX_LINE_BYTES", GATEWAY_MAX_BACKEND_RESPONSE_BYTES)
HOSTED_STDERR_LINES = env_int("HOSTED_STDERR_LINES", 200)


# --- OAuth sign-in for MCP clients (console/oauth/) --------------------------------------------------
# django-oauth-toolkit is the authorization server (authorization code + PKCE, token endpoint, refresh rotation,
# revocation, RFC 8414 metadata, DCR, client ID metadata documents, RFC 8707 resource on grants and tokens);
# console/oauth binds it to MCP servers, consumers and the egress policy.
OAUTH_ACCESS_TOKEN_SECONDS = env_int("OAUTH_ACCESS_TOKEN_SECONDS", 3600)
# Dynamic client registrations accepted per client address per hour (open registration creates a row each).
OAUTH_DCR_PER_ADDRESS_PER_HOUR = env_int("OAUTH_DCR_PER_ADDRESS_PER_HOUR", 100)
# Extra CA bundle trusted when fetching client ID metadata documents (a private CA); empty: the system's.
OAUTH_CIMD_CA_BUNDLE = env("OAUTH_CIMD_CA_BUNDLE")
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "console.oauth.validator.McpOAuth2Validator",
    "SCOPES_BACKEND_CLASS": "console.oauth.scopes.McpServerScopes",
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "PKCE_REQUIRED": True,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # RFC 9700 gates: S256 only, no implicit or password grant, tokens stored as digests, iss on the redirect.
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "REQUEST_APPROVAL_PROMPT": "force",
    # Native clients listen on a loopback port of their choosing (RFC 8252 §7.3).
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "DCR_ENABLED": env_bool("OAUTH_DCR_ENABLED", True),
    # MCP clients register before anyone signs in (RFC 7591 open registration); registration grants nothing.
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "CIMD_ENABLED": env_bool("OAUTH_CIMD_ENABLED", True),
    "CIMD_METADATA_FETCHER": "console.oauth.cimd.EgressMetadataFetcher",
    "CIMD_FETCH_TIMEOUT_SECONDS": 5,
    "CIMD_MAX_DOCUMENT_SIZE": 16 * 1024,
}
# The library's models are swappable settings that its own migrations name; the defaults are used.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_DEVICE_GRANT_MODEL = "oauth2_provider.DeviceGrant"

# An OS user (name or uid) children run as instead of the gateway's own: then they cannot signal the gateway, read
# its files or its environment. Empty: the gateway's user. The cache must be readable (HOME writable) by it.
HOSTED_USER = env("HOSTED_USER", "")
