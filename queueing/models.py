import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from queueing.selectors import QueuePlace


class Business(models.Model):
    """A kind of business a customer can ask for when calling."""

    key = models.SlugField(max_length=64, unique=True)
    name_zh = models.CharField(max_length=100)
    name_en = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    # After this wait the customer is offered a callback instead (blank: the site default).
    max_wait_s = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["sort_order", "key"]
        verbose_name_plural = "businesses"

    def __str__(self) -> str:
        return f"{self.name_en} ({self.key})"


class Skill(models.Model):
    key = models.SlugField(max_length=64, unique=True)
    name_zh = models.CharField(max_length=100)
    name_en = models.CharField(max_length=100)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


LEVELS = [(i, str(i)) for i in range(1, 6)]


class BusinessSkill(models.Model):
    """A skill a business needs, at a minimum level (1-5)."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="requirements")
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="+")
    min_level = models.PositiveSmallIntegerField(choices=LEVELS, default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["business", "skill"], name="one_requirement_per_skill")
        ]

    def __str__(self) -> str:
        return f"{self.business.key} needs {self.skill.key} >= {self.min_level}"


class StepKind(models.TextChoices):
    LOWER = "lower", "Accept N levels lower"
    ANY = "any", "Any level of the skill"
    GROUP = "group", "A teller group, whatever its skills"


class RelaxationStep(models.Model):
    """After waiting ``after_s`` seconds, a call of the business accepts wider matches."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="steps")
    after_s = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=StepKind.choices)
    value = models.CharField(
        max_length=64, blank=True, help_text="levels for 'lower'; group name for 'group'"
    )

    class Meta:
        ordering = ["business", "after_s"]

    def __str__(self) -> str:
        return f"{self.business.key} after {self.after_s}s: {self.kind} {self.value}".strip()


class Language(models.TextChoices):
    MANDARIN = "zh", "Mandarin"
    CANTONESE = "yue", "Cantonese"
    ENGLISH = "en", "English"
    SIGN = "sgn", "Sign language"


class TellerProfile(models.Model):
    """What a teller can take: languages, channels, groups; a video teller has capacity 1."""

    teller = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="teller_profile"
    )
    languages = models.JSONField(default=list, help_text='e.g. ["zh", "en"]')
    channels = models.JSONField(default=list, help_text='e.g. ["web", "app", "vtm"]')
    groups = models.JSONField(default=list, blank=True, help_text='e.g. ["generalist"]')
    capacity = models.PositiveSmallIntegerField(default=1)

    def __str__(self) -> str:
        return f"profile of {self.teller}"


class TellerSkill(models.Model):
    teller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="teller_skills"
    )
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(choices=LEVELS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["teller", "skill"], name="one_level_per_skill")
        ]

    def __str__(self) -> str:
        return f"{self.teller} {self.skill.key}={self.level}"


class Priority(models.IntegerChoices):
    NORMAL = 0, "Normal"
    ELDERLY = 1, "Elderly / accessibility"
    VIP = 2, "VIP"


class PriorityClaim(models.TextChoices):
    """What became of a customer's own claim to the elderly/accessibility queue: the page's
    checkbox is a claim, not a fact, until the identity check's birth date settles it."""

    NONE = "", "No claim"
    CLAIMED = "claimed", "Claimed, not yet checked"
    CONFIRMED = "confirmed", "Confirmed by the identity check"
    WITHDRAWN = "withdrawn", "Withdrawn by the identity check"
    OVER_LIMIT = "over_limit", "Not applied: too many claims from the network"


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
    CALLBACK = "callback", "Callback requested"


OPEN_CALL_STATUSES = (CallStatus.WAITING, CallStatus.OFFERED, CallStatus.CONNECTED)


class Call(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    business = models.ForeignKey(Business, on_delete=models.PROTECT, related_name="calls")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    language = models.CharField(max_length=16, default="zh")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    priority_claim = models.CharField(
        max_length=16, choices=PriorityClaim.choices, default=PriorityClaim.NONE, blank=True
    )
    # Put back at the head of the queue (its teller dropped mid-call).
    head = models.BooleanField(default=False)
    preferred_teller = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    preferred_until = models.DateTimeField(null=True, blank=True)
    callback_offered_at = models.DateTimeField(null=True, blank=True)
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
    enqueued_at = models.DateTimeField(default=timezone.now, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    # Channel-layer name of the media worker that carries this call's media.
    media_channel = models.CharField(max_length=200, blank=True)
    customer_ip = models.GenericIPAddressField(null=True, blank=True)
    # A hash of the customer's device id (the page's device cookie; kiosks and apps: their own),
    # for the limit on open calls per device. Blank: unknown.
    customer_device = models.CharField(max_length=64, blank=True, default="")
    # Not stored: the caller's place, set by call_enqueue(admit=True) from its admission counts.
    place: "QueuePlace"

    class Meta:
        ordering = ["enqueued_at"]
        indexes = [
            models.Index(fields=["status", "business", "enqueued_at"]),
            # Only the waiting calls, in service order: a caller's place is a count over its
            # business's slice, the tellers' first N a short index walk.
            models.Index(
                fields=["business", "-priority", "-head", "enqueued_at", "id"],
                condition=models.Q(status="waiting"),
                name="call_waiting_business_order",
            ),
            models.Index(
                fields=["-priority", "-head", "enqueued_at", "id"],
                condition=models.Q(status="waiting"),
                name="call_waiting_order",
            ),
            # Open calls per network and per device (the anonymous side's limits).
            models.Index(
                fields=["customer_ip"],
                condition=models.Q(status__in=["waiting", "offered", "connected"]),
                name="call_open_by_ip",
            ),
            models.Index(
                fields=["customer_device"],
                condition=models.Q(status__in=["waiting", "offered", "connected"])
                & ~models.Q(customer_device=""),
                name="call_open_by_device",
            ),
        ]

    def __str__(self) -> str:
        return f"call {self.id} ({self.status})"


class OfferStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DROPPED = "dropped", "Dropped"  # accepted, then the teller's connection dropped


class Offer(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="offers")
    teller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="offers"
    )
    status = models.CharField(
        max_length=16, choices=OfferStatus.choices, default=OfferStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # A call is offered to at most one teller at a time, a teller rings for one call.
            models.UniqueConstraint(
                fields=["call"],
                condition=models.Q(status="pending"),
                name="one_pending_offer_per_call",
            ),
            models.UniqueConstraint(
                fields=["teller"],
                condition=models.Q(status="pending"),
                name="one_pending_offer_per_teller",
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
    # When the teller last became free: the longest idle is offered first.
    idle_since = models.DateTimeField(null=True, blank=True)
    current_call = models.ForeignKey(
        Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    missed_offers = models.PositiveSmallIntegerField(default=0)  # in a row
    break_reason = models.CharField(max_length=64, blank=True)
    wrap_up_until = models.DateTimeField(null=True, blank=True)

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
    RECORDING_INCOMPLETE = "recording_incomplete", "Recording sealed as incomplete"
    OFFER_REJECTED = "offer_rejected", "Offer rejected"
    OFFER_EXPIRED = "offer_expired", "Offer expired"
    REQUEUED = "requeued", "Re-queued"
    CALLBACK_OFFERED = "callback_offered", "Callback offered"
    CALLBACK_REQUESTED = "callback_requested", "Callback requested"
    MOVED = "moved", "Moved by a supervisor"
    PRIORITY_CLAIM = "priority_claim", "Priority claim checked"
    # Identity check (kyc/): what the teller did and what the checks found.
    KYC_CONSENT = "kyc_consent", "Identity check: consent"
    KYC_CAPTURE = "kyc_capture", "Identity check: picture captured"
    KYC_OCR = "kyc_ocr", "Identity check: card read"
    KYC_FIELDS = "kyc_fields", "Identity check: fields confirmed"
    KYC_FACE_MATCH = "kyc_face_match", "Identity check: face match"
    KYC_LIVENESS = "kyc_liveness", "Identity check: liveness"
    KYC_NATIONAL = "kyc_national", "Identity check: national ID check"
    KYC_RESULT = "kyc_result", "Identity check: result"
    KYC_RESET = "kyc_reset", "Identity check: card evidence replaced, steps reset"
    PERIPHERAL = "peripheral", "Kiosk peripheral event"
    BUSINESS = "business", "Business step"


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


class CallbackRequest(models.Model):
    """A waiting customer asked to be called back instead of waiting on."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="callback")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"callback for {self.call_id}"


class MediaWorker(models.Model):
    """A live media worker process and the channel-layer name it listens on: the router puts a
    call on one when a teller answers, the recordings sweep judges a worker dead by its
    heartbeat. (The media engine itself is ``signaling/media/``; it only registers here.)"""

    channel_name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)
    active_sessions = models.PositiveIntegerField(default=0)

    class Meta:
        # Moved here from signaling without touching the table: running media workers write
        # their heartbeat to it while a deployment migrates (docs/architecture.md).
        db_table = "signaling_mediaworker"

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.active_sessions} sessions)"
