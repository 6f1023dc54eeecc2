"""Celery tasks of the console: OpenAPI imports, their sweep, and installs of hosted stdio entries."""
from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .jobs import OUTAGES, JobTask

IMPORT_TIME_LIMIT = int(getattr(settings, "OPENAPI_IMPORT_TIME_LIMIT", 600))
# Worker deaths while one import runs before it is given up (outage retries are JobTask.max_retries).
IMPORT_WORKER_LOSSES = 2


class ImportTask(JobTask):
    """An import whose database writes fail is retried with backoff; one that gives up is failed with the reason."""

    abstract = True
    fail_with = "console.services.imports:import_job_fail"


@shared_task(bind=True, base=ImportTask, soft_time_limit=IMPORT_TIME_LIMIT - 30, time_limit=IMPORT_TIME_LIMIT)
def openapi_import(self, job_id: int) -> str:
    """Run one import. A worker that dies mid-job hands it back to the broker (acks_late), so another worker
    runs it again; a database or Redis outage retries it with backoff; after the retries, or past the time limit,
    the job is failed with the reason (and the sweep fails one whose row could not be written then)."""
    from .models import ImportJob
    from .services.imports import import_job_fail, import_job_run

    job = ImportJob.objects.filter(pk=job_id).only("status", "attempts").first()
    if job is None:
        return "gone"
    if job.status == ImportJob.Status.RUNNING and job.attempts > IMPORT_WORKER_LOSSES:
        import_job_fail(job_id=job_id, reason=f"The import's worker stopped {job.attempts} times while running it; "
                                              "it was given up.")
        return "failed"
    if job.status == ImportJob.Status.RUNNING:
        # Redelivered after a worker died, or retried after an outage: start over from the stored input.
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.QUEUED, step="retrying")
    try:
        job = import_job_run(job_id=job_id)
    except SoftTimeLimitExceeded:
        import_job_fail(job_id=job_id, reason=f"The import took longer than {IMPORT_TIME_LIMIT - 30} seconds.")
        return "failed"
    except OUTAGES:
        raise  # retried with backoff (JobTask); the last failure fails the job with the reason
    except Exception as exc:  # a bug must still leave the job failed with a reason, not running
        import_job_fail(job_id=job_id, reason=f"The import failed unexpectedly ({type(exc).__name__}).")
        raise
    return job.status if job else "gone"


@shared_task
def openapi_import_sweep() -> int:
    from .services.imports import import_job_sweep

    return import_job_sweep()


class HostedInstallTask(JobTask):
    """An install that gives up (out of time, out of retries) leaves its entry failed with the reason."""

    abstract = True
    fail_with = "console.services.hosted:hosted_entry_install_fail"
    id_argument = "entry_id"


HOSTED_INSTALL_TIME_LIMIT = int(getattr(settings, "HOSTED_INSTALL_TIMEOUT", 600)) + 60


@shared_task(bind=True, base=HostedInstallTask, soft_time_limit=HOSTED_INSTALL_TIME_LIMIT - 30,
             time_limit=HOSTED_INSTALL_TIME_LIMIT)
def hosted_entry_install(self, entry_id: int) -> str:
    """Install one catalogue entry's pinned package into the cache; running it again installs afresh."""
    from .services.hosted import hosted_entry_install_run

    entry = hosted_entry_install_run(entry_id=entry_id)
    return entry.state if entry else "gone"


@shared_task(soft_time_limit=600, time_limit=660)
def oauth_tokens_clear() -> int:
    """Delete expired OAuth access tokens, revoked and expired refresh tokens and stale codes (the library's own
    cleanup); each deleted access token also leaves the gateway's cache."""
    from oauth2_provider.models import clear_expired

    return clear_expired() or 0
