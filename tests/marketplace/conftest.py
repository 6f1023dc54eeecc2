"""Market fixtures: the seeded catalogue and two teams, each with an owner and an instance."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from console import services
from marketplace.seed import seed_market

DEMO_API = "http://127.0.0.1:8000/demo-api"


class Tenant:
    def __init__(self, name: str):
        User = get_user_model()
        self.user = User.objects.create_user(username=f"{name}-owner", password="pw-" + name + "-123456")
        self.team = services.team_create(name=name.capitalize(), owner=self.user)
        self.instance = services.instance_create(actor=None, team=self.team, name=f"{name}-inst", region="local")


@pytest.fixture
def market(db):
    seed_market(demo_api_base=DEMO_API)


@pytest.fixture
def acme(market):
    return Tenant("acme")


@pytest.fixture
def globex(market):
    return Tenant("globex")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(username="reviewer", password="pw-reviewer-123456", is_staff=True)
