"""Teams, memberships and REST API tokens."""
from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from ..crypto import token_hint
from ..errors import DomainError
from ..models import ApiToken, Team, TeamMembership


@transaction.atomic
def team_create(*, name: str, owner=None) -> Team:
    name = (name or "").strip()
    if not name:
        raise DomainError("A team needs a name.", {"name": ["This field is required."]})
    if Team.objects.filter(name=name).exists():
        raise DomainError("A team with this name exists.", {"name": ["A team with this name already exists."]})
    base = slugify(name)[:50] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    team = Team.objects.create(name=name, slug=slug)
    if owner is not None:
        TeamMembership.objects.create(team=team, user=owner, role=TeamMembership.Role.OWNER)
    return team


@transaction.atomic
def team_member_add(*, team: Team, user, role: str = TeamMembership.Role.MEMBER) -> TeamMembership:
    if role not in TeamMembership.Role.values:
        raise DomainError("Unknown role.", {"role": [f"Choose one of {', '.join(TeamMembership.Role.values)}."]})
    membership, _ = TeamMembership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def api_token_create(*, user, name: str = "cli") -> tuple[ApiToken, str]:
    """A new token; the secret is returned once and only its digest is kept."""
    secret = ApiToken.new_secret()
    token = ApiToken.objects.create(user=user, name=name, digest=ApiToken.digest_of(secret), hint=token_hint(secret, ApiToken.PREFIX))
    return token, secret
