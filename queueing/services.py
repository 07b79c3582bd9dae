"""Queue transitions. Each is one atomic service that checks the current state.

The policy here is first-come-first-served per business with tellers picking calls; the
skill-based router (issue 3) replaces how offers are made, not these transitions.
"""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from recordings.services import recording_start
from signaling.selectors import media_worker_pick

from . import notify
from .errors import Conflict, Forbidden, MediaUnavailable, NotFound
from .models import (
    OPEN_CALL_STATUSES,
    Business,
    Call,
    CallEvent,
    CallEventKind,
    CallStatus,
    Offer,
    OfferStatus,
    PresenceStatus,
    TellerPresence,
)

log = logging.getLogger(__name__)


def call_event_record(
    *, call_id: uuid.UUID, kind: str, actor: str = "system", data: dict | None = None
) -> CallEvent:
    return CallEvent.objects.create(call_id=call_id, kind=kind, actor=actor, data=data or {})


def call_enqueue(
    *,
    business_key: str,
    channel: str = "web",
    language: str = "zh",
    customer_ip: str | None = None,
) -> Call:
    business = Business.objects.filter(key=business_key, active=True).first()
    if business is None:
        raise NotFound(f"Unknown business {business_key!r}.")
    with transaction.atomic():
        call = Call.objects.create(
            business=business, channel=channel, language=language, customer_ip=customer_ip
        )
        call_event_record(
            call_id=call.id,
            kind=CallEventKind.ENQUEUED,
            actor="customer",
            data={"business": business.key, "channel": channel},
        )
        notify.queue_changed_on_commit()
    log.info("call %s enqueued for %s via %s", call.id, business.key, channel)
    return call


def teller_presence_set(*, teller: AbstractBaseUser, status: str) -> TellerPresence:
    if status not in (PresenceStatus.AVAILABLE, PresenceStatus.OFFLINE):
        raise Conflict(f"A teller cannot set presence {status!r} directly.")
    with transaction.atomic():
        presence, _ = TellerPresence.objects.select_for_update().get_or_create(teller=teller)
        if presence.status in (PresenceStatus.BUSY, PresenceStatus.OFFERED):
            raise Conflict("Finish the current call before changing presence.")
        if presence.status != status:
            presence.status = status
            presence.since = timezone.now()
            presence.save(update_fields=["status", "since"])
        notify.forward_on_commit(notify.teller_group(teller.pk), "presence", status=status)
    return presence


def call_offer(*, call_id: uuid.UUID, teller: AbstractBaseUser) -> Offer:
    """Offer a waiting call to an available teller; both move to *offered* atomically."""
    with transaction.atomic():
        presence = TellerPresence.objects.select_for_update().filter(teller=teller).first()
        if presence is None or presence.status != PresenceStatus.AVAILABLE:
            raise Conflict("Go available before taking a call.")
        # Conditional update: the winner of a race flips the status, the loser sees 0 rows.
        moved = Call.objects.filter(pk=call_id, status=CallStatus.WAITING).update(
            status=CallStatus.OFFERED
        )
        if not moved:
            if not Call.objects.filter(pk=call_id).exists():
                raise NotFound("No such call.")
            raise Conflict("The call is no longer waiting.")
        presence.status = PresenceStatus.OFFERED
        presence.since = timezone.now()
        presence.current_call_id = call_id
        presence.save(update_fields=["status", "since", "current_call"])
        offer = Offer.objects.create(call_id=call_id, teller=teller)
        call_event_record(
            call_id=call_id, kind=CallEventKind.OFFERED, data={"teller": teller.get_username()}
        )
        notify.queue_changed_on_commit()
    return offer


def offer_accept(*, offer_id: int, teller: AbstractBaseUser) -> Call:
    """The teller takes the offered call: it connects, gets a media worker and a recording."""
    with transaction.atomic():
        offer = Offer.objects.select_for_update().filter(pk=offer_id).first()
        if offer is None:
            raise NotFound("No such offer.")
        if offer.teller_id != teller.pk:
            raise Forbidden("This offer was made to another teller.")
        if offer.status != OfferStatus.PENDING:
            raise Conflict(f"The offer is {offer.status}.")
        worker = media_worker_pick()
        if worker is None:
            raise MediaUnavailable("No media worker is running; the call stays in the queue.")
        now = timezone.now()
        moved = Call.objects.filter(pk=offer.call_id, status=CallStatus.OFFERED).update(
            status=CallStatus.CONNECTED,
            teller=teller,
            answered_at=now,
            media_channel=worker.channel_name,
        )
        if not moved:
            raise Conflict("The call is no longer on offer.")
        offer.status = OfferStatus.ACCEPTED
        offer.responded_at = now
        offer.save(update_fields=["status", "responded_at"])
        TellerPresence.objects.filter(teller=teller).update(
            status=PresenceStatus.BUSY, since=now, current_call_id=offer.call_id
        )
        call = Call.objects.select_related("business").get(pk=offer.call_id)
        call_event_record(
            call_id=call.id,
            kind=CallEventKind.ANSWERED,
            actor=f"teller:{teller.pk}",
            data={"teller": teller.get_username()},
        )
        recording_start(call=call)
        notify.forward_on_commit(notify.call_group(call.id), "call.answered", call_id=str(call.id))
        notify.forward_on_commit(notify.teller_group(teller.pk), "presence", status="busy")
    log.info("call %s answered by teller %s", call.id, teller.pk)
    return call


def call_claim(*, call_id: uuid.UUID, teller: AbstractBaseUser) -> Call:
    """A teller picks a waiting call from the list: offer and accept in one step."""
    with transaction.atomic():
        offer = call_offer(call_id=call_id, teller=teller)
        return offer_accept(offer_id=offer.pk, teller=teller)


def call_end(*, call_id: uuid.UUID, actor: str, reason: str) -> Call:
    """Hang up or abandon. Idempotent: ending an ended call changes nothing."""
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=call_id).first()
        if call is None:
            raise NotFound("No such call.")
        if call.status not in OPEN_CALL_STATUSES:
            return call
        was_connected = call.status == CallStatus.CONNECTED
        call.status = CallStatus.ENDED if was_connected else CallStatus.ABANDONED
        call.ended_at = timezone.now()
        call.end_reason = reason
        call.save(update_fields=["status", "ended_at", "end_reason"])
        Offer.objects.filter(call=call, status=OfferStatus.PENDING).update(
            status=OfferStatus.WITHDRAWN, responded_at=call.ended_at
        )
        # The teller goes straight back to available (wrap-up arrives with the router).
        freed = TellerPresence.objects.filter(
            current_call=call, status__in=[PresenceStatus.BUSY, PresenceStatus.OFFERED]
        ).update(status=PresenceStatus.AVAILABLE, since=call.ended_at, current_call=None)
        call_event_record(
            call_id=call.id,
            kind=CallEventKind.HUNG_UP if was_connected else CallEventKind.ABANDONED,
            actor=actor,
            data={"reason": reason},
        )
        notify.forward_on_commit(
            notify.call_group(call.id), "call.ended", call_id=str(call.id), reason=reason
        )
        if call.teller_id and freed:
            notify.forward_on_commit(
                notify.teller_group(call.teller_id), "presence", status="available"
            )
        if call.media_channel:
            media_channel = call.media_channel
            transaction.on_commit(
                lambda: notify.channel_send_now(
                    media_channel, {"type": "media.hangup", "call_id": str(call.id)}
                )
            )
        notify.queue_changed_on_commit()
    log.info("call %s %s (%s)", call.id, call.status, reason)
    return call


def access_call_for_teller(*, call_id: uuid.UUID, teller: AbstractBaseUser) -> Call:
    """The call, if this teller holds it; otherwise Forbidden. Used for every call-scoped move."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None or call.teller_id != teller.pk:
        raise Forbidden("This call is not assigned to you.")
    return call
