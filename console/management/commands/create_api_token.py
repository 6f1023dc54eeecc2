"""`manage.py create_api_token <username>`: issue a REST API token and print only the token."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console import services


class Command(BaseCommand):
    help = "Create a REST API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label for the token (default: cli).")

    def handle(self, *args, **options):
        User = get_user_model()
        username = options["username"]
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named “{username}”.")
        if not user.is_active:
            raise CommandError(f"User “{username}” is inactive; activate it before creating a token.")
        name = (options["name"] or "").strip() or "cli"
        _, secret = services.api_token_create(user=user, name=name[:100])
        self.stdout.write(secret)
