"""Imports in these tests run as in the embedded default: the task in a background thread of this process.

The Celery worker with a Redis broker has its own test (test_celery_worker.py), which starts a real worker.
"""
import pytest


@pytest.fixture(autouse=True)
def imports_run_in_process(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
