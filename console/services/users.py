"""Accounts: sign-up creates the user and their personal team."""
from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from ..errors import DomainError
from ..models import Team
from .common import audit
from .teams import team_create


def _personal_team_name(username: str) -> str:
    base = f"{username}'s team"[:90]
    name, n = base, 1
    while Team.objects.filter(name=name).exists():
        n += 1
        name = f"{base} {n}"
    return name


@transaction.atomic
def user_signup(*, username: str, password: str, email: str = ""):
    """A new account and its personal team, with the new user as owner; returns (user, team)."""
    User = get_user_model()
    username = (username or "").strip()
    email = (email or "").strip()
    errors: dict[str, list[str]] = {}
    user = User(username=username, email=email)
    try:
        user.clean_fields(exclude=["password", "last_login", "date_joined"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if username and User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["This username is taken; choose another."]
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            errors["email"] = list(exc.messages)
    try:
        password_validation.validate_password(password or "", user=user)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    user.set_password(password)
    user.save()
    team = team_create(name=_personal_team_name(username), owner=user)
    audit(actor=user, team=team, action="user.signup", obj=user, detail={"name": username})
    return user, team
