"""Backend services: the REST APIs and MCP servers that MCP servers front."""
from __future__ import annotations

from django.db import transaction

from ..errors import DomainError
from ..models import BackendService, Instance
from .common import audit, config_changed, full_clean, require_write


def _check_unique(service: BackendService) -> None:
    qs = BackendService.objects.filter(instance=service.instance, name=service.name)
    if service.pk:
        qs = qs.exclude(pk=service.pk)
    if qs.exists():
        raise DomainError("A service with this name exists.", {"name": ["A service with this name already exists in this instance."]})


@transaction.atomic
def service_create(
    *, actor, instance: Instance, name: str, base_url: str, protocol: str = BackendService.Protocol.HTTP,
    description: str = "",
) -> BackendService:
    require_write(actor=actor, team=instance.team)
    service = BackendService(
        instance=instance, name=(name or "").strip(), base_url=(base_url or "").strip().rstrip("/"),
        protocol=protocol, description=description,
    )
    full_clean(service, exclude=["instance"])
    _check_unique(service)
    service.save()
    audit(actor=actor, team=instance.team, action="service.create", obj=service, detail={"name": service.name})
    config_changed()
    return service


@transaction.atomic
def service_update(
    *, actor, service: BackendService, name: str | None = None, base_url: str | None = None,
    protocol: str | None = None, description: str | None = None,
) -> BackendService:
    require_write(actor=actor, team=service.instance.team)
    if name is not None:
        service.name = name.strip()
    if base_url is not None:
        service.base_url = base_url.strip().rstrip("/")
    if protocol is not None:
        if protocol != service.protocol and service.mcp_servers.exists():
            raise DomainError("The service is in use.", {"protocol": ["MCP servers use this service; its protocol cannot change."]})
        service.protocol = protocol
    if description is not None:
        service.description = description
    full_clean(service, exclude=["instance"])
    _check_unique(service)
    service.save()
    audit(actor=actor, team=service.instance.team, action="service.update", obj=service)
    config_changed()
    return service


@transaction.atomic
def service_delete(*, actor, service: BackendService) -> None:
    require_write(actor=actor, team=service.instance.team)
    users = list(service.mcp_servers.values_list("name", flat=True))
    if users:
        raise DomainError(
            "The service is in use.", {"non_field": [f"MCP servers use this service: {', '.join(users)}. Delete them first."]}
        )
    audit(actor=actor, team=service.instance.team, action="service.delete", obj=service, detail={"name": service.name})
    service.delete()
    config_changed()
