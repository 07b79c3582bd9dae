"""The identity check of a call: one per call, reused by every business done in it.

``IdentityCheck`` holds the state the teller's KYC panel shows (each step: pending → running →
passed/failed with reasons), the fields read from the card (and the teller's corrections), and
the result with its expiry (fields, corrections and place encrypted at rest:
``videobank.fields.SealedJSONField``). ``IdentityEvidence`` keeps what the decision rests on —
card frames, face frames, liveness frames, the chip photo — sealed with the call recording's data
key (AES-256-GCM, see recordings/crypto.py), so evidence and recording share one key policy.
"""

from __future__ import annotations

import uuid

from django.db import models

from queueing.models import Call
from videobank.fields import SealedJSONField


class CheckStatus(models.TextChoices):
    CONSENT_PENDING = "consent_pending", "Waiting for the customer's consent"
    IN_PROGRESS = "in_progress", "In progress"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Consent refused"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class Step(models.TextChoices):
    CONSENT = "consent", "Consent"
    CARD_FRONT = "card_front", "ID card, front"
    CARD_BACK = "card_back", "ID card, back"
    FIELDS = "fields", "Fields confirmed by the teller"
    FACE_MATCH = "face_match", "Face match"
    LIVENESS = "liveness", "Liveness"
    NATIONAL = "national", "National ID check"


STEP_ORDER = [s.value for s in Step]


class Level(models.TextChoices):
    NONE = "none", "None"
    TWO_FACTOR = "two_factor", "Name + ID number verified"
    THREE_FACTOR_FACE = "three_factor_face", "Name + ID number + portrait, live face matched"


class IdentityCheck(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="identity_checks")
    status = models.CharField(
        max_length=20, choices=CheckStatus.choices, default=CheckStatus.CONSENT_PENDING
    )
    level = models.CharField(max_length=20, choices=Level.choices, default=Level.NONE)
    # step -> {"status", "detail", "detail_zh", "at", ...step data}
    steps = models.JSONField(default=dict)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    geolocation = SealedJSONField(null=True, blank=True)  # {lat, lon, accuracy_m} if granted
    source = models.CharField(max_length=16, default="camera")  # camera | upload | chip
    # What the card says: OCR (or chip) values, then the teller's confirmed values. Personal
    # data: encrypted at rest (videobank.fields), shown to the teller, masked on the timeline.
    fields_read = SealedJSONField(default=dict)
    fields = SealedJSONField(default=dict)  # confirmed: name, sex, ethnicity, birth, address, ...
    corrections = SealedJSONField(default=list)  # [{field, from, to, by, at}]
    liveness_challenge = models.JSONField(null=True, blank=True)
    face_distance = models.FloatField(null=True, blank=True)
    national_check_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    passed_at = models.DateTimeField(null=True, blank=True)
    face_matched_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"identity check {self.id} ({self.status})"


class EvidenceKind(models.TextChoices):
    CARD_FRONT = "card_front", "Card front"
    CARD_BACK = "card_back", "Card back"
    PORTRAIT = "portrait", "Card portrait"
    FACE_FRAME = "face_frame", "Live face frame"
    LIVENESS_FRAME = "liveness_frame", "Liveness frame"
    CHIP_PHOTO = "chip_photo", "Chip photo"


class IdentityEvidence(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    identity_check = models.ForeignKey(
        IdentityCheck, on_delete=models.CASCADE, related_name="evidence"
    )
    kind = models.CharField(max_length=20, choices=EvidenceKind.choices)
    source = models.CharField(max_length=16)  # media_worker | upload | chip
    offset_ms = models.IntegerField(null=True, blank=True)  # on the recording's clock
    captured_at = models.DateTimeField()
    sha256 = models.CharField(max_length=64)
    sealed = models.BinaryField()  # JPEG, AES-256-GCM under the recording's data key
    meta = models.JSONField(default=dict)  # e.g. {"distance": 0.41} or {"problem": "no_face"}

    class Meta:
        ordering = ["captured_at"]

    def __str__(self) -> str:
        return f"{self.kind} evidence of {self.identity_check_id}"


class UploadAttempt(models.Model):
    """A customer's card upload that got as far as the picture checks (the call was connected and
    its identity check waited for that side). Counted for the per-call upload limit — in the
    database, so the limit holds however many server processes take the uploads."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="kyc_upload_attempts")
    side = models.CharField(max_length=8)
    size = models.PositiveIntegerField()  # bytes of the file as sent
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["call", "at"], name="kyc_upload_call_at")]

    def __str__(self) -> str:
        return f"{self.side} upload for {self.call_id} at {self.at:%H:%M:%S}"
