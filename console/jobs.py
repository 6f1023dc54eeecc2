"""The base of the console's background jobs: retried with backoff through outages, never left running unexplained."""
from __future__ import annotations

import logging
import threading

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

log = logging.getLogger(__name__)

# What an outage of the database or the broker looks like to a job: worth trying again later.
OUTAGES = (OperationalError, InterfaceError, redis.RedisError)


def job_enqueue(task: Task, job_id: int, *, thread_name: str) -> None:
    """On a Celery worker when a broker is configured; otherwise the same task in a background thread."""
    from django.conf import settings
    from django.db import connections

    if settings.CELERY_TASK_ALWAYS_EAGER:
        def run() -> None:
            try:
                task.apply(args=[job_id], throw=False)
            finally:
                connections.close_all()  # this thread's own connections: nothing else will close them

        threading.Thread(target=run, name=thread_name, daemon=True).start()
    else:
        task.delay(job_id)


class JobTask(Task):
    """Base class for tasks whose progress is a row the user sees (`@app.task(bind=True, base=JobTask)`).

    A job that meets an outage is retried with exponential backoff (2 s, 4 s, 8 s … at most 5 min, jittered) up to
    `max_retries` times; one that fails for good, runs out of time or out of retries ends in `job_failed` with a
    reason a person can read, where the subclass marks its row failed. With the settings' late acknowledgement a
    worker killed mid-job leaves it queued for another worker.
    """

    abstract = True
    autoretry_for = OUTAGES
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 8
    acks_late = True
    reject_on_worker_lost = True

    # "module:function" of the service that marks the job's row failed (called with the row's id and the reason),
    # and the name of the task's id argument.
    fail_with = ""
    id_argument = "job_id"

    def job_failed(self, *, task_id: str, args: tuple, kwargs: dict, reason: str) -> None:
        """Record that the job ended without success: the row's status and error, through `fail_with`."""
        if not self.fail_with:
            return
        import importlib

        module, function = self.fail_with.split(":")
        row_id = args[0] if args else kwargs.get(self.id_argument)
        if row_id is not None:
            getattr(importlib.import_module(module), function)(**{self.id_argument: row_id, "reason": reason})

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        if isinstance(exc, SoftTimeLimitExceeded):
            reason = "The job ran out of time and was stopped."
        elif isinstance(exc, OUTAGES):
            reason = (f"The job could not reach the database or Redis after {self.request.retries} retries: "
                      f"{type(exc).__name__}. Start it again once the service is back.")
        else:
            reason = f"The job failed: {exc}"
        try:
            self.job_failed(task_id=task_id, args=args, kwargs=kwargs, reason=reason)
        except OUTAGES:
            # The row cannot be written now: the job stays as it was, and the log says why.
            log.error("Job %s failed (%s) and its row could not be updated", task_id, reason)
