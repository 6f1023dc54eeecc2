"""Celery tasks of governance: the periodic purge of old call records."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="gateway.governance.tasks.call_records_purge", time_limit=600)
def call_records_purge() -> int:
    from .records import purge_records

    return purge_records()
