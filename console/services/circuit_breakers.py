"""Circuit breaking per backend service: the console setting the gateway applies to calls to that service."""
from __future__ import annotations

from django.db import transaction

from ..errors import DomainError
from ..models import BackendService, CircuitBreaker
from .common import audit, config_changed, require_write

MAX_FAILURE_THRESHOLD = 1000
MAX_OPEN_SECONDS = 3600


@transaction.atomic
def service_set_circuit_breaker(*, actor, service: BackendService, enabled: bool, failure_threshold: int = 5,
                                open_seconds: int = 30) -> CircuitBreaker:
    require_write(actor=actor, team=service.instance.team)
    errors: dict[str, list[str]] = {}
    if not 1 <= failure_threshold <= MAX_FAILURE_THRESHOLD:
        errors["failure_threshold"] = [f"Choose between 1 and {MAX_FAILURE_THRESHOLD} failed calls in a row."]
    if not 1 <= open_seconds <= MAX_OPEN_SECONDS:
        errors["open_seconds"] = [f"Choose between 1 and {MAX_OPEN_SECONDS} seconds."]
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    breaker, _ = CircuitBreaker.objects.select_for_update().get_or_create(service=service)
    breaker.enabled = enabled
    breaker.failure_threshold = failure_threshold
    breaker.open_seconds = open_seconds
    breaker.save()
    audit(actor=actor, team=service.instance.team, action="service.circuit_breaker", obj=service,
          detail={"enabled": enabled, "failure_threshold": failure_threshold, "open_seconds": open_seconds})
    config_changed()
    return breaker
