"""`manage.py seed_demo`: create the demo (admin, team, instance, petstore MCP server, pets) if missing; idempotent."""
from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from console.demo_seed import ADMIN_USERNAME, seed_demo
from console.errors import DomainError


class Command(BaseCommand):
    help = ("Create the demo: user admin (password from ADMIN_PASSWORD, else generated and shown once), team Demo, "
            "instance default and the petstore MCP server over the built-in demo API. Safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address the server binds (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port the server listens on (default 8000).")

    def handle(self, *args, **options):
        password = os.environ.get("ADMIN_PASSWORD", "").strip() or None
        try:
            report = seed_demo(admin_password=password, host=options["host"], port=options["port"])
        except DomainError as exc:
            details = "; ".join(f"{key}: {' '.join(map(str, value))}" for key, value in exc.details.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc

        out = self.stdout
        if report.created or report.updated:
            for item in report.created:
                out.write(f"Created {item}")
            for item in report.updated:
                out.write(f"Updated {item}")
        else:
            out.write("Demo already seeded; nothing changed.")
        out.write("")
        out.write(f"Console:   {report.console_url}")
        if report.admin_password_generated:
            out.write(f"Login:     {ADMIN_USERNAME} / {report.admin_password}  (generated — shown once)")
        elif password:
            out.write(f"Login:     {ADMIN_USERNAME} (password from ADMIN_PASSWORD)")
        else:
            out.write(f"Login:     {ADMIN_USERNAME} (password unchanged)")
        out.write("Demo MCP server petstore:")
        out.write(f"  Streamable HTTP  {report.endpoints['streamable_http']}")
        out.write(f"  SSE              {report.endpoints['sse']}")
        out.write(f"Demo API:  {report.demo_api_url}  (X-API-Key required; see {report.demo_api_url}openapi.json)")
