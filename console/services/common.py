"""Helpers every service uses: permission checks, audit rows, config-change signalling, model validation."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from ..errors import DomainError
from ..models import AuditEvent, Team, TeamMembership
from ..selectors import WRITE_ROLES


def require_write(*, actor, team: Team) -> None:
    if actor is None:  # system actions (seeding, tasks) act on behalf of nobody
        return
    role = TeamMembership.objects.filter(user=actor, team=team).values_list("role", flat=True).first()
    if role is None:
        raise DomainError("Not found.", code="not_found")
    if role not in WRITE_ROLES:
        raise DomainError("Your role in this team is read-only.", code="permission_denied")


def audit(*, actor, team: Team | None, action: str, obj: models.Model, detail: dict[str, Any] | None = None) -> None:
    AuditEvent.objects.create(
        team=team,
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        detail=detail or {},
    )


def config_changed() -> None:
    """Tell every gateway process, once the transaction commits, that configuration moved on."""
    from gateway.state import bump_config_version

    transaction.on_commit(bump_config_version)


def full_clean(obj: models.Model, *, exclude: list[str] | None = None) -> None:
    """Model validation, translated into the domain error (a field map)."""
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field": exc.messages}
        raise DomainError("Please correct the errors below.", details) from exc
