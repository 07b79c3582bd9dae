"""The national check as a Celery task: retries with exponential backoff, then ``unavailable``.

Backoff before retry n (0-based) is ``KYC_NATIONAL_RETRY_BACKOFF_S * 2**n``; after
``KYC_NATIONAL_MAX_RETRIES`` retries the check gives up.

- Worker (production): one attempt per task run; a failed attempt re-queues the task with
  ``self.retry(countdown=backoff)``, so no worker sleeps while it waits.
- Eager (embedded profile, CELERY_TASK_ALWAYS_EAGER): Celery would run a retry at once and ignore
  the countdown, so the task loops over the attempts itself and sleeps the backoff. It runs in a
  thread of its own (``national_check_enqueue``): the caller is usually a consumer, and channels
  runs every consumer's sync code on one shared thread per process — a check waiting on the
  outside service (up to a whole series of timeouts) there would stall every call in the process.
  The stub mounted in the same daphne process is served on a request thread of its own, so the
  check's HTTP call to it does not deadlock either way.
"""

from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task
from django.conf import settings

from videobank.background import EagerThreads

from .services import NationalServiceDown, national_check_give_up, national_check_run

log = logging.getLogger(__name__)

# How the eager series waits between attempts; tests replace it to observe the backoff.
sleep = time.sleep


def backoff_s(retries: int) -> float:
    return float(getattr(settings, "KYC_NATIONAL_RETRY_BACKOFF_S", 0.5)) * 2**retries


def max_retries() -> int:
    return int(getattr(settings, "KYC_NATIONAL_MAX_RETRIES", 3))


@shared_task(bind=True, acks_late=True, max_retries=None, name="kyc.national.check")
def national_check_task(self, check_id: str) -> str:
    """Answer a pending check. Idempotent: a finished check is not asked again."""
    if self.request.is_eager:
        return national_check_series(check_id=uuid.UUID(check_id))
    return national_check_attempt(self, check_id=uuid.UUID(check_id))


def national_check_attempt(task, *, check_id: uuid.UUID) -> str:
    """The worker path: one attempt; on no answer re-queue with backoff or give up.
    ``task`` is the bound Celery task (``request.retries``, ``retry``)."""
    try:
        return national_check_run(check_id=check_id).status
    except NationalServiceDown as exc:
        retries = task.request.retries
        if retries >= max_retries():
            return national_check_give_up(check_id=check_id).status
        raise task.retry(exc=exc, countdown=backoff_s(retries)) from exc
    except Exception:
        national_check_give_up(check_id=check_id, reason="internal error (see the worker log)")
        raise


def national_check_series(*, check_id: uuid.UUID) -> str:
    """The eager path: all attempts here, sleeping the backoff between them."""
    try:
        for retries in range(max_retries() + 1):
            try:
                return national_check_run(check_id=check_id).status
            except NationalServiceDown:
                if retries == max_retries():
                    break
                sleep(backoff_s(retries))
        return national_check_give_up(check_id=check_id).status
    except Exception:
        log.exception("national check %s failed", check_id)
        return national_check_give_up(
            check_id=check_id, reason="internal error (see the server log)"
        ).status


_eager = EagerThreads("national-check")


def national_check_enqueue(*, check_id: uuid.UUID) -> None:
    """Queue the task: to the broker, or (eager) on a thread of its own."""
    _eager.enqueue(national_check_task, str(check_id), name=str(check_id))


def national_check_threads_join(timeout: float = 30.0) -> bool:
    """Wait for eager runs still going (tests, shutdown); False if some did not end."""
    return _eager.join(timeout)
