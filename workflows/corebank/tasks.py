"""A submission's sending as a retrying task (``videobank.outside.tasks.RetryingTask``):
retries with capped exponential back-off, then ``unanswered``.

Back-off before retry n (0-based) is ``min(COREBANK_RETRY_BACKOFF_S * 2**n,
COREBANK_RETRY_MAX_BACKOFF_S)``; after ``COREBANK_MAX_RETRIES`` retries the submission is
``unanswered`` (``conf.retry_horizon_s``: about ten minutes with the defaults, long enough for a
core-bank restart). Before each wait the submission records when its next attempt is due (the
teller sees it; ``services.submissions_resume`` picks up what an eager thread left when its
process stopped).
"""

from __future__ import annotations

import uuid

from videobank.outside.tasks import RetryingTask

from .services import (
    SubmissionDeferred,
    submission_attempt,
    submission_give_up,
    submission_wait_until,
)

# Sends a queued submission. Idempotent: a finished submission is not sent again, and the core
# answers a repeated key with its recorded answer.
submission_send = RetryingTask(
    "workflows.corebank.send",
    attempt=submission_attempt,
    give_up=submission_give_up,
    on_wait=submission_wait_until,
    retry_on=SubmissionDeferred,
    settings="COREBANK",
)
submission_send_task = submission_send.task


def submission_send_series(*, submission_id: uuid.UUID) -> str:
    """Every attempt of a submission here and now (what the eager task runs)."""
    return submission_send.series(str(submission_id))


def submission_enqueue(*, submission_id: uuid.UUID) -> None:
    """Queue the task: to the broker, or (eager) on a thread of its own."""
    submission_send.enqueue(str(submission_id))


def submission_threads_join(timeout: float = 30.0) -> bool:
    """Wait for eager runs still going (tests, shutdown); False if some did not end."""
    return submission_send.join(timeout)
