"""REST endpoint for a backend service's circuit breaking (parity with the Services page). Mounted by api/urls.py."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.circuit import circuit_states

from .. import selectors, services
from ..services.circuit_breakers import MAX_FAILURE_THRESHOLD, MAX_OPEN_SECONDS
from .views import _validated


class CircuitStateOutput(serializers.Serializer):
    state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    failures = serializers.IntegerField(help_text="Failed calls in a row when last reported.")
    opened_at = serializers.FloatField(allow_null=True, help_text="Epoch seconds the circuit last opened.")
    retry_at = serializers.FloatField(allow_null=True, help_text="Epoch seconds a call is next let through.")


class CircuitBreakerOutput(serializers.Serializer):
    service = serializers.IntegerField(source="service_id")
    enabled = serializers.BooleanField()
    failure_threshold = serializers.IntegerField()
    open_seconds = serializers.IntegerField()
    state = CircuitStateOutput(help_text="As last reported by a gateway process; closed when none reported.")


class CircuitBreakerInput(serializers.Serializer):
    enabled = serializers.BooleanField()
    failure_threshold = serializers.IntegerField(min_value=1, max_value=MAX_FAILURE_THRESHOLD, required=False,
                                                 default=5, help_text="Failed calls in a row that open the circuit.")
    open_seconds = serializers.IntegerField(min_value=1, max_value=MAX_OPEN_SECONDS, required=False, default=30,
                                            help_text="Seconds calls fail at once before one call tries again.")


def circuit_breaker_out(service) -> dict:
    breaker = selectors.circuit_breaker_get(service=service)
    state = circuit_states([service.pk]).get(service.pk) if breaker.enabled else None
    return CircuitBreakerOutput({
        "service_id": service.pk, "enabled": breaker.enabled, "failure_threshold": breaker.failure_threshold,
        "open_seconds": breaker.open_seconds,
        "state": state or {"state": "closed", "failures": 0, "opened_at": None, "retry_at": None}}).data


class CircuitBreakerApi(APIView):
    @extend_schema(responses=CircuitBreakerOutput, description="The service's circuit breaking setting and state.")
    def get(self, request, pk: int):
        return Response(circuit_breaker_out(selectors.service_get(user=request.user, pk=pk)))

    @extend_schema(request=CircuitBreakerInput, responses=CircuitBreakerOutput,
                   examples=[OpenApiExample("Open after 5 failures for 30 s", value={
                       "enabled": True, "failure_threshold": 5, "open_seconds": 30})],
                   description="Turn circuit breaking of calls to this backend service on or off (members and "
                               "above). Failed calls are no connection, a timeout or a 5xx answer.")
    def put(self, request, pk: int):
        service = selectors.service_get(user=request.user, pk=pk)
        services.service_set_circuit_breaker(actor=request.user, service=service,
                                             **_validated(CircuitBreakerInput, request.data))
        return Response(circuit_breaker_out(service))


urlpatterns = [
    path("services/<int:pk>/circuit-breaker", CircuitBreakerApi.as_view(), name="api_circuit_breaker"),
]
