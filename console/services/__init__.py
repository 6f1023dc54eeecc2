"""Every write to configuration goes through these functions (views, API, tasks and commands call them)."""
from .backend_auth import BackendAuth, mcp_server_set_backend_auth
from .circuit_breakers import service_set_circuit_breaker
from .consumers import (
    consumer_api_key_issue, consumer_api_key_revoke, consumer_authorization_revoke, consumer_authorize,
    consumer_create, consumer_debug_credential_issue, consumer_delete, consumer_update, jwt_credential_create,
    jwt_credential_delete, mcp_server_set_consumer_auth,
)
from .governance import call_record_settings_set, rate_limit_create, rate_limit_delete, rate_limit_update
from .instances import instance_create, instance_delete, instance_update
from .mcp_servers import mcp_server_create, mcp_server_delete, mcp_server_update
from .oauth import (
    consumer_oauth_token_revoke, oauth_client_delete, oauth_client_register, oauth_consent_grant,
)
from .services import service_create, service_delete, service_update
from .teams import (
    api_token_create, api_token_revoke, invitation_accept, invitation_accept_new_user, invitation_create, invitation_revoke,
    team_create, team_delete, team_leave, team_member_add, team_member_remove, team_member_set_role, team_rename,
    team_transfer_ownership,
)
from .tool_edit import tool_update_yaml
from .tools import ToolsApplyResult, tool_delete, tool_set_enabled, tools_apply_yaml
from .users import user_signup

__all__ = [
    "consumer_oauth_token_revoke",
    "oauth_client_delete",
    "oauth_client_register",
    "oauth_consent_grant",
    "BackendAuth",
    "ToolsApplyResult",
    "api_token_create",
    "api_token_revoke",
    "consumer_api_key_issue",
    "consumer_api_key_revoke",
    "consumer_authorization_revoke",
    "consumer_authorize",
    "consumer_create",
    "consumer_debug_credential_issue",
    "consumer_delete",
    "consumer_update",
    "jwt_credential_create",
    "jwt_credential_delete",
    "mcp_server_set_consumer_auth",
    "instance_create",
    "invitation_accept",
    "invitation_accept_new_user",
    "invitation_create",
    "invitation_revoke",
    "instance_delete",
    "instance_update",
    "mcp_server_create",
    "mcp_server_delete",
    "mcp_server_set_backend_auth",
    "mcp_server_update",
    "service_create",
    "service_delete",
    "service_set_circuit_breaker",
    "service_update",
    "team_create",
    "team_delete",
    "team_leave",
    "team_member_add",
    "team_member_remove",
    "team_member_set_role",
    "team_rename",
    "team_transfer_ownership",
    "tool_delete",
    "tool_set_enabled",
    "tool_update_yaml",
    "tools_apply_yaml",
    "user_signup",
    "call_record_settings_set",
    "rate_limit_create",
    "rate_limit_delete",
    "rate_limit_update",
]

from .subscriptions import (  # noqa: E402 (the market's provisioning, kept in one block)
    MarketEndpoint, market_endpoint_provision, market_endpoint_remove, market_endpoint_retool,
    market_endpoint_rotate_key,
)

__all__ += ["MarketEndpoint", "market_endpoint_provision", "market_endpoint_remove", "market_endpoint_retool",
            "market_endpoint_rotate_key"]
