"""Helpers every service uses: permission checks, audit rows, config-change signalling, model validation."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from ..errors import DomainError
from ..models import AuditEvent, Team
from ..permissions import MANAGE_CONFIG, require_role

__all__ = ["audit", "config_changed", "full_clean", "require_role", "require_write"]


def require_write(*, actor, team: Team) -> None:
    """Services, MCP servers and tools: members and above (see console/permissions.py)."""
    require_role(actor=actor, team=team, at_least=MANAGE_CONFIG)


def audit(*, actor, team: Team | None, action: str, obj: models.Model, detail: dict[str, Any] | None = None) -> None:
    # Deleted objects keep their id in the row: the caller audits before deleting.
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
