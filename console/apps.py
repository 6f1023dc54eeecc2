"""App config for the console."""
from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from django.contrib import admin

        from . import login_limits  # noqa: F401  (connects the sign-in failure counters)
        from .oauth import tokens  # noqa: F401  (drops deleted access tokens from the gateway's cache)

        # The admin's sign-in is rate limited like the console's.
        admin.site.login_form = login_limits.AdminLoginForm
