"""Backend authentication of an MCP server (its REST backend, or a Direct Proxy's backend MCP service): the default
upstream security scheme and its credential."""
from __future__ import annotations

import re

from django.db import transaction

from ..crypto import is_masked, mask
from ..errors import DomainError
from ..models import McpServer, SecurityScheme
from ..selectors import BackendAuth, backend_auth_scheme
from .common import audit, config_changed, require_write

BACKEND_AUTH_SCHEME_ID = "BackendAuth"
KINDS = ("none", "basic", "bearer", "api_key")
LOCATIONS = ("header", "query")
# An HTTP header token (RFC 9110) also serves as a sensible query parameter name.
_PARAM_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}$")


@transaction.atomic
def mcp_server_set_backend_auth(
    *, actor, mcp_server: McpServer, kind: str, location: str = "header", param_name: str = "", credential: str = "",
) -> BackendAuth:
    """Set how the gateway authenticates to the backend; a blank credential keeps the stored one."""
    server = mcp_server
    require_write(actor=actor, team=server.instance.team)
    kind = (kind or "none").strip().lower()
    location = (location or "header").strip().lower()
    param_name = (param_name or "").strip()
    credential = (credential or "").strip()
    errors: dict[str, list[str]] = {}
    if kind not in KINDS:
        errors["kind"] = ["Choose None, Basic, Bearer or API key."]
    current, stored = backend_auth_scheme(server)

    if kind == "none" or "kind" in errors:
        if errors:
            raise DomainError("Please correct the errors below.", errors)
        server.default_upstream_security = {}
        server.default_upstream_credential = ""
        server.save(update_fields=["default_upstream_security", "default_upstream_credential", "updated_at"])
        audit(actor=actor, team=server.instance.team, action="mcp_server.backend_auth", obj=server,
              detail={"kind": "none"})
        config_changed()
        return BackendAuth(kind="none")

    if kind == "api_key":
        if location not in LOCATIONS:
            errors["location"] = ["Choose header or query parameter."]
        if not param_name:
            errors["param_name"] = ["Give the header or query parameter name, e.g. X-API-Key or api_key."]
        elif not _PARAM_NAME_RE.match(param_name):
            errors["param_name"] = ["Use letters, digits and - _ . only (no spaces), e.g. X-API-Key."]
    if is_masked(credential):
        credential = ""  # the masked value sent back unchanged
    effective = credential or stored
    if not effective:
        errors["credential"] = ["Give the credential the backend expects."]
    elif kind == "basic" and ":" not in effective and not effective.lower().startswith("basic "):
        errors["credential"] = ["Give the Basic credential as user:password."]
    if errors:
        raise DomainError("Please correct the errors below.", errors)

    # Edit the scheme the server already uses (e.g. one a YAML file declared), else our own.
    scheme = current or SecurityScheme.objects.filter(mcp_server=server, scheme_id=BACKEND_AUTH_SCHEME_ID).first()
    if scheme is None:
        scheme = SecurityScheme(mcp_server=server, scheme_id=BACKEND_AUTH_SCHEME_ID)
    if kind == "api_key":
        scheme.type, scheme.scheme = SecurityScheme.Type.API_KEY, ""
        scheme.location, scheme.param_name = location, param_name
    else:
        scheme.type, scheme.scheme, scheme.location, scheme.param_name = SecurityScheme.Type.HTTP, kind, "", ""
    scheme.default_credential = effective
    scheme.save()
    # The server-level credential would override the scheme's; one place holds it from now on.
    server.default_upstream_security = {"id": scheme.scheme_id}
    server.default_upstream_credential = ""
    server.save(update_fields=["default_upstream_security", "default_upstream_credential", "updated_at"])
    audit(actor=actor, team=server.instance.team, action="mcp_server.backend_auth", obj=server,
          detail={"kind": kind, "scheme": scheme.scheme_id, "credential_changed": bool(credential)})
    config_changed()
    return BackendAuth(kind=kind, scheme_id=scheme.scheme_id, location=scheme.location,
                       param_name=scheme.param_name, credential_masked=mask(effective))
