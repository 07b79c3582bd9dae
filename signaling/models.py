from django.db import models


class Kiosk(models.Model):
    """A VTM kiosk the bank registered: the only customer device whose peripherals (card reader,
    document camera, printer, dispenser) are believed, and whose calls are on the VTM channel.

    It proves itself with a credential ``vtm_<credential_id>_<secret>`` shown once when it is
    made or rotated; only its SHA-256 is kept (the secret is 256 random bits, so a fast hash
    is enough and a kiosk's every connection does not burn a password-hashing round).
    """

    name = models.CharField(max_length=100, unique=True)
    branch = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    # The credential's public part: finds the row; changes with every rotation.
    credential_id = models.CharField(max_length=32, unique=True, editable=False)
    credential_hash = models.CharField(max_length=64, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_by = models.CharField(max_length=150, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.CharField(max_length=150, blank=True, editable=False)
    enrolled_at = models.DateTimeField(null=True, blank=True, editable=False)
    enrolled_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.branch})"


class KioskEventKind(models.TextChoices):
    CREATED = "created", "Registered"
    ROTATED = "rotated", "Credential rotated"
    REVOKED = "revoked", "Revoked"
    ENROLLED = "enrolled", "Enrolled on a device"


class KioskEvent(models.Model):
    """The audit trail of a kiosk's credential: who made, rotated or revoked it, where it was
    enrolled. Never the credential itself."""

    kiosk = models.ForeignKey(Kiosk, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=KioskEventKind.choices)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    credential_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.kiosk.name}: {self.kind} at {self.at:%Y-%m-%d %H:%M}"
