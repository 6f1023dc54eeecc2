"""Sign-up behind SIGNUP_ENABLED, and sign-in limits on the console, the admin and the API's session sign-in."""
from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from console import login_limits, services
from console.models import AuditEvent, TeamMembership

pytestmark = pytest.mark.django_db

ADDRESS = "127.0.0.1"  # Django's test client's REMOTE_ADDR


@pytest.fixture(autouse=True)
def clean_counters():
    login_limits.reset(address=ADDRESS)
    for name in ("carol", "dave", "root", "erin"):
        login_limits.reset(username=name)
    yield
    login_limits.reset(address=ADDRESS)
    for name in ("carol", "dave", "root", "erin"):
        login_limits.reset(username=name)


def text(response) -> str:
    return html.unescape(response.content.decode())


# ---------------------------------------------------------------- sign-up

def test_signup_is_not_there_unless_enabled(settings):
    settings.SIGNUP_ENABLED = False
    assert Client().get("/signup/").status_code == 404
    assert Client().post("/signup/", {"username": "x"}).status_code == 404
    assert reverse("signup") not in text(Client().get("/login/"))


def test_a_new_user_signs_up_and_lands_in_the_console_owning_a_team(settings):
    settings.SIGNUP_ENABLED = True
    client = Client()
    login_page = text(client.get("/login/"))
    assert f'href="{reverse("signup")}"' in login_page
    form = client.get(reverse("signup"))
    assert form.status_code == 200 and 'name="password2"' in text(form)
    answer = client.post(reverse("signup"), {"username": "carol", "email": "carol@example.com",
                                             "password1": "violet-harbour-42", "password2": "violet-harbour-42"})
    assert answer.status_code == 302 and answer["Location"] == reverse("instance_list")
    page = client.get(reverse("instance_list"))
    assert page.status_code == 200 and "carol's team" in text(page)
    user = get_user_model().objects.get(username="carol")
    membership = TeamMembership.objects.get(user=user)
    assert membership.role == "owner" and membership.team.name == "carol's team"
    event = AuditEvent.objects.get(action="user.signup")
    assert event.actor == user and event.team == membership.team and event.object_id == str(user.pk)


def test_signup_gets_a_unique_team_name(settings):
    settings.SIGNUP_ENABLED = True
    owner = get_user_model().objects.create_user("someone", password="pw-123456")
    services.team_create(name="dave's team", owner=owner)
    user, team = services.user_signup(username="dave", password="violet-harbour-42")
    assert team.name == "dave's team 2" and team.memberships.get().user == user


@pytest.mark.parametrize("data, field, message", [
    ({"username": "erin", "password1": "password", "password2": "password"}, "password1",
     "This password is too common."),
    ({"username": "erin", "password1": "83619274", "password2": "83619274"}, "password1",
     "This password is entirely numeric."),
    ({"username": "erin", "password1": "short", "password2": "short"}, "password1",
     "This password is too short. It must contain at least 8 characters."),
    ({"username": "erinsmith", "password1": "erinsmith1", "password2": "erinsmith1"}, "password1",
     "The password is too similar to the username."),
    ({"username": "erin", "password1": "violet-harbour-42", "password2": "violet-harbour-43"}, "password2",
     "The two passwords differ."),
    ({"username": "bad name!", "password1": "violet-harbour-42", "password2": "violet-harbour-42"}, "username",
     "Enter a valid username."),
    ({"username": "taken", "password1": "violet-harbour-42", "password2": "violet-harbour-42"}, "username",
     "This username is taken; choose another."),
    ({"username": "erin", "email": "not-an-address", "password1": "violet-harbour-42",
      "password2": "violet-harbour-42"}, "email", "Enter a valid email address."),
])
def test_signup_errors_show_at_the_field(settings, data, field, message):
    settings.SIGNUP_ENABLED = True
    get_user_model().objects.create_user("taken", password="pw-123456")
    answer = Client().post(reverse("signup"), data)
    assert answer.status_code == 400
    body = text(answer)
    assert f'id="id_{field}_error"' in body and message in body.split(f'id="id_{field}_error"', 1)[1][:300]
    assert get_user_model().objects.count() == 1


# ---------------------------------------------------------------- sign-in limits

@pytest.fixture
def carol():
    return get_user_model().objects.create_user("carol", password="violet-harbour-42")


def test_five_failures_lock_the_username_even_for_the_right_password(carol, settings):
    settings.LOGIN_MAX_FAILURES = 5
    settings.LOGIN_LOCKOUT_SECONDS = 900
    client = Client()
    for _ in range(5):
        bad = client.post("/login/", {"username": "carol", "password": "wrong"})
        assert bad.status_code == 200 and "correct username and password" in text(bad)
    refused = client.post("/login/", {"username": "carol", "password": "violet-harbour-42"})
    assert refused.status_code == 200
    assert "Too many failed sign-in attempts; try again in 15 minutes." in text(refused)
    assert "_auth_user_id" not in client.session
    # The Django admin's sign-in obeys the same counter.
    admin = Client().post("/admin/login/", {"username": "carol", "password": "violet-harbour-42"})
    assert "Too many failed sign-in attempts; try again in 15 minutes." in text(admin)


def test_a_success_resets_the_username_counter(carol, settings):
    settings.LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(2):
        client.post("/login/", {"username": "carol", "password": "wrong"})
    assert client.post("/login/", {"username": "carol", "password": "violet-harbour-42"}).status_code == 302
    client.post("/logout/")
    for _ in range(2):
        client.post("/login/", {"username": "carol", "password": "wrong"})
    assert client.post("/login/", {"username": "carol", "password": "violet-harbour-42"}).status_code == 302


def test_failures_from_one_address_lock_every_username(carol, settings):
    settings.LOGIN_MAX_FAILURES = 100
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 4
    settings.LOGIN_LOCKOUT_SECONDS = 120
    client = Client()
    for i in range(4):
        client.post("/login/", {"username": f"guess{i}", "password": "wrong"})
    refused = client.post("/login/", {"username": "carol", "password": "violet-harbour-42"})
    assert "Too many failed sign-in attempts; try again in 2 minutes." in text(refused)
    # Another address is not affected.
    other = Client(REMOTE_ADDR="127.0.0.9")
    try:
        assert other.post("/login/", {"username": "carol", "password": "violet-harbour-42"}).status_code == 302
    finally:
        login_limits.reset(address="127.0.0.9")
        for i in range(4):
            login_limits.reset(username=f"guess{i}")


def test_the_lock_ends_with_its_window(carol, settings):
    settings.LOGIN_MAX_FAILURES = 2
    settings.LOGIN_LOCKOUT_SECONDS = 60
    for _ in range(2):
        login_limits.record_failure(username="carol", address="")
    assert 0 < login_limits.locked_for(username="carol", address="") <= 60
    login_limits.reset(username="carol")
    assert login_limits.locked_for(username="carol", address="") == 0


def test_direct_authenticate_is_refused_while_locked(carol, settings):
    """Any other sign-in path goes through authenticate(): the backend itself refuses."""
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    settings.LOGIN_MAX_FAILURES = 2
    request = RequestFactory().post("/x")
    for _ in range(2):
        assert authenticate(request, username="carol", password="wrong") is None
    assert authenticate(request, username="carol", password="violet-harbour-42") is None
    login_limits.reset(username="carol", address=ADDRESS)
    assert authenticate(request, username="carol", password="violet-harbour-42") == carol


@pytest.mark.redis
def test_with_redis_the_counters_hold_across_processes(carol, settings):
    """Every gateway process refuses a username another process locked (the counters live in Redis)."""
    import subprocess
    import sys

    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from tests.conftest import require_redis

    require_redis()
    assert isinstance(caches["default"], RedisCache)
    settings.LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        Client().post("/login/", {"username": "carol", "password": "wrong"})
    script = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'console.settings'); django.setup();"
              "from django.conf import settings; settings.LOGIN_MAX_FAILURES = 2;"
              "from console import login_limits; print(login_limits.locked_for(username='carol', address=''))")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert int(other.stdout.strip().splitlines()[-1]) > 0
