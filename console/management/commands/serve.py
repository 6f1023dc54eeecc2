"""`manage.py serve`: Daphne for console + gateway, plus a Celery worker when a Redis broker is configured."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the console and the MCP gateway with Daphne (and a Celery worker when REDIS_URL is set)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")

    def handle(self, *args, **options):
        children: list[subprocess.Popen] = []
        bin_dir = os.path.dirname(sys.executable)
        if not settings.CELERY_TASK_ALWAYS_EAGER and not options["no_worker"]:
            children.append(subprocess.Popen(
                [os.path.join(bin_dir, "celery"), "-A", "console", "worker", "--loglevel", "WARNING",
                 "--concurrency", "2", "--beat", "--schedule", str(settings.DATA_DIR / "celerybeat-schedule")],
            ))
            self.stdout.write("Celery worker started (broker: Redis).")
        daphne = subprocess.Popen([
            os.path.join(bin_dir, "daphne"), "-b", options["host"], "-p", str(options["port"]),
            "--proxy-headers", "console.asgi:application",
        ])
        children.append(daphne)

        def stop(signum, frame):
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            code = daphne.wait()
        finally:
            stop(None, None)
            # Daphne drains on SIGTERM (in-flight calls finish, streams close) for up to GATEWAY_DRAIN_SECONDS.
            for child in children:
                try:
                    child.wait(timeout=settings.GATEWAY_DRAIN_SECONDS + 10)
                except subprocess.TimeoutExpired:
                    child.kill()
        raise SystemExit(code)
