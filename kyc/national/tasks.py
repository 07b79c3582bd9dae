"""The national check as a retrying task (``videobank.outside.tasks.RetryingTask``): on a
worker one attempt per delivery, re-queued with back-off; eager, the whole series on a thread of
its own; after the last retry the check is ``unavailable``.

Back-off before retry n (0-based) is ``KYC_NATIONAL_RETRY_BACKOFF_S * 2**n``; after
``KYC_NATIONAL_MAX_RETRIES`` retries the check gives up. Each attempt asks every channel in turn
(``services.national_check_run``). The stub mounted in the same daphne process (embedded
profile) is served on a request thread of its own, so the check's HTTP call to it does not
deadlock.
"""

from __future__ import annotations

import uuid

from django.conf import settings

from videobank.outside.retry import Backoff
from videobank.outside.tasks import RetryingTask

from .services import NationalServiceDown, national_check_give_up, national_check_run


def _backoff() -> Backoff:
    return Backoff(first_s=float(getattr(settings, "KYC_NATIONAL_RETRY_BACKOFF_S", 0.5)))


def _max_retries() -> int:
    return int(getattr(settings, "KYC_NATIONAL_MAX_RETRIES", 3))


national_check = RetryingTask(
    name="kyc.national.check",
    what="national check",
    attempt=lambda key: national_check_run(check_id=uuid.UUID(key)).status,
    give_up=lambda key, reason="": (
        national_check_give_up(check_id=uuid.UUID(key), reason=reason).status
    ),
    transient=NationalServiceDown,
    backoff=_backoff,
    max_retries=_max_retries,
)
# Answers a pending check. Idempotent: a finished check is not asked again.
national_check_task = national_check.task


def national_check_enqueue(*, check_id: uuid.UUID) -> None:
    """Queue the task: to the broker, or (eager) on a thread of its own."""
    national_check.enqueue(str(check_id))


def national_check_threads_join(timeout: float = 30.0) -> bool:
    """Wait for eager runs still going (tests, shutdown); False if some did not end."""
    return national_check.join(timeout)
