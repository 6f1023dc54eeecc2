"""Gateway instances."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.dispatch import Signal

from ..errors import DomainError
from ..models import Instance, Team
from ..permissions import MANAGE_TEAM
from .common import audit, config_changed, full_clean, require_role


def _check_name(name: str, *, exclude_pk: int | None = None) -> None:
    qs = Instance.objects.filter(name=name)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise _name_taken()


def _name_taken() -> DomainError:
    return DomainError("An instance with this name exists.", {"name": ["An instance with this name already exists."]})


def _require_staff_for_default(*, actor, wanted: bool | None, current: bool) -> None:
    """The default instance answers every Host that names no domain, for all teams: only staff move it."""
    if wanted is None or bool(wanted) == current or actor is None or actor.is_superuser:
        return
    raise DomainError("Only staff choose the default instance.",
                      {"is_default": ["Only staff (superusers) choose or change the default instance."]},
                      code="permission_denied")


@transaction.atomic
def instance_create(
    *, actor, team: Team, name: str, region: str = "local", description: str = "", is_default: bool = False
) -> Instance:
    require_role(actor=actor, team=team, at_least=MANAGE_TEAM)
    instance = Instance(team=team, name=(name or "").strip(), region=(region or "local").strip(), description=description)
    full_clean(instance, exclude=["team", "is_default"])
    _check_name(instance.name)
    _require_staff_for_default(actor=actor, wanted=is_default, current=False)
    # A fresh installation's first instance catches requests whose Host matches no domain, so it just works;
    # later ones never do by themselves, or deleting the default would hand it to whoever creates the next.
    first = not is_default and not Instance.objects.exists()
    if is_default:
        Instance.objects.filter(is_default=True).update(is_default=False)
    instance.is_default = bool(is_default) or first
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        # Between the checks and the insert a concurrent request took the name, or (two "first" instances of a
        # new installation at once) the default: the first to commit wins, the other is an ordinary instance.
        if Instance.objects.filter(name=instance.name).exists():
            raise _name_taken() from exc
        if not first:
            raise
        instance.is_default = False
        instance.save()
    audit(actor=actor, team=team, action="instance.create", obj=instance, detail={"name": instance.name})
    config_changed()
    return instance


@transaction.atomic
def instance_update(
    *, actor, instance: Instance, name: str | None = None, region: str | None = None,
    description: str | None = None, is_default: bool | None = None,
) -> Instance:
    require_role(actor=actor, team=instance.team, at_least=MANAGE_TEAM)
    _require_staff_for_default(actor=actor, wanted=is_default, current=instance.is_default)
    if name is not None:
        instance.name = name.strip()
    if region is not None:
        instance.region = region.strip()
    if description is not None:
        instance.description = description
    full_clean(instance, exclude=["team", "is_default"])
    _check_name(instance.name, exclude_pk=instance.pk)
    if is_default:
        Instance.objects.filter(is_default=True).exclude(pk=instance.pk).update(is_default=False)
        instance.is_default = True
    elif is_default is False:
        instance.is_default = False
    instance.save()
    audit(actor=actor, team=instance.team, action="instance.update", obj=instance)
    config_changed()
    return instance


# Sent (actor, instance) inside the deleting transaction, before anything goes: what other apps provisioned in the
# instance beyond its servers (the market's subscription consumers) is removed with it.
instance_deleting = Signal()


@transaction.atomic
def instance_delete(*, actor, instance: Instance) -> None:
    require_role(actor=actor, team=instance.team, at_least=MANAGE_TEAM)
    instance_deleting.send(sender=Instance, actor=actor, instance=instance)
    audit(actor=actor, team=instance.team, action="instance.delete", obj=instance, detail={"name": instance.name})
    # Servers reference services with PROTECT; remove servers first so the cascade can proceed.
    instance.mcp_servers.all().delete()
    instance.delete()
    config_changed()
