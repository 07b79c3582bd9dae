import uuid

from django.conf import settings
from django.db import models


class RecordingStatus(models.TextChoices):
    RECORDING = "recording", "Recording"
    FINALISED = "finalised", "Finalised"


class Recording(models.Model):
    """One call's recording: encrypted segments of both sides plus the call's timeline."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.OneToOneField("queueing.Call", on_delete=models.PROTECT, related_name="recording")
    status = models.CharField(
        max_length=16, choices=RecordingStatus.choices, default=RecordingStatus.RECORDING
    )
    # Envelope encryption: the per-recording data key, wrapped by the master key ``key_id``.
    key_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 over the ordered list of segment hashes, set when finalised (kept for reference:
    # anyone with database access can recompute it, so it proves nothing on its own).
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    # The sealed manifest (recordings/manifest.py): every segment, each side's segment count,
    # first index and media end, the ids and times; and its HMAC-SHA256 under a key derived from
    # the data key, so only a holder of the master key can make or mend one.
    manifest = models.JSONField(default=dict, blank=True)
    manifest_hmac = models.CharField(max_length=64, blank=True)
    # Sealed without every part of the call (its media worker died, the finalisation was lost,
    # a segment never reached storage): {"en": ..., "zh": ...}, also in the sealed manifest.
    incomplete = models.BooleanField(default=False)
    incomplete_reason = models.JSONField(default=dict, blank=True)
    # Set when the first media session fixed the recording clock's origin (``started_at``): a
    # session resumed on another media worker keeps it, so the parts share one clock.
    clock_fixed = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"recording {self.id} of call {self.call_id}"


class Side(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    TELLER = "teller", "Teller"


class RecordingSegment(models.Model):
    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="segments")
    side = models.CharField(max_length=16, choices=Side.choices)
    index = models.PositiveIntegerField()
    path = models.CharField(max_length=500)  # relative to RECORDING_DIR
    start_ms = models.PositiveIntegerField()  # offset from the recording's start
    duration_ms = models.PositiveIntegerField()
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)  # of the encrypted file as stored
    video_frames = models.PositiveIntegerField(default=0)
    audio_frames = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["side", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["recording", "side", "index"], name="one_segment_per_slot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.side} segment {self.index} of {self.recording_id}"


class RecordingAccess(models.Model):
    """Audit trail: every read of a recording, by whom, how."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="accesses")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    actor = models.CharField(max_length=200)  # user name or "cli:<os user>"
    action = models.CharField(max_length=32)  # export, replay, ...
    at = models.DateTimeField(auto_now_add=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.action} of {self.recording_id} by {self.actor}"


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    COACHING = "coaching", "Pass with coaching"
    FAIL = "fail", "Fail"


class ReviewKind(models.TextChoices):
    REVIEW = "review", "Review"
    OVERRIDE = "override", "Supervisor's override"


class QaReview(models.Model):
    """A reviewer's scored judgement of one recorded call. Rows are never changed: a reviewer
    who reviews again adds a row, and the newest is the call's current judgement. A failed
    judgement is changed only by a supervisor's override: a row of kind ``override`` pointing at
    the failed one, its reason in ``comment``."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    kind = models.CharField(max_length=16, choices=ReviewKind.choices, default=ReviewKind.REVIEW)
    overrides = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="overridden_by"
    )
    checklist = models.JSONField(default=dict)  # item key -> "yes" | "no" | "na"
    score = models.PositiveSmallIntegerField(null=True)  # % of applicable items met
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.verdict} review of {self.recording_id} by {self.reviewer_id}"


class QaNote(models.Model):
    """A reviewer's note pinned to a moment of the recording."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    at_ms = models.IntegerField()  # offset from the recording's start
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at_ms", "id"]

    def __str__(self) -> str:
        return f"note at {self.at_ms} ms of {self.recording_id}"
