"""Circuit breaking in the console and the REST API: the setting, its validation, its audit row and its state."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from console import services
from console.models import AuditEvent
from gateway import circuit
from gateway.readmodel import CircuitConfig

from .test_api import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_breakers():
    circuit.reset()
    yield
    circuit.reset()


def _service(name: str):
    owner = get_user_model().objects.create_user(name, password="pw-123456")
    team = services.team_create(name=f"Team {name}", owner=owner)
    instance = services.instance_create(actor=owner, team=team, name=f"inst-{name}")
    service = services.service_create(actor=owner, instance=instance, name="orders-api",
                                      base_url="http://127.0.0.1:9/api")
    return owner, service


def test_api_reads_and_sets_circuit_breaking_with_field_errors_and_an_audit_row():
    owner, service = _service("alice")
    api = client_for(owner)
    url = f"/api/v1/services/{service.pk}/circuit-breaker"
    assert api.get(url).json() == {"service": service.pk, "enabled": False, "failure_threshold": 5,
                                   "open_seconds": 30, "state": {"state": "closed", "failures": 0,
                                                                 "opened_at": None, "retry_at": None}}
    bad = api.put(url, {"enabled": True, "failure_threshold": 0, "open_seconds": 99999}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"failure_threshold", "open_seconds"}
    saved = api.put(url, {"enabled": True, "failure_threshold": 2, "open_seconds": 10}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["enabled"] is True and saved.json()["failure_threshold"] == 2
    event = AuditEvent.objects.get(action="service.circuit_breaker")
    assert event.object_id == str(service.pk) and event.detail == {"enabled": True, "failure_threshold": 2,
                                                                  "open_seconds": 10}


def test_another_teams_service_is_a_404():
    _, service = _service("alice")
    mallory, _ = _service("mallory")
    api = client_for(mallory)
    url = f"/api/v1/services/{service.pk}/circuit-breaker"
    assert api.get(url).status_code == 404
    assert api.put(url, {"enabled": True}, format="json").status_code == 404


def test_services_page_shows_off_closed_and_open_and_the_form_saves():
    owner, service = _service("alice")
    browser = Client()
    browser.force_login(owner)
    page_url = f"/console/instances/{service.instance_id}/services/"
    assert f'id="circuit-{service.pk}"><span class="badge badge-off">Off' in browser.get(page_url).content.decode()

    form_url = f"/console/services/{service.pk}/circuit-breaker/"
    assert browser.get(form_url).status_code == 200
    refused = browser.post(form_url, {"enabled": "on", "failure_threshold": "0", "open_seconds": "30"})
    assert refused.status_code == 400
    saved = browser.post(form_url, {"enabled": "on", "failure_threshold": "2", "open_seconds": "30"})
    assert saved.status_code == 302
    assert f'id="circuit-{service.pk}"><span class="badge badge-ok">Closed' in browser.get(page_url).content.decode()

    # What a gateway process of this installation reports after two failed calls in a row.
    config = CircuitConfig(service_id=service.pk, service_name=service.name, failure_threshold=2, open_seconds=30)
    circuit.record(config, ok=False)
    circuit.record(config, ok=False)
    html = browser.get(page_url).content.decode()
    assert f'id="circuit-{service.pk}"><span class="badge badge-danger" title="2 failed calls in a row">Open' in html
    assert browser.get(f"/api/v1/services/{service.pk}/circuit-breaker").json()["state"]["state"] == "open"
