"""Celery tasks of the console: OpenAPI imports and the sweep that fails imports whose worker is gone."""
from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

IMPORT_TIME_LIMIT = int(getattr(settings, "OPENAPI_IMPORT_TIME_LIMIT", 600))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=2,
             soft_time_limit=IMPORT_TIME_LIMIT - 30, time_limit=IMPORT_TIME_LIMIT)
def openapi_import(self, job_id: int) -> str:
    """Run one import. A worker that dies mid-job hands it back to the broker (acks_late), so another worker
    runs it again; after the retries, or past the time limit, the job is failed with the reason."""
    from .models import ImportJob
    from .services.imports import import_job_fail, import_job_run

    job = ImportJob.objects.filter(pk=job_id).only("status", "attempts").first()
    if job is None:
        return "gone"
    if job.status == ImportJob.Status.RUNNING and job.attempts > self.max_retries:
        import_job_fail(job_id=job_id, reason=f"The import's worker stopped {job.attempts} times while running it; "
                                              "it was given up.")
        return "failed"
    if job.status == ImportJob.Status.RUNNING:
        # Redelivered after a worker died: start over from the stored input.
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.QUEUED, step="retrying")
    try:
        job = import_job_run(job_id=job_id)
    except SoftTimeLimitExceeded:
        import_job_fail(job_id=job_id, reason=f"The import took longer than {IMPORT_TIME_LIMIT - 30} seconds.")
        return "failed"
    except Exception as exc:  # a bug must still leave the job failed with a reason, not running
        import_job_fail(job_id=job_id, reason=f"The import failed unexpectedly ({type(exc).__name__}).")
        raise
    return job.status if job else "gone"


@shared_task
def openapi_import_sweep() -> int:
    from .services.imports import import_job_sweep

    return import_job_sweep()
