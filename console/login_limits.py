"""Sign-in rate limits against password guessing, counted in Django's cache (Redis in production) for every path."""
from __future__ import annotations

import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

KEY_PREFIX = "login-fail"


def _keys(kind: str, value: str) -> tuple[str, str]:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:{kind}:{digest}", f"{KEY_PREFIX}:{kind}:{digest}:until"


def client_address(request) -> str:
    # REMOTE_ADDR only: a forwarded-for header is whatever the guesser wants it to be.
    return (getattr(request, "META", None) or {}).get("REMOTE_ADDR", "") if request is not None else ""


def _counters(username: str | None, address: str) -> list[tuple[str, str, int]]:
    counters = []
    if username:
        counters.append((*_keys("user", username.strip().lower()), settings.LOGIN_MAX_FAILURES))
    if address:
        counters.append((*_keys("addr", address), settings.LOGIN_MAX_FAILURES_PER_ADDRESS))
    return counters


def locked_for(*, username: str | None, address: str) -> int:
    """Seconds until sign-in is possible again for this username or address; 0 when it is possible now."""
    wait = 0
    for count_key, until_key, limit in _counters(username, address):
        values = cache.get_many([count_key, until_key])
        if values.get(count_key, 0) >= limit:
            wait = max(wait, int(values.get(until_key, 0) - time.time()), 1)
    return wait


def record_failure(*, username: str | None, address: str) -> None:
    window = settings.LOGIN_LOCKOUT_SECONDS
    for count_key, until_key, _limit in _counters(username, address):
        # The window starts with the first failure; add() keeps the first one's deadline.
        cache.add(until_key, time.time() + window, timeout=window)
        cache.add(count_key, 0, timeout=window)
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add and incr
            cache.set(count_key, 1, timeout=window)


def reset(*, username: str | None = None, address: str = "") -> None:
    for count_key, until_key, _limit in _counters(username, address):
        cache.delete_many([count_key, until_key])


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-in attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}."


class RateLimitedModelBackend(ModelBackend):
    """Refuses even the right password while the username or the client address is locked out."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field())
        if locked_for(username=username, address=client_address(request)):
            raise PermissionDenied(lockout_message(locked_for(username=username, address=client_address(request))))
        return super().authenticate(request, username=username, password=password, **kwargs)

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


class RateLimitedLoginMixin:
    """Says why sign-in is refused (the backend alone could only say "wrong password")."""

    def clean(self):
        username = self.data.get("username")
        wait = locked_for(username=username, address=client_address(self.request))
        if wait:
            raise forms.ValidationError(lockout_message(wait), code="locked_out")
        return super().clean()


class LoginForm(RateLimitedLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(RateLimitedLoginMixin, AdminAuthenticationForm):
    pass


@receiver(user_login_failed)
def _count_failure(sender, credentials, request=None, **kwargs):
    address = client_address(request)
    username = (credentials or {}).get("username")
    if locked_for(username=username, address=address):
        return  # refused while locked: not another guess, and the window must not move
    record_failure(username=username, address=address)


@receiver(user_logged_in)
def _forget_failures(sender, request, user, **kwargs):
    reset(username=user.get_username())
