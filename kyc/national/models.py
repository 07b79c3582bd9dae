import uuid

from django.db import models


class CheckStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    UNAVAILABLE = "unavailable", "Service unavailable"


FINAL_STATUSES = (CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.UNAVAILABLE)


class Outcome(models.TextChoices):
    PASS = "pass", "Pass"
    NOT_FOUND = "not_found", "Not found"
    MISMATCH = "mismatch", "Mismatch"
    REVOKED = "revoked", "Revoked"
    # The service refused the query itself (e.g. a portrait without a usable face).
    REJECTED = "rejected", "Rejected"


class BusinessRisk(models.TextChoices):
    LOW = "low", "Low"
    HIGH = "high", "High"


class NationalCheck(models.Model):
    """One question to the national online ID check and its answer.

    Neither the clear name nor the clear ID number is stored: a masked form for people, a keyed
    hash for matching (the cache; HMAC under KYC_NATIONAL_KEYS), and, while the check may still
    run, the query sealed under KYC_NATIONAL_KEYS (``sealed_query``, naming its key), wiped once
    the check has an answer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Sent to the service with every attempt, so the service answers a repeated question once.
    request_id = models.CharField(max_length=64, unique=True)
    name_masked = models.CharField(max_length=50)
    name_hash = models.CharField(max_length=64)
    id_number_masked = models.CharField(max_length=18)
    id_number_hash = models.CharField(max_length=64, db_index=True)
    factors = models.PositiveSmallIntegerField()  # 2: name + number; 3: + portrait
    business_risk = models.CharField(max_length=8, choices=BusinessRisk.choices)
    status = models.CharField(
        max_length=16, choices=CheckStatus.choices, default=CheckStatus.PENDING
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    mismatch_on = models.CharField(max_length=16, blank=True)  # "name" | "portrait"
    similarity = models.FloatField(null=True, blank=True)  # portrait, three-factor only
    channel = models.CharField(max_length=32, blank=True)  # the channel that answered
    attempts = models.PositiveIntegerField(default=0)  # passes over the channels, all series
    series = models.PositiveIntegerField(default=1)  # 1 + retries asked for by the teller
    last_error = models.TextField(blank=True)  # technical, for logs and support
    # What the teller and the customer are told.
    detail = models.CharField(max_length=300, blank=True)
    detail_zh = models.CharField(max_length=300, blank=True)
    from_cache = models.BooleanField(default=False)
    cache_source = models.UUIDField(null=True, blank=True)  # the live check a cached pass reuses
    sealed_query = models.BinaryField(blank=True, default=b"", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A pass may be reused for low-risk business until then (KYC_NATIONAL_CACHE_S).
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["id_number_hash", "status", "expires_at"], name="national_cache")
        ]

    def __str__(self) -> str:
        return f"national check {self.id} ({self.status})"

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES
