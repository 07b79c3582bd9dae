"""The businesses done in a call: one ``BusinessCase`` per business, several per call, all served by
the call's one identity check; a ``Receipt`` for each one done.

A case moves through the states of its business's declaration (``workflows.catalogue``): the
teller fills the form, the customer reads the agreement, confirms the summary and authorises with
a PIN or a one-time code, the core bank carries it out once (idempotency key derived from the
case), and a receipt is issued. Neither a PIN, a one-time code nor their ciphertext is ever kept
here: the browser encrypts them for the core bank, which alone checks them.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from queueing.models import Call
from videobank.fields import SealedJSONField


class CaseStatus(models.TextChoices):
    DRAFT = "draft", "Draft: the teller fills the form"
    NEEDS_FACE = "needs_face", "Waiting for a fresh face match"
    FILLED = "filled", "Filled: the agreement can be sent"
    AGREEMENT_SENT = "agreement_sent", "The customer is reading the agreement"
    AGREEMENT_READ = "agreement_read", "Agreement read: waiting for the customer's confirmation"
    CONFIRMED = "confirmed", "Confirmed: waiting for the PIN or one-time code"
    AUTHORISED = "authorised", "Authorised"
    SUBMITTED = "submitted", "Sent to the core bank"
    WAITING_RETRY = "waiting_retry", "Core bank unavailable: queued, retried automatically"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused by the customer"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


FINAL_STATUSES = (
    CaseStatus.DONE,
    CaseStatus.REFUSED,
    CaseStatus.REJECTED,
    CaseStatus.CANCELLED,
)


class BusinessCase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="business_cases")
    business = models.CharField(max_length=64)  # a key of workflows.catalogue.CATALOGUE
    status = models.CharField(max_length=20, choices=CaseStatus.choices, default=CaseStatus.DRAFT)
    teller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="business_cases"
    )
    identity_check_id = models.UUIDField(null=True, blank=True)
    # The customer at the core bank and what the teller's form offers of theirs (accounts, cards:
    # numbers and tokens, as the core gives them). What holds personal data (names, addresses,
    # account numbers) is encrypted at rest: videobank.fields.SealedJSONField.
    customer_ref = models.CharField(max_length=40, blank=True)
    customer = SealedJSONField(default=dict)
    # The form: the values as typed (for the teller to correct), the checked values, the errors.
    form_values = SealedJSONField(default=dict)
    params = SealedJSONField(default=dict)
    form_errors = models.JSONField(default=dict)  # {field: {"en", "zh"}}
    # step -> {"state": pending|current|done|failed, "at", "detail": {"en","zh"}}
    steps = models.JSONField(default=dict)
    # The last refusal in words for both screens: {"code", "en", "zh"}.
    error = models.JSONField(null=True, blank=True)
    face_requested_at = models.DateTimeField(null=True, blank=True)
    # The agreement as shown (its version and digest) and how the customer read it.
    agreement_version = models.CharField(max_length=32, blank=True)
    agreement_sha256 = models.CharField(max_length=64, blank=True)
    agreement_sent_at = models.DateTimeField(null=True, blank=True)
    agreement_read_at = models.DateTimeField(null=True, blank=True)
    agreement_reading_ms = models.PositiveIntegerField(null=True, blank=True)
    agreement_reached_end = models.BooleanField(null=True, blank=True)
    # The summary the customer saw and what they answered.
    summary = SealedJSONField(default=list)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Authorisation: the core bank's current one-use challenge (an id, not a secret) and its
    # method; for password_reset also the (verified, then spent by the core) new-PIN challenge.
    auth_method = models.CharField(max_length=8, blank=True)  # pin | otp | new_pin
    challenge_id = models.CharField(max_length=64, blank=True)
    challenge = models.JSONField(default=dict)  # its public part: key, nonce, method
    authorised_challenge_id = models.CharField(max_length=64, blank=True)
    new_pin_challenge_id = models.CharField(max_length=64, blank=True)
    auth_attempts_left = models.PositiveSmallIntegerField(null=True, blank=True)
    authorised_at = models.DateTimeField(null=True, blank=True)
    # The core bank: one submission per case (idempotency key derived from the case id).
    idempotency_key = models.CharField(max_length=64, blank=True)
    submission_id = models.UUIDField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    result = SealedJSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # Counts the case's published changes. Its messages are sent by whichever process changed
    # it (a server, the Celery worker with the core bank's answer) and may arrive out of order;
    # screens keep the highest revision they have seen.
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_case_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.business} case {self.id} ({self.status})"


class Receipt(models.Model):
    """The e-receipt of a done case. ``content`` is what the receipt says (numbers masked;
    encrypted at rest); ``code`` is an HMAC of it, ``seal`` an HMAC of both under the receipt key
    ``key_id`` (WORKFLOW_RECEIPT_KEYS): a receipt whose content or code was altered no longer
    verifies, and a code cannot be guessed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.OneToOneField(BusinessCase, on_delete=models.CASCADE, related_name="receipt")
    code = models.CharField(max_length=16, unique=True)
    content = SealedJSONField()
    issued_at = models.DateTimeField()
    key_id = models.CharField(max_length=64, blank=True)
    seal = models.CharField(max_length=64, blank=True)  # hex HMAC-SHA256; empty: never verifies

    class Meta:
        ordering = ["issued_at"]

    def __str__(self) -> str:
        return f"receipt {self.code}"
