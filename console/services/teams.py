"""Teams, memberships, invitations by link and REST API tokens; each write leaves its audit row."""
from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from ..crypto import token_hint
from ..errors import DomainError
from ..models import ApiToken, Instance, Invitation, McpServer, Team, TeamMembership
from ..permissions import MANAGE_TEAM, OWN_TEAM, READ, Role, role_rank, require_role
from .common import audit, config_changed

INVITATION_DAYS_DEFAULT = 7
INVITATION_DAYS_MAX = 30


def _clean_name(name: str, *, exclude_pk: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError("A team needs a name.", {"name": ["This field is required."]})
    if len(name) > 100:
        raise DomainError("The name is too long.", {"name": ["Use at most 100 characters."]})
    qs = Team.objects.filter(name__iexact=name)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise DomainError("A team with this name exists.", {"name": ["A team with this name already exists."]})
    return name


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise DomainError("Unknown role.", {"role": [f"Choose one of {', '.join(Role.values)}."]})
    return role


def _owner_count(team: Team) -> int:
    return TeamMembership.objects.filter(team=team, role=Role.OWNER).count()


# ---------------------------------------------------------------- teams

@transaction.atomic
def team_create(*, name: str, owner=None) -> Team:
    """A new team; `owner` (the creating user) becomes its owner. Seeding may pass no owner."""
    name = _clean_name(name)
    base = slugify(name)[:50] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    team = Team.objects.create(name=name, slug=slug)
    if owner is not None:
        membership = TeamMembership.objects.create(team=team, user=owner, role=Role.OWNER)
        audit(actor=owner, team=team, action="membership.add", obj=membership,
              detail={"user": owner.get_username(), "role": Role.OWNER})
    audit(actor=owner, team=team, action="team.create", obj=team, detail={"name": team.name})
    return team


@transaction.atomic
def team_rename(*, actor, team: Team, name: str) -> Team:
    require_role(actor=actor, team=team, at_least=OWN_TEAM)
    old = team.name
    team.name = _clean_name(name, exclude_pk=team.pk)
    team.save(update_fields=["name"])
    audit(actor=actor, team=team, action="team.rename", obj=team, detail={"from": old, "to": team.name})
    return team


@transaction.atomic
def team_delete(*, actor, team: Team) -> None:
    """Delete the team with everything it owns; its MCP endpoints stop answering."""
    require_role(actor=actor, team=team, at_least=OWN_TEAM)
    # The audit row outlives the team (its team becomes empty), so say which team it was.
    audit(actor=actor, team=None, action="team.delete", obj=team, detail={"name": team.name, "team_id": team.pk})
    # Servers reference services with PROTECT; remove servers first so the cascade can proceed.
    McpServer.objects.filter(instance__team=team).delete()
    had_instances = Instance.objects.filter(team=team).exists()
    team.delete()
    if had_instances:
        config_changed()


@transaction.atomic
def team_transfer_ownership(*, actor, team: Team, user) -> TeamMembership:
    """Make `user` (a member) the owner; the acting owner stays on as an admin."""
    require_role(actor=actor, team=team, at_least=OWN_TEAM)
    target = TeamMembership.objects.select_for_update().filter(team=team, user=user).first()
    if target is None:
        raise DomainError("Not a member.", {"user": ["Transfer ownership to a member of this team."]})
    if actor is not None and target.user_id == actor.pk:
        raise DomainError("You own the team already.", {"user": ["Choose another member."]})
    target.role = Role.OWNER
    target.save(update_fields=["role"])
    if actor is not None:
        TeamMembership.objects.filter(team=team, user=actor).update(role=Role.ADMIN)
    audit(actor=actor, team=team, action="team.transfer_ownership", obj=team,
          detail={"to": user.get_username(), "from": actor.get_username() if actor else None})
    return target


# ---------------------------------------------------------------- memberships

def _may_manage(*, actor, team: Team, target_role: str, new_role: str | None = None) -> None:
    """An admin manages members up to admin; only an owner touches owners or makes new ones."""
    actor_role = require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
    if actor_role is None:
        return
    ceiling = role_rank(actor_role)
    if role_rank(target_role) > ceiling or (new_role is not None and role_rank(new_role) > ceiling):
        raise DomainError(f"Only an owner can change an owner or make one; your role is {actor_role}.",
                          code="permission_denied")


@transaction.atomic
def team_member_add(*, team: Team, user, role: str = Role.MEMBER, actor=None) -> TeamMembership:
    """Add a user (or change their role); used by seeding and management commands."""
    _check_role(role)
    if actor is not None:
        _may_manage(actor=actor, team=team, target_role=role)
    membership, created = TeamMembership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    audit(actor=actor, team=team, action="membership.add" if created else "membership.role_change", obj=membership,
          detail={"user": user.get_username(), "role": role})
    return membership


@transaction.atomic
def team_member_set_role(*, actor, membership: TeamMembership, role: str) -> TeamMembership:
    team = membership.team
    _check_role(role)
    membership = TeamMembership.objects.select_for_update().get(pk=membership.pk)
    _may_manage(actor=actor, team=team, target_role=membership.role, new_role=role)
    old = membership.role
    if old == role:
        return membership
    if old == Role.OWNER and _owner_count(team) == 1:
        raise DomainError("The last owner cannot be demoted.", {"role": [
            "This is the team's only owner: make another member owner first (or transfer ownership)."]})
    membership.role = role
    membership.save(update_fields=["role"])
    audit(actor=actor, team=team, action="membership.role_change", obj=membership,
          detail={"user": membership.user.get_username(), "from": old, "to": role})
    return membership


@transaction.atomic
def team_member_remove(*, actor, membership: TeamMembership) -> None:
    """Remove a member; removing oneself is leaving (any role may leave)."""
    team = membership.team
    membership = TeamMembership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    leaving = actor is not None and membership.user_id == actor.pk
    if leaving:
        require_role(actor=actor, team=team, at_least=READ)
    else:
        _may_manage(actor=actor, team=team, target_role=membership.role)
    if membership.role == Role.OWNER and _owner_count(team) == 1:
        raise DomainError("The last owner cannot leave." if leaving else "The last owner cannot be removed.", {
            "non_field": ["This is the team's only owner: transfer ownership first, or delete the team."]})
    audit(actor=actor, team=team, action="membership.leave" if leaving else "membership.remove", obj=membership,
          detail={"user": membership.user.get_username(), "role": membership.role})
    membership.delete()


@transaction.atomic
def team_leave(*, actor, team: Team) -> None:
    membership = TeamMembership.objects.filter(team=team, user=actor).first()
    if membership is None:
        raise DomainError("No such team.", code="not_found")
    team_member_remove(actor=actor, membership=membership)


# ---------------------------------------------------------------- invitations

@transaction.atomic
def invitation_create(
    *, actor, team: Team, role: str = Role.MEMBER, expires_in_days: int = INVITATION_DAYS_DEFAULT,
) -> tuple[Invitation, str]:
    """A new invitation link; the secret is returned once and only its digest is kept."""
    _check_role(role)
    actor_role = require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
    if actor_role is not None and role_rank(role) > role_rank(actor_role):
        raise DomainError(f"You cannot invite someone as {role}: only an owner invites owners.",
                          {"role": [f"Choose {actor_role} or a lower role."]}, code="permission_denied")
    try:
        days = int(expires_in_days)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= INVITATION_DAYS_MAX:
        raise DomainError("Invalid expiry.", {"expires_in_days": [
            f"Choose between 1 and {INVITATION_DAYS_MAX} days."]})
    secret = Invitation.new_secret()
    invitation = Invitation.objects.create(
        team=team, role=role, digest=Invitation.digest_of(secret), hint=token_hint(secret, Invitation.PREFIX),
        created_by=actor if getattr(actor, "pk", None) else None, expires_at=timezone.now() + timedelta(days=days))
    audit(actor=actor, team=team, action="invitation.create", obj=invitation,
          detail={"role": role, "expires_at": invitation.expires_at.isoformat()})
    return invitation, secret


@transaction.atomic
def invitation_revoke(*, actor, invitation: Invitation) -> Invitation:
    require_role(actor=actor, team=invitation.team, at_least=MANAGE_TEAM)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    status = invitation.status
    if status != Invitation.Status.PENDING:
        raise DomainError(f"This invitation is {status} already; only a pending one can be revoked.",
                          {"non_field": [f"The invitation is {status}."]})
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit(actor=actor, team=invitation.team, action="invitation.revoke", obj=invitation,
          detail={"role": invitation.role})
    return invitation


INVITATION_GONE = {
    Invitation.Status.ACCEPTED: "This invitation has been used already. Ask the team's admins for a new one.",
    Invitation.Status.REVOKED: "This invitation was revoked. Ask the team's admins for a new one.",
    Invitation.Status.EXPIRED: "This invitation has expired. Ask the team's admins for a new one.",
}


def _usable(invitation: Invitation) -> None:
    status = invitation.status
    if status != Invitation.Status.PENDING:
        raise DomainError(INVITATION_GONE[status], code="gone")


@transaction.atomic
def invitation_accept(*, user, invitation: Invitation) -> TeamMembership:
    """Join the invitation's team with its role; a current member is told so and nothing changes."""
    invitation = Invitation.objects.select_for_update().select_related("team").get(pk=invitation.pk)
    _usable(invitation)
    if TeamMembership.objects.filter(team=invitation.team, user=user).exists():
        raise DomainError(f"You are a member of team {invitation.team.name} already; the invitation stays unused.",
                          code="already_member")
    membership = TeamMembership.objects.create(team=invitation.team, user=user, role=invitation.role)
    invitation.accepted_by = user
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_by", "accepted_at"])
    audit(actor=user, team=invitation.team, action="invitation.accept", obj=invitation,
          detail={"user": user.get_username(), "role": invitation.role})
    audit(actor=user, team=invitation.team, action="membership.add", obj=membership,
          detail={"user": user.get_username(), "role": invitation.role, "invitation": invitation.pk})
    return membership


@transaction.atomic
def invitation_accept_new_user(*, invitation: Invitation, username: str, password: str):
    """Create an account through an invitation (whether or not sign-up is open) and join the team."""
    _usable(invitation)
    user_model = get_user_model()
    username = (username or "").strip()
    errors: dict[str, list[str]] = {}
    candidate = user_model(username=username)
    try:
        user_model._meta.get_field("username").run_validators(username)
        if not username:
            raise ValidationError("Choose a username.")
    except ValidationError as exc:
        errors["username"] = list(exc.messages)
    if "username" not in errors and user_model.objects.filter(username__iexact=username).exists():
        errors["username"] = ["This username is taken. If it is yours, sign in and accept the invitation."]
    try:
        password_validation.validate_password(password or "", user=candidate)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if not password:
        errors["password"] = ["Choose a password."]
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=username, password=password)
    except IntegrityError:  # the same name chosen at the same moment by someone else
        raise DomainError("Please correct the errors below.", {"username": ["This username is taken."]}) from None
    invitation_accept(user=user, invitation=invitation)
    return user


# ---------------------------------------------------------------- API tokens

@transaction.atomic
def api_token_create(*, user, name: str = "cli") -> tuple[ApiToken, str]:
    """A new token; the secret is returned once and only its digest is kept."""
    secret = ApiToken.new_secret()
    token = ApiToken.objects.create(user=user, name=name, digest=ApiToken.digest_of(secret),
                                   hint=token_hint(secret, ApiToken.PREFIX))
    # A token acts in all the user's teams, so its audit row belongs to none.
    audit(actor=user, team=None, action="api_token.create", obj=token, detail={"name": name, "hint": token.hint})
    return token, secret


@transaction.atomic
def api_token_revoke(*, actor, token: ApiToken) -> None:
    """Revoke a token at once; only its owner may (system actions too)."""
    if actor is not None and token.user_id != actor.pk:
        raise DomainError("No such API token.", code="not_found")
    audit(actor=actor, team=None, action="api_token.revoke", obj=token, detail={"name": token.name, "hint": token.hint})
    token.delete()
