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

from videobank.outside.tasks import RetryingTask

from .services import NationalServiceDown, national_check_give_up, national_check_run

# Answers a pending check. Idempotent: a finished check is not asked again.
national_check = RetryingTask(
    "kyc.national.check",
    settings="KYC_NATIONAL",
    attempt=national_check_run,
    give_up=national_check_give_up,
    retry_on=NationalServiceDown,
)
national_check_task = national_check.task


def national_check_enqueue(*, check_id: uuid.UUID) -> None:
    """Queue the task: to the broker, or (eager) on a thread of its own."""
    national_check.enqueue(str(check_id))


def national_check_threads_join(timeout: float = 30.0) -> bool:
    """Wait for eager runs still going (tests, shutdown); False if some did not end."""
    return national_check.join(timeout)
