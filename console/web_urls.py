"""Routes of the console's pages (not under /mcp-servers/ or /instances/…/mcp-servers/, which are the gateway's)."""
from django.urls import path

from .views import api_docs, audit, auth, backend_services, instances, invitations, mcp_servers, teams, tools

urlpatterns = [
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("signup/", auth.signup, name="signup"),
    path("", auth.home, name="home"),
    path("console/team/", auth.team_switch, name="team_switch"),
    path("console/region/", auth.region_switch, name="region_switch"),
    path("console/api/", api_docs.api_reference, name="api_reference"),
    path("console/teams/<int:pk>/audit/", audit.audit_event_list, name="audit_event_list"),

    path("console/instances/", instances.instance_list, name="instance_list"),
    path("console/instances/add/", instances.instance_add, name="instance_add"),
    path("console/instances/<int:pk>/", instances.instance, name="instance"),
    path("console/instances/<int:pk>/edit/", instances.instance_edit, name="instance_edit"),
    path("console/instances/<int:pk>/delete/", instances.instance_delete, name="instance_delete"),
    path("console/instances/<int:pk>/consumers/", instances.consumer_list, name="consumer_list"),

    path("console/instances/<int:pk>/services/", backend_services.service_list, name="service_list"),
    path("console/instances/<int:pk>/services/add/", backend_services.service_add, name="service_add"),
    path("console/services/<int:pk>/edit/", backend_services.service_edit, name="service_edit"),
    path("console/services/<int:pk>/delete/", backend_services.service_delete, name="service_delete"),
    path("console/services/<int:pk>/reachability/", backend_services.service_reachability_badge,
         name="service_reachability"),

    path("console/instances/<int:pk>/mcp/", mcp_servers.mcp_server_list, name="mcp_server_list"),
    path("console/instances/<int:pk>/mcp/add/", mcp_servers.mcp_server_add, name="mcp_server_add"),
    path("console/mcp/<int:pk>/", mcp_servers.mcp_server, name="mcp_server"),
    path("console/mcp/<int:pk>/edit/", mcp_servers.mcp_server_edit, name="mcp_server_edit"),
    path("console/mcp/<int:pk>/toggle/", mcp_servers.mcp_server_toggle, name="mcp_server_toggle"),
    path("console/mcp/<int:pk>/delete/", mcp_servers.mcp_server_delete, name="mcp_server_delete"),
    path("console/mcp/<int:pk>/backend-auth/", mcp_servers.mcp_server_backend_auth, name="mcp_server_backend_auth"),
    path("console/mcp/<int:pk>/debug/", mcp_servers.mcp_server_debug, name="mcp_server_debug"),
    path("console/mcp/<int:pk>/tools/", tools.tool_list, name="tool_list"),
    path("console/mcp/<int:pk>/tools/add/", tools.tool_add, name="tool_add"),

    path("console/tools/<int:pk>/", tools.tool, name="tool"),
    path("console/tools/<int:pk>/edit/", tools.tool_edit, name="tool_edit"),
    path("console/tools/<int:pk>/toggle/", tools.tool_toggle, name="tool_toggle"),
    path("console/tools/<int:pk>/delete/", tools.tool_delete, name="tool_delete"),

    # Teams, members and invitations
    path("console/teams/", teams.team_list, name="team_list"),
    path("console/teams/add/", teams.team_add, name="team_add"),
    path("console/teams/<int:pk>/", teams.team, name="team"),
    path("console/teams/<int:pk>/edit/", teams.team_edit, name="team_edit"),
    path("console/teams/<int:pk>/delete/", teams.team_delete, name="team_delete"),
    path("console/teams/<int:pk>/transfer/", teams.team_transfer, name="team_transfer"),
    path("console/teams/<int:pk>/leave/", teams.team_leave, name="team_leave"),
    path("console/teams/<int:pk>/members/<int:user_id>/edit/", teams.team_member_edit, name="team_member_edit"),
    path("console/teams/<int:pk>/members/<int:user_id>/delete/", teams.team_member_delete,
         name="team_member_delete"),
    path("console/teams/<int:pk>/invitations/add/", invitations.invitation_add, name="invitation_add"),
    path("console/invitations/<int:pk>/delete/", invitations.invitation_delete, name="invitation_delete"),
    path("invite/<str:secret>/", invitations.invitation_accept, name="invitation_accept"),
    path("console/api/tokens/<int:pk>/delete/", api_docs.token_delete, name="token_delete"),
]
