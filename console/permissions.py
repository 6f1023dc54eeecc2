"""Who may do what in a team: the four roles, their ranks, and the one check every write goes through."""
from __future__ import annotations

from .errors import DomainError, NotFound
from .models import Team, TeamMembership

Role = TeamMembership.Role

# A role may do everything the roles below it may do.
ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}

# What each role adds, in the words the error messages and the README use.
READ = Role.VIEWER           # read everything of the team
MANAGE_CONFIG = Role.MEMBER  # backend services, MCP servers, tools
MANAGE_TEAM = Role.ADMIN     # members, invitations, instances (and consumers)
OWN_TEAM = Role.OWNER        # rename, delete, transfer ownership

ROLE_HELP = {
    Role.VIEWER: "reads everything of the team",
    Role.MEMBER: "also manages backend services, MCP servers and tools",
    Role.ADMIN: "also manages members, invitations and instances",
    Role.OWNER: "also renames or deletes the team and transfers ownership",
}


def role_rank(role: str | None) -> int:
    return ROLE_RANK.get(role or "", 0)


def role_at_least(role: str | None, at_least: str) -> bool:
    return role_rank(role) >= role_rank(at_least)


def role_of(*, user, team: Team) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return TeamMembership.objects.filter(user=user, team=team).values_list("role", flat=True).first()


def require_role(*, actor, team: Team, at_least: str) -> str | None:
    """Raise unless `actor` holds `at_least` in `team`; a non-member learns nothing (not found).

    System actions (seeding, tasks) pass actor=None and are always allowed. Returns the actor's role.
    """
    if actor is None:
        return None
    role = role_of(user=actor, team=team)
    if role is None:
        raise NotFound("No such team.")
    if not role_at_least(role, at_least):
        raise DomainError(
            f"This needs the {at_least} role (or higher) in team {team.name}; your role is {role}.",
            code="permission_denied",
        )
    return role
