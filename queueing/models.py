import uuid

from django.conf import settings
from django.db import models


class Business(models.Model):
    """A kind of business a customer can ask for when calling."""

    key = models.SlugField(max_length=64, unique=True)
    name_zh = models.CharField(max_length=100)
    name_en = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "key"]
        verbose_name_plural = "businesses"

    def __str__(self) -> str:
        return f"{self.name_en} ({self.key})"


class Channel(models.TextChoices):
    WEB = "web", "Web"
    APP = "app", "App"
    VTM = "vtm", "VTM"


class CallStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    OFFERED = "offered", "Offered"
    CONNECTED = "connected", "Connected"
    ENDED = "ended", "Ended"
    ABANDONED = "abandoned", "Abandoned"


OPEN_CALL_STATUSES = (CallStatus.WAITING, CallStatus.OFFERED, CallStatus.CONNECTED)


class Call(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    business = models.ForeignKey(Business, on_delete=models.PROTECT, related_name="calls")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    language = models.CharField(max_length=16, default="zh")
    status = models.CharField(
        max_length=16, choices=CallStatus.choices, default=CallStatus.WAITING, db_index=True
    )
    teller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
    )
    enqueued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    # Channel-layer name of the media worker that carries this call's media.
    media_channel = models.CharField(max_length=200, blank=True)
    customer_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["enqueued_at"]
        indexes = [models.Index(fields=["status", "business", "enqueued_at"])]

    def __str__(self) -> str:
        return f"call {self.id} ({self.status})"


class OfferStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Offer(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="offers")
    teller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="offers"
    )
    status = models.CharField(
        max_length=16, choices=OfferStatus.choices, default=OfferStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # A call is offered to at most one teller at a time.
            models.UniqueConstraint(
                fields=["call"],
                condition=models.Q(status="pending"),
                name="one_pending_offer_per_call",
            ),
        ]

    def __str__(self) -> str:
        return f"offer of {self.call_id} to {self.teller_id} ({self.status})"


class PresenceStatus(models.TextChoices):
    OFFLINE = "offline", "Offline"
    AVAILABLE = "available", "Available"
    OFFERED = "offered", "Offered"
    BUSY = "busy", "Busy"
    WRAP_UP = "wrap_up", "Wrap-up"
    BREAK = "break", "Break"


class TellerPresence(models.Model):
    teller = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence"
    )
    status = models.CharField(
        max_length=16, choices=PresenceStatus.choices, default=PresenceStatus.OFFLINE
    )
    since = models.DateTimeField(auto_now_add=True)
    current_call = models.ForeignKey(
        Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.teller} {self.status}"


class CallEventKind(models.TextChoices):
    ENQUEUED = "enqueued", "Enqueued"
    OFFERED = "offered", "Offered"
    ANSWERED = "answered", "Answered"
    JOINED = "joined", "Joined"
    MEDIA_CONNECTED = "media_connected", "Media connected"
    MEDIA_FAILED = "media_failed", "Media failed"
    HUNG_UP = "hung_up", "Hung up"
    ABANDONED = "abandoned", "Abandoned"
    DISCONNECTED = "disconnected", "Disconnected"
    RECORDING_STARTED = "recording_started", "Recording started"
    RECORDING_FINALISED = "recording_finalised", "Recording finalised"


class CallEvent(models.Model):
    """The call's timeline, replayed by QA next to the recording."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=CallEventKind.choices)
    actor = models.CharField(max_length=32, blank=True)  # "customer", "teller:<id>", "system"
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor or 'system'}"
