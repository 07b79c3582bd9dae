"""The stub's own data: the registry it answers from, what it answered, and its fault controls.

In production the stub is a process of its own but keeps these tables in the project database
(it is a test stand-in, not a real registry).
"""

from django.db import models

from kyc.national.masking import id_number_mask, name_mask
from videobank.outside.stubs.records import IdempotencyRecord


class CitizenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"


class Citizen(models.Model):
    """A registry entry: the name that belongs to an ID number, and the portrait on file."""

    name = models.CharField(max_length=50)
    id_number = models.CharField(max_length=18, unique=True)
    status = models.CharField(
        max_length=16, choices=CitizenStatus.choices, default=CitizenStatus.ACTIVE
    )
    # 128 floats (a face encoding of the reference portrait); null: no portrait on file.
    portrait_encoding = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{name_mask(self.name)} {id_number_mask(self.id_number)} ({self.status})"


class StubRequest(IdempotencyRecord):
    """A final answer given to a caller's request id: a replay of that id gets the same answer
    (``fingerprint``, ``answer``, ``replays``: the outside kit's idempotency record).

    Injected errors and outages are not final and are not recorded here."""

    request_id = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=32)  # the channel that first answered
    id_number_masked = models.CharField(max_length=18)
    factors = models.PositiveSmallIntegerField()

    def __str__(self) -> str:
        return f"request {self.request_id}: {self.answer.get('result')}"


class StubChannelControl(models.Model):
    """Faults set at run time for one channel, shared by every process serving the stub.

    A null field means the settings default (NATIONAL_STUB_LATENCY_MS, ..._JITTER_MS,
    ..._ERROR_RATE)."""

    channel = models.CharField(max_length=32, unique=True)
    outage = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    jitter_ms = models.PositiveIntegerField(null=True, blank=True)
    error_rate = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.channel}: {'outage' if self.outage else 'up'}"
