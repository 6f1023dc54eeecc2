"""Background jobs through an outage: retried with backoff, and a job that gives up says why."""
from __future__ import annotations

import pytest
from django.db import OperationalError

from console.celery import app
from console.jobs import JobTask

attempts: list[int] = []
failures: list[str] = []


class RecordingJob(JobTask):
    def job_failed(self, *, task_id, args, kwargs, reason):
        failures.append(reason)


@app.task(bind=True, base=RecordingJob, name="tests.flaky_job", max_retries=3)
def flaky_job(self, outages: int) -> str:
    attempts.append(self.request.retries)
    if len(attempts) <= outages:
        raise OperationalError("connection refused")
    return "done"


@pytest.fixture(autouse=True)
def _clean():
    attempts.clear()
    failures.clear()
    # As a worker runs them: a failure is the job's outcome, not an exception in the caller.
    propagates, app.conf.task_eager_propagates = app.conf.task_eager_propagates, False
    yield
    app.conf.task_eager_propagates = propagates


def test_a_job_that_meets_an_outage_is_retried_and_finishes():
    result = flaky_job.apply(args=(2,))
    assert result.get() == "done"
    assert attempts == [0, 1, 2]
    assert failures == []


def test_a_job_that_runs_out_of_retries_ends_failed_with_a_reason():
    result = flaky_job.apply(args=(99,))
    assert result.failed()
    assert attempts == [0, 1, 2, 3]
    assert failures == ["The job could not reach the database or Redis after 3 retries: OperationalError. "
                        "Start it again once the service is back."]


def test_retries_back_off_exponentially_up_to_a_ceiling():
    from celery.utils.time import get_exponential_backoff_interval

    waits = [get_exponential_backoff_interval(JobTask.retry_backoff, n, JobTask.retry_backoff_max, full_jitter=False)
             for n in range(10)]
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert JobTask.acks_late and JobTask.reject_on_worker_lost
