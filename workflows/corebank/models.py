import uuid

from django.db import models

from videobank.fields import SealedJSONField


class SubmissionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    DONE = "done", "Done"
    REJECTED = "rejected", "Rejected (business error)"
    # The core did not answer; the submission is retried with the same idempotency key.
    WAITING_RETRY = "waiting_retry", "Waiting to retry"
    # Still no answer after the retry horizon: not known to have happened or not; a retry
    # (same key) is safe and settles it.
    UNANSWERED = "unanswered", "Unanswered"


FINAL_STATUSES = (SubmissionStatus.DONE, SubmissionStatus.REJECTED)


class Submission(models.Model):
    """One business operation sent to the core bank under an idempotency key: however many
    times it is sent (retries, double clicks, a repeated message), the core carries it out once.

    ``params`` hold what the core needs (account numbers, amounts; encrypted at rest, as the
    result) — never a PIN or a code: those go to the core encrypted, straight from the
    customer's browser."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    business_case_id = models.UUIDField(db_index=True)
    operation = models.CharField(max_length=32)
    customer_ref = models.CharField(max_length=20)
    params = SealedJSONField(default=dict)
    # The PIN/OTP challenge the customer passed for this operation (the core spends it once).
    authorised_by = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True)
    # SHA-256 of what is asked, so a key reused for another submission is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=SubmissionStatus.choices, default=SubmissionStatus.QUEUED
    )
    result = SealedJSONField(null=True, blank=True)  # the core's result when done
    error_code = models.CharField(max_length=40, blank=True)
    # What the teller and the customer are told (business errors, or why it is waiting).
    error_en = models.CharField(max_length=300, blank=True)
    error_zh = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    replayed = models.BooleanField(default=False)  # the final answer was the core's replay
    last_error = models.TextField(blank=True)  # technical, for logs and support
    # Set while an attempt is in flight (one at a time per submission).
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="submission_due")]

    def __str__(self) -> str:
        return f"{self.operation} {self.idempotency_key} ({self.status})"

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES
