"""A submission's sending as a Celery task: retries with capped exponential backoff, then
``unanswered``.

Backoff before retry n (0-based) is ``min(COREBANK_RETRY_BACKOFF_S * 2**n,
COREBANK_RETRY_MAX_BACKOFF_S)``; after ``COREBANK_MAX_RETRIES`` retries the submission is
``unanswered`` (``conf.retry_horizon_s``: about ten minutes with the defaults, long enough for a
core-bank restart).

- Worker (production): one attempt per task run; no answer re-queues the task with
  ``self.retry(countdown=backoff)`` — the retry is a broker message, so it survives a worker
  restart, and no worker sleeps while it waits.
- Eager (embedded profile, CELERY_TASK_ALWAYS_EAGER): Celery would run a retry at once and ignore
  the countdown, so the task loops over the attempts itself and sleeps the backoff, on a thread of
  its own (``submission_enqueue``): the caller is usually a consumer, and channels runs every
  consumer's sync code on one shared thread per process. After a restart,
  ``services.submissions_resume`` picks up what such a thread left.
"""

from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task

from videobank.background import EagerThreads

from .conf import backoff_s, max_retries
from .services import (
    SubmissionDeferred,
    submission_attempt,
    submission_give_up,
    submission_wait_until,
)

log = logging.getLogger(__name__)

# How the eager series waits between attempts; tests replace it to observe the backoff.
sleep = time.sleep


@shared_task(bind=True, acks_late=True, max_retries=None, name="workflows.corebank.send")
def submission_send_task(self, submission_id: str) -> str:
    """Send a queued submission. Idempotent: a finished submission is not sent again, and the
    core answers a repeated key with its recorded answer."""
    if self.request.is_eager:
        return submission_send_series(submission_id=uuid.UUID(submission_id))
    return submission_send_attempt(self, submission_id=uuid.UUID(submission_id))


def submission_send_attempt(task, *, submission_id: uuid.UUID) -> str:
    """The worker path: one attempt; on no answer re-queue with backoff or give up. ``task`` is
    the bound Celery task (``request.retries``, ``retry``)."""
    try:
        return submission_attempt(submission_id=submission_id).status
    except SubmissionDeferred as exc:
        retries = task.request.retries
        if retries >= max_retries():
            return submission_give_up(submission_id=submission_id).status
        wait = backoff_s(retries)
        submission_wait_until(submission_id=submission_id, seconds=wait)
        raise task.retry(exc=exc, countdown=wait) from exc
    except Exception:
        submission_give_up(
            submission_id=submission_id, reason="internal error (see the worker log)"
        )
        raise


def submission_send_series(*, submission_id: uuid.UUID) -> str:
    """The eager path: all attempts here, sleeping the backoff between them."""
    try:
        for retries in range(max_retries() + 1):
            try:
                return submission_attempt(submission_id=submission_id).status
            except SubmissionDeferred:
                if retries == max_retries():
                    break
                wait = backoff_s(retries)
                submission_wait_until(submission_id=submission_id, seconds=wait)
                sleep(wait)
        return submission_give_up(submission_id=submission_id).status
    except Exception:
        log.exception("core bank: submission %s failed", submission_id)
        return submission_give_up(
            submission_id=submission_id, reason="internal error (see the server log)"
        ).status


_eager = EagerThreads("corebank-send")


def submission_enqueue(*, submission_id: uuid.UUID) -> None:
    """Queue the task: to the broker, or (eager) on a thread of its own."""
    _eager.enqueue(submission_send_task, str(submission_id), name=str(submission_id))


def submission_threads_join(timeout: float = 30.0) -> bool:
    """Wait for eager runs still going (tests, shutdown); False if some did not end."""
    return _eager.join(timeout)
