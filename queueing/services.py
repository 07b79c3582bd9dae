"""Queue transitions. Each is one atomic service that checks the current state.

Routing (which call goes to which teller) is the policy in ``routing.py``; ``queue_route`` applies
its decisions under one lock so that server processes never offer a call twice or give a teller
two calls. ``queue_tick`` moves time-driven rules: offer timeouts, end of wrap-up, callback offers,
relaxation steps. Every service that frees a teller or queues a call routes afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from videobank import events, media_contract

from . import clock, notify, routing, selectors
from .errors import Conflict, Forbidden, MediaUnavailable, NotFound, QueueFull, RateLimited
from .models import (
    OPEN_CALL_STATUSES,
    Business,
    Call,
    CallbackRequest,
    CallEvent,
    CallEventKind,
    CallStatus,
    MediaWorker,
    Offer,
    OfferStatus,
    PresenceStatus,
    Priority,
    PriorityClaim,
    Skill,
    TellerPresence,
    TellerProfile,
    TellerSkill,
)

log = logging.getLogger(__name__)

ROUTING_LOCK_ID = 0x7642_0001  # pg advisory lock key of the router


def call_lock(call_id: uuid.UUID) -> Call | None:
    """The call's row, locked until this transaction ends; None when there is no such call.

    Every writer locks a call through here. Two rules keep concurrent writers of one call (a
    hang-up against a business step, a capture, a check's result) from deadlocking:

    - The lock is ``FOR NO KEY UPDATE`` (PostgreSQL): it does not block the ``KEY SHARE`` lock
      that inserting a row which refers to the call takes (a timeline event, a business case,
      an upload). With a plain ``FOR UPDATE``, a hang-up holding the call and waiting for a
      business case deadlocked with that case's writer recording its step on the timeline.
    - A call is locked before what belongs to it (its business cases): ``call_end`` closes the
      cases of the call it holds, and a case's writer takes the call first (workflows).
    """
    return Call.objects.select_for_update(no_key=True).filter(pk=call_id).first()


def call_event_record(
    *, call_id: uuid.UUID, kind: str, actor: str = "system", data: dict[str, Any] | None = None
) -> CallEvent:
    return CallEvent.objects.create(call_id=call_id, kind=kind, actor=actor, data=data or {})


def _routing_lock() -> None:
    """Serialise routing decisions across processes (Postgres); SQLite serialises writers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROUTING_LOCK_ID])


# --- customers ---------------------------------------------------------------------------------


def call_enqueue(
    *,
    business_key: str,
    call_id: uuid.UUID | None = None,
    channel: str = "web",
    language: str = "zh",
    priority: int = Priority.NORMAL,
    priority_claim: str = PriorityClaim.NONE,
    preferred_teller_id: int | None = None,
    customer_ip: str | None = None,
    customer_device: str = "",
    admit: bool = False,
    ip_limited: bool = True,
) -> Call:
    """Put a call in the queue and route it. ``admit``: a customer's own request, held to the
    anonymous side's limits (open calls per address and per device, the global cap on waiting
    calls) in the transaction that stores it, so that two servers cannot both let one through,
    and the caller's place is set on the call (``call.place``). The rate limits were applied
    before (``limits.call_request_admit``). ``ip_limited`` False: the device proved who it is
    (an enrolled kiosk, a bank-signed app claim), so its own limits hold and the address's do
    not (a branch's kiosks, a carrier's customers share one address)."""
    business = Business.objects.filter(key=business_key, active=True).first()
    if business is None:
        raise NotFound(f"Unknown business {business_key!r}.", f"没有 {business_key!r} 这项业务。")
    now = clock.now()
    counts = None
    with transaction.atomic():
        if admit:
            counts = _admission_check(
                customer_ip=customer_ip if ip_limited else None,
                customer_device=customer_device,
                business_id=business.pk,
                priority=priority,
            )
        call = Call.objects.create(
            id=call_id or uuid.uuid4(),
            business=business,
            channel=channel,
            language=language,
            priority=priority,
            priority_claim=priority_claim,
            preferred_teller_id=preferred_teller_id,
            preferred_until=(
                now + timedelta(seconds=settings.QUEUE_PREFER_SAME_TELLER_S)
                if preferred_teller_id
                else None
            ),
            customer_ip=customer_ip,
            customer_device=customer_device,
            enqueued_at=now,
        )
        data = {"business": business.key, "channel": channel, "priority": priority}
        if priority_claim:
            data["priority_claim"] = priority_claim
        call_event_record(call_id=call.id, kind=CallEventKind.ENQUEUED, actor="customer", data=data)
        notify.queue_changed_on_commit()
        # Routed in the same transaction: one commit for the arrival and its offer, if any.
        offer = queue_route_arrival(call=call)
    log.info("call %s enqueued for %s via %s", call.id, business.key, channel)
    if counts is not None:
        # The caller's place, from the counts taken on the way in (no second pass): the
        # newcomer comes after every call of its business of its priority or higher.
        of_business, ahead, staffed = counts
        call.place = (
            selectors.QueuePlace(call.id, 1, 1, 0)
            if offer is not None
            else selectors.place_of(
                call_id=call.id,
                business_id=business.pk,
                position=ahead + 1,
                waiting=of_business + 1,
                staffed=staffed,
            )
        )
    return call


OPEN_CALLS_LOCK_SALT = "videobank-open-calls:"

_ADMISSION_SQL = """
SELECT
  (SELECT count(*) FROM (SELECT 1 FROM queueing_call
     WHERE customer_ip = %(ip)s AND status IN (%(waiting)s, %(offered)s, %(connected)s)
     LIMIT %(per_ip)s) AS a),
  (SELECT count(*) FROM (SELECT 1 FROM queueing_call
     WHERE customer_device = %(device)s AND customer_device <> ''
       AND status IN (%(waiting)s, %(offered)s, %(connected)s)
     LIMIT %(per_device)s) AS b),
  count(*),
  count(*) FILTER (WHERE w.business_id = %(business)s),
  count(*) FILTER (WHERE w.business_id = %(business)s AND w.priority >= %(priority)s),
  (SELECT count(*) FROM queueing_tellerpresence WHERE status <> %(offline)s)
FROM (SELECT business_id, priority FROM queueing_call WHERE status = %(waiting)s
      LIMIT %(cap)s) AS w
"""
NO_CAP = 2**31 - 1


def _admission_check(
    *, customer_ip: str | None, customer_device: str, business_id: int, priority: int
) -> tuple[int, int, int]:
    """Refuse (in words) a customer's call beyond the open calls allowed per address and per
    device, or beyond the global cap. One statement; each count stops at its limit (it looks at
    no more index entries than that), and the pass over the waiting calls that the cap needs
    also counts the newcomer's place: (calls of its business waiting, those served before a
    newcomer of this priority, tellers logged in).

    On Postgres a transaction-scoped advisory lock per address and per device makes
    count-then-insert atomic across servers (always address, then device: no two requests wait
    on each other in opposite order); SQLite serialises writers."""
    per_ip, per_device = settings.QUEUE_OPEN_CALLS_PER_IP, settings.QUEUE_OPEN_CALLS_PER_DEVICE
    cap = settings.QUEUE_MAX_WAITING
    keys = []
    if per_ip > 0 and customer_ip:
        keys.append(f"{OPEN_CALLS_LOCK_SALT}ip:{customer_ip}")
    if per_device > 0 and customer_device:
        keys.append(f"{OPEN_CALLS_LOCK_SALT}device:{customer_device}")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and keys:
            # One round trip; the select list is evaluated left to right.
            locks = ", ".join(["pg_advisory_xact_lock(hashtext(%s))"] * len(keys))
            cursor.execute(f"SELECT {locks}", keys)  # noqa: S608 - placeholders only
        cursor.execute(
            _ADMISSION_SQL,
            {
                "ip": customer_ip,  # None: matches nothing
                "device": customer_device,
                "per_ip": max(per_ip, 0),
                "per_device": max(per_device, 0),
                "cap": cap if cap > 0 else NO_CAP,
                "business": business_id,
                "priority": priority,
                "offline": PresenceStatus.OFFLINE,
                "waiting": CallStatus.WAITING,
                "offered": CallStatus.OFFERED,
                "connected": CallStatus.CONNECTED,
            },
        )
        open_ip, open_device, waiting, of_business, ahead, staffed = cursor.fetchone()
    if per_ip > 0 and customer_ip and open_ip >= per_ip:
        raise RateLimited(
            "A call from your network is already waiting or in progress; please finish it "
            "before placing another.",
            "您所在的网络已有正在排队或进行中的通话，请结束后再呼叫。",
            limit="ip_open",
        )
    if per_device > 0 and customer_device and open_device >= per_device:
        raise RateLimited(
            "This device already has a call waiting or in progress; please finish it before "
            "placing another.",
            "本设备已有正在排队或进行中的通话，请结束后再呼叫。",
            limit="device_open",
        )
    if cap > 0 and waiting >= cap:
        raise QueueFull(
            en="All our tellers are busy and the queue is full, so the call was not placed. "
            "We can call you back instead: choose “Call me back instead”.",
            zh="柜员全忙，排队人数已满，本次呼叫未能排队。我们可以稍后给您回电：请选择“请给我回电”。",
        )
    return of_business, ahead, staffed


def callback_book(
    *,
    business_key: str,
    channel: str = "web",
    language: str = "zh",
    customer_ip: str | None = None,
    customer_device: str = "",
) -> Call:
    """A customer turned away by a full queue takes the callback offered instead: the call is
    stored as a callback request, never queued."""
    business = Business.objects.filter(key=business_key, active=True).first()
    if business is None:
        raise NotFound(f"Unknown business {business_key!r}.", f"没有 {business_key!r} 这项业务。")
    now = clock.now()
    with transaction.atomic():
        call = Call.objects.create(
            business=business,
            channel=channel,
            language=language,
            status=CallStatus.CALLBACK,
            ended_at=now,
            end_reason="callback_requested",
            customer_ip=customer_ip,
            customer_device=customer_device,
            enqueued_at=now,
        )
        CallbackRequest.objects.create(call=call)
        call_event_record(
            call_id=call.id,
            kind=CallEventKind.CALLBACK_OFFERED,
            data={"reason": "queue_full", "business": business.key},
        )
        call_event_record(call_id=call.id, kind=CallEventKind.CALLBACK_REQUESTED, actor="customer")
    log.info("callback booked for %s (queue full)", business.key)
    return call


def call_priority_claim_settle(*, call_id: uuid.UUID, birth: str) -> Call | None:
    """The identity check confirmed the card's birth date (``YYYYMMDD``): an elderly claim of
    the call is confirmed (age at least QUEUE_PRIORITY_MIN_AGE) or withdrawn (the call becomes a
    normal one), on the timeline, and the teller is told in words. Called by the identity check,
    in its transaction; a call without a claim, or a date that does not parse, is left alone."""
    call = call_lock(call_id)
    checked = (PriorityClaim.CLAIMED, PriorityClaim.CONFIRMED, PriorityClaim.WITHDRAWN)
    if call is None or call.priority_claim not in checked:
        return call
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    except (TypeError, ValueError):
        return call
    today = timezone.localdate(clock.now())
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    minimum = settings.QUEUE_PRIORITY_MIN_AGE
    confirmed = age >= minimum
    claim = PriorityClaim.CONFIRMED if confirmed else PriorityClaim.WITHDRAWN
    if claim == call.priority_claim:
        return call
    call.priority_claim = claim
    call.priority = Priority.ELDERLY if confirmed else Priority.NORMAL
    call.save(update_fields=["priority_claim", "priority"])
    call_event_record(
        call_id=call.id,
        kind=CallEventKind.PRIORITY_CLAIM,
        data={"claim": claim, "min_age": minimum},
    )
    if confirmed:
        text = {
            "en": f"Elderly priority confirmed: the ID card's birth date gives age {age}.",
            "zh": f"老年优先已核实：身份证出生日期显示客户 {age} 岁。",
        }
    else:
        text = {
            "en": f"Elderly priority withdrawn: the ID card's birth date gives age {age}, under "
            f"{minimum}. The call is a normal one now.",
            "zh": f"老年优先已撤销：身份证出生日期显示客户 {age} 岁，未满 {minimum} 岁，"
            "本次通话按普通客户处理。",
        }
    if call.teller_id:
        notify.forward_on_commit(
            notify.teller_group(call.teller_id),
            "call.priority",
            call_id=str(call.id),
            priority=call.priority,
            priority_claim=claim,
            text=text,
        )
    notify.queue_changed_on_commit()
    return call


def call_request_callback(*, call_id: uuid.UUID) -> Call:
    """A waiting customer prefers to be called back: the call leaves the queue as a callback."""
    now = clock.now()
    with transaction.atomic():
        moved = Call.objects.filter(pk=call_id, status=CallStatus.WAITING).update(
            status=CallStatus.CALLBACK, ended_at=now, end_reason="callback_requested"
        )
        if not moved:
            raise Conflict(
                "Only a waiting call can become a callback.", "只有排队中的通话可以改为预约回电。"
            )
        CallbackRequest.objects.create(call_id=call_id)
        call_event_record(call_id=call_id, kind=CallEventKind.CALLBACK_REQUESTED, actor="customer")
        notify.forward_on_commit(
            notify.call_group(call_id), "call.ended", call_id=str(call_id), reason="callback"
        )
        notify.queue_changed_on_commit()
    return Call.objects.get(pk=call_id)


# --- tellers -----------------------------------------------------------------------------------


def teller_profile_set(
    *,
    teller: User,
    skills: dict[str, int],
    languages: Iterable[str] = ("zh", "en"),
    channels: Iterable[str] = ("web", "app", "vtm"),
    groups: Iterable[str] = (),
) -> TellerProfile:
    """What a teller can take: skill levels, languages, channels, teller groups."""
    with transaction.atomic():
        profile, _ = TellerProfile.objects.update_or_create(
            teller=teller,
            defaults={
                "languages": list(languages),
                "channels": list(channels),
                "groups": list(groups),
            },
        )
        TellerSkill.objects.filter(teller=teller).delete()
        for key, level in skills.items():
            TellerSkill.objects.create(teller=teller, skill=Skill.objects.get(key=key), level=level)
    return profile


TELLER_SETTABLE = {PresenceStatus.AVAILABLE, PresenceStatus.OFFLINE, PresenceStatus.BREAK}


def teller_presence_set(
    *, teller: User, status: str, reason: str = "", by: User | None = None
) -> TellerPresence:
    """A teller (or a supervisor, ``by``) changes presence: available, offline, break."""
    if status not in TELLER_SETTABLE:
        raise Conflict(
            f"Presence {status!r} cannot be set directly.", f"接听状态 {status!r} 不能直接设置。"
        )
    now = clock.now()
    if status == PresenceStatus.AVAILABLE:
        presence = _teller_becomes_available(teller=teller, now=now, by=by)
        if presence is not None:
            return presence
    with transaction.atomic():
        presence, _ = TellerPresence.objects.select_for_update().get_or_create(
            teller=teller, defaults={"idle_since": now}
        )
        if presence.status in (PresenceStatus.BUSY, PresenceStatus.OFFERED):
            raise Conflict(
                "Finish or decline the current call before changing presence.",
                "请先结束或拒接当前通话，再更改接听状态。",
            )
        if presence.status != status:
            presence.status = status
            presence.since = now
            presence.break_reason = reason if status == PresenceStatus.BREAK else ""
            presence.wrap_up_until = None
            if status == PresenceStatus.AVAILABLE:
                presence.idle_since = now
                presence.missed_offers = 0
            presence.save()
        presence.teller = teller  # for the notice's user name, without a query
        notify.presence_on_commit(presence, by=by)
        if status == PresenceStatus.AVAILABLE:
            # In the same transaction: the offer leaves with the same commit, one round trip.
            queue_route(teller_freed=True)
    return presence


def _teller_becomes_available(
    *, teller: User, now: datetime, by: User | None
) -> TellerPresence | None:
    """The hot path of "a teller frees" (the offer latency a teller waits): one conditional
    UPDATE instead of a locked read and a write, then routing in the same transaction. None when
    the move is not a plain one (no presence row yet, already available, busy or ringing): the
    general path then decides."""
    with transaction.atomic():
        moved = _presence_to_available(teller_id=teller.pk, now=now)
        if not moved:
            return None
        presence = TellerPresence(
            teller=teller, status=PresenceStatus.AVAILABLE, since=now, idle_since=now
        )
        notify.presence_on_commit(presence, by=by)
        queue_route(teller_freed=True)
    return TellerPresence.objects.get(teller=teller)


def _presence_to_available(*, teller_id: int, now: datetime) -> int:
    """Rows moved offline/break/wrap-up → available (0 or 1). On Postgres a plain statement:
    this is the first round trip of the offer path."""
    movable = [PresenceStatus.OFFLINE, PresenceStatus.BREAK, PresenceStatus.WRAP_UP]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE queueing_tellerpresence SET status = %s, since = %s, idle_since = %s, "
                "break_reason = '', wrap_up_until = NULL, missed_offers = 0 "
                "WHERE teller_id = %s AND status = ANY(%s)",
                [PresenceStatus.AVAILABLE, now, now, teller_id, movable],
            )
            moved: int = cursor.rowcount
            return moved
    return TellerPresence.objects.filter(teller_id=teller_id, status__in=movable).update(
        status=PresenceStatus.AVAILABLE,
        since=now,
        idle_since=now,
        break_reason="",
        wrap_up_until=None,
        missed_offers=0,
    )


def _pending_offer(*, call_id: uuid.UUID, teller: User) -> Offer:
    """The teller's ringing offer of this call, locked; refused in words otherwise."""
    offer = (
        Offer.objects.select_for_update()
        .filter(call_id=call_id, teller=teller, status=OfferStatus.PENDING)
        .first()
    )
    if offer is None:
        if Offer.objects.filter(call_id=call_id, status=OfferStatus.PENDING).exists():
            raise Forbidden("This call is offered to another teller.", "该通话已分配给其他柜员。")
        raise Conflict(
            "There is no offer of this call for you (it expired or was taken).",
            "没有分配给您的该通话（已超时或已被接听）。",
        )
    return offer


def offer_accept(*, call_id: uuid.UUID, teller: User) -> Call:
    """The ringing teller answers: the call connects, gets a media worker and a recording."""
    now = clock.now()
    with transaction.atomic():
        offer = _pending_offer(call_id=call_id, teller=teller)
        call = call_lock(call_id)
        assert call is not None  # the pending offer refers to it
        media_channel = (
            call.media_channel if selectors.media_worker_alive(call.media_channel) else ""
        )
        if not media_channel:
            worker = selectors.media_worker_pick()
            if worker is None:
                raise MediaUnavailable(
                    "No media worker is running; the call stays in the queue.",
                    "视频服务暂不可用，该通话仍在排队。",
                )
            media_channel = worker.channel_name
        moved = Call.objects.filter(pk=call_id, status=CallStatus.OFFERED).update(
            status=CallStatus.CONNECTED,
            teller=teller,
            answered_at=call.answered_at or now,
            media_channel=media_channel,
        )
        if not moved:
            raise Conflict("The call is no longer on offer.", "该通话已不再等待接听。")
        offer.status = OfferStatus.ACCEPTED
        offer.responded_at = now
        offer.save(update_fields=["status", "responded_at"])
        TellerPresence.objects.filter(teller=teller).update(
            status=PresenceStatus.BUSY, since=now, current_call_id=call_id, missed_offers=0
        )
        call = Call.objects.select_related("business").get(pk=call_id)
        call_event_record(
            call_id=call.id,
            kind=CallEventKind.ANSWERED,
            actor=f"teller:{teller.pk}",
            data={"teller": teller.get_username()},
        )
        events.emit(events.CallAnswered(call_id=call.id))  # recordings starts the recording
        notify.forward_on_commit(notify.call_group(call.id), "call.answered", call_id=str(call.id))
        notify.forward_on_commit(notify.teller_group(teller.pk), "presence", status="busy")
    log.info("call %s answered by teller %s", call.id, teller.pk)
    return call


def offer_reject(*, call_id: uuid.UUID, teller: User) -> None:
    """The ringing teller declines: the call goes back to the queue and is offered elsewhere."""
    now = clock.now()
    with transaction.atomic():
        offer = _pending_offer(call_id=call_id, teller=teller)
        _offer_close(offer, status=OfferStatus.REJECTED, now=now)
        TellerPresence.objects.filter(teller=teller, status=PresenceStatus.OFFERED).update(
            status=PresenceStatus.AVAILABLE, since=now, current_call=None
        )
        notify.forward_on_commit(notify.teller_group(teller.pk), "presence", status="available")
    queue_route()


def _offer_close(offer: Offer, *, status: str, now: datetime) -> None:
    """Close a pending offer and put its call back in the queue."""
    offer.status = status
    offer.responded_at = now
    offer.save(update_fields=["status", "responded_at"])
    Call.objects.filter(pk=offer.call_id, status=CallStatus.OFFERED).update(
        status=CallStatus.WAITING
    )
    kind = (
        CallEventKind.OFFER_REJECTED
        if status == OfferStatus.REJECTED
        else (CallEventKind.OFFER_EXPIRED)
    )
    call_event_record(call_id=offer.call_id, kind=kind, data={"teller": offer.teller_id})
    notify.forward_on_commit(
        notify.teller_group(offer.teller_id), "offer.withdrawn", call_id=str(offer.call_id)
    )
    notify.queue_changed_on_commit()


def call_end(*, call_id: uuid.UUID, actor: str, reason: str) -> Call:
    """Hang up or abandon. Idempotent: ending an ended call changes nothing."""
    now = clock.now()
    with transaction.atomic():
        call = call_lock(call_id)
        if call is None:
            raise NotFound("No such call.", "没有这个通话。")
        if call.status not in OPEN_CALL_STATUSES:
            return call
        was_connected = call.status == CallStatus.CONNECTED
        call.status = CallStatus.ENDED if was_connected else CallStatus.ABANDONED
        call.ended_at = now
        call.end_reason = reason
        call.save(update_fields=["status", "ended_at", "end_reason"])
        for offer in Offer.objects.filter(call=call, status=OfferStatus.PENDING):
            offer.status = OfferStatus.WITHDRAWN
            offer.responded_at = now
            offer.save(update_fields=["status", "responded_at"])
            TellerPresence.objects.filter(teller_id=offer.teller_id).update(
                status=PresenceStatus.AVAILABLE, since=now, current_call=None
            )
            notify.forward_on_commit(
                notify.teller_group(offer.teller_id), "offer.withdrawn", call_id=str(call.id)
            )
            notify.forward_on_commit(
                notify.teller_group(offer.teller_id), "presence", status="available"
            )
        if was_connected and call.teller_id:
            wrap_up = settings.QUEUE_WRAP_UP_S
            TellerPresence.objects.filter(teller_id=call.teller_id, current_call=call).update(
                status=PresenceStatus.WRAP_UP if wrap_up > 0 else PresenceStatus.AVAILABLE,
                since=now,
                idle_since=now,
                current_call=None,
                wrap_up_until=now + timedelta(seconds=wrap_up) if wrap_up > 0 else None,
            )
            notify.forward_on_commit(
                notify.teller_group(call.teller_id),
                "presence",
                status="wrap_up" if wrap_up > 0 else "available",
            )
        call_event_record(
            call_id=call.id,
            kind=CallEventKind.HUNG_UP if was_connected else CallEventKind.ABANDONED,
            actor=actor,
            data={"reason": reason},
        )
        notify.forward_on_commit(
            notify.call_group(call.id), "call.ended", call_id=str(call.id), reason=reason
        )
        if call.media_channel:
            notify.channel_send_on_commit(
                call.media_channel, media_contract.hangup(call_id=call.id)
            )
        notify.queue_changed_on_commit()
        # Other apps close what belonged to the call (businesses not submitted), in this
        # transaction: whoever hears "call.ended" then reads the closed state.
        events.emit(events.CallEnded(call_id=call.id))
    log.info("call %s %s (%s)", call.id, call.status, reason)
    queue_route()
    return call


def call_requeue_after_teller_drop(*, call_id: uuid.UUID, teller: User) -> Call:
    """The teller's connection dropped mid-call: the customer goes back to the head of the
    queue, keeping the same call (and so the same recording)."""
    now = clock.now()
    with transaction.atomic():
        moved = Call.objects.filter(pk=call_id, status=CallStatus.CONNECTED, teller=teller).update(
            status=CallStatus.WAITING, head=True, teller=None
        )
        if not moved:
            return Call.objects.get(pk=call_id)
        Offer.objects.filter(call_id=call_id, teller=teller, status=OfferStatus.ACCEPTED).update(
            status=OfferStatus.DROPPED, responded_at=now
        )
        TellerPresence.objects.filter(teller=teller).update(
            status=PresenceStatus.OFFLINE, since=now, current_call=None
        )
        call_event_record(
            call_id=call_id,
            kind=CallEventKind.REQUEUED,
            actor=f"teller:{teller.pk}",
            data={"reason": "teller_disconnected"},
        )
        call = Call.objects.get(pk=call_id)
        notify.forward_on_commit(
            notify.call_group(call_id), "call.requeued", call_id=str(call_id), reason="teller_lost"
        )
        if call.media_channel:
            notify.channel_send_on_commit(
                call.media_channel,
                media_contract.leg_drop(call_id=call_id, leg="teller"),
            )
        notify.queue_changed_on_commit()
    queue_route()
    return call


def call_move(*, call_id: uuid.UUID, teller: User, by: User) -> Call:
    """A supervisor sends a waiting call to a named teller (who gets it as soon as free)."""
    now = clock.now()
    with transaction.atomic():
        call = call_lock(call_id)
        if call is None:
            raise NotFound("No such call.", "没有这个通话。")
        if call.status not in (CallStatus.WAITING, CallStatus.OFFERED):
            raise Conflict("Only a waiting call can be moved.", "只有排队中的通话可以转派。")
        for offer in Offer.objects.filter(call=call, status=OfferStatus.PENDING):
            _offer_close(offer, status=OfferStatus.WITHDRAWN, now=now)
            TellerPresence.objects.filter(teller_id=offer.teller_id).update(
                status=PresenceStatus.AVAILABLE, since=now, current_call=None
            )
            notify.forward_on_commit(
                notify.teller_group(offer.teller_id), "presence", status="available"
            )
        Call.objects.filter(pk=call_id).update(
            preferred_teller=teller,
            preferred_until=now + timedelta(seconds=settings.QUEUE_PREFER_SAME_TELLER_S),
        )
        call_event_record(
            call_id=call_id,
            kind=CallEventKind.MOVED,
            actor=f"supervisor:{by.pk}",
            data={"teller": teller.get_username()},
        )
    queue_route()
    return Call.objects.get(pk=call_id)


# --- routing and time ---------------------------------------------------------------------------


def queue_route(*, now: datetime | None = None, teller_freed: bool = False) -> list[Offer]:
    """Offer waiting calls to free tellers, as the routing policy decides.

    Runs on the path of every offer (a teller frees → its console rings), so it keeps round trips
    few: one look before the lock, four reads for the snapshot, and per offer two conditional
    updates and two inserts. The caller says ``teller_freed`` when it just made a teller
    available in this transaction (no need to look for one).
    """
    now = now or clock.now()
    offers: list[Offer] = []
    # Cheap look first: most ticks find nobody waiting or nobody free, and need no lock. (A
    # teller just freed goes straight to the snapshot: there is likely work for them.)
    if not teller_freed and not (
        Call.objects.filter(status=CallStatus.WAITING).exists()
        and TellerPresence.objects.filter(status=PresenceStatus.AVAILABLE).exists()
    ):
        return offers
    # Inside a caller's transaction (a teller just freed) no savepoint: the offer commits or
    # fails with the change that made it; two round trips less on the way to the teller.
    with transaction.atomic(savepoint=False):
        _routing_lock()
        snapshot = selectors.routing_snapshot(now=now)
        if not snapshot.waiting or not snapshot.free:
            return offers
        pairs = snapshot.router.assign(snapshot.waiting, snapshot.free)
        offers = _offers_make(pairs, calls=snapshot.calls, now=now)
    return offers


def queue_route_arrival(*, call: Call, now: datetime | None = None) -> Offer | None:
    """Route one arriving call against the free tellers only: the work is proportional to the
    tellers, not to the queue (no waiting call is loaded). Correct because every change that
    frees a teller routes at once: a teller still free could take none of the calls already
    waiting, so the newcomer takes no one's turn. (What time changes, a relaxation step or an
    expired preference, waits for the ticker's full pass, at most QUEUE_TICK_S.)"""
    now = now or clock.now()
    if not TellerPresence.objects.filter(status=PresenceStatus.AVAILABLE).exists():
        return None
    with transaction.atomic(savepoint=False):
        _routing_lock()
        tellers = selectors.routing_tellers()
        free = [state for state, status in tellers if status == PresenceStatus.AVAILABLE]
        if not free:
            return None
        policies = selectors.routing_policies(needed={call.business.key})
        router = routing.Router(policies, [state for state, _ in tellers], clock.seconds(now))
        pairs = router.assign([selectors.call_state(call)], free)
        offers = _offers_make(pairs, calls={call.id: call}, now=now)
    return offers[0] if offers else None


def _offers_make(
    pairs: Iterable[tuple[routing.CallState, routing.TellerState]],
    *,
    calls: dict[uuid.UUID, Call],
    now: datetime,
) -> list[Offer]:
    """Claim and announce the router's (call, teller) pairs, under the router's lock."""
    offers: list[Offer] = []
    expires_at = now + timedelta(seconds=settings.QUEUE_OFFER_TIMEOUT_S)
    for call_state, teller_state in pairs:
        call_id = cast(uuid.UUID, call_state.id)  # the policy's ids are opaque; here, Call.id
        offer = _offer_claim(
            call_id=call_id, teller_id=teller_state.id, now=now, expires_at=expires_at
        )
        if offer is None:
            continue
        offers.append(offer)
        # The offer first: it is what the freed teller waits for (see notify's outbox).
        notify.forward_on_commit(
            notify.teller_group(offer.teller_id),
            "call.offer",
            **selectors.offer_details(offer, now=now, call=calls[call_id]),
        )
        notify.forward_on_commit(notify.teller_group(offer.teller_id), "presence", status="offered")
    if offers:
        notify.queue_changed_on_commit()
    return offers


_CLAIM_SQL = """
WITH c AS (
  UPDATE queueing_call SET status = %(offered)s WHERE id = %(call)s AND status = %(waiting)s
  RETURNING id),
p AS (
  UPDATE queueing_tellerpresence
  SET status = %(offered)s, since = %(now)s, current_call_id = %(call)s
  WHERE teller_id = %(teller)s AND status = %(available)s AND EXISTS (SELECT 1 FROM c)
  RETURNING teller_id),
o AS (
  INSERT INTO queueing_offer (call_id, teller_id, status, created_at, expires_at)
  SELECT %(call)s, teller_id, %(pending)s, %(now)s, %(expires)s FROM p
  RETURNING id),
e AS (
  INSERT INTO queueing_callevent (call_id, kind, actor, at, data)
  SELECT %(call)s, %(event)s, 'system', %(now)s, %(data)s FROM p)
SELECT (SELECT count(*) FROM c), (SELECT id FROM o)
"""


def _offer_claim(
    *, call_id: uuid.UUID, teller_id: int, now: datetime, expires_at: datetime
) -> Offer | None:
    """Claim the call and the teller for one offer, or nothing. Conditional updates instead of
    a savepoint: under the router's lock only a hang-up (call) or a presence change (teller)
    can race us, and each shows as 0 rows. On Postgres the claim, the offer and its timeline
    event are one statement (one round trip on the way to the teller)."""
    if connection.vendor == "postgresql":
        # The offer's time is taken here, inside the router's lock (``now`` was read before
        # waiting for it): an offer must never look older than the one it follows.
        now = clock.now()
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                {
                    "call": call_id,
                    "teller": teller_id,
                    "now": now,
                    "expires": expires_at,
                    "offered": CallStatus.OFFERED,
                    "waiting": CallStatus.WAITING,
                    "available": PresenceStatus.AVAILABLE,
                    "pending": OfferStatus.PENDING,
                    "event": CallEventKind.OFFERED,
                    "data": json.dumps({"teller": teller_id}),
                },
            )
            claimed_call, offer_id = cursor.fetchone()
        if offer_id is None:
            if claimed_call:  # the call was claimed but the teller was gone: put it back
                Call.objects.filter(pk=call_id, status=CallStatus.OFFERED).update(
                    status=CallStatus.WAITING
                )
            return None
        return Offer(
            id=offer_id,
            call_id=call_id,
            teller_id=teller_id,
            status=OfferStatus.PENDING,
            created_at=now,
            expires_at=expires_at,
        )
    if not Call.objects.filter(pk=call_id, status=CallStatus.WAITING).update(
        status=CallStatus.OFFERED
    ):
        return None
    if not TellerPresence.objects.filter(
        teller_id=teller_id, status=PresenceStatus.AVAILABLE
    ).update(status=PresenceStatus.OFFERED, since=now, current_call_id=call_id):
        Call.objects.filter(pk=call_id, status=CallStatus.OFFERED).update(status=CallStatus.WAITING)
        return None
    offer = Offer.objects.create(call_id=call_id, teller_id=teller_id, expires_at=expires_at)
    call_event_record(call_id=call_id, kind=CallEventKind.OFFERED, data={"teller": teller_id})
    return offer


def queue_tick(*, now: datetime | None = None) -> None:
    """Apply the rules that depend on time, then route."""
    now = now or clock.now()
    with transaction.atomic():
        for offer in Offer.objects.select_for_update(skip_locked=True).filter(
            status=OfferStatus.PENDING, expires_at__lte=now
        ):
            _offer_close(offer, status=OfferStatus.EXPIRED, now=now)
            presence = TellerPresence.objects.select_for_update().get(teller_id=offer.teller_id)
            presence.missed_offers += 1
            presence.current_call = None
            presence.since = now
            if presence.missed_offers >= settings.QUEUE_MAX_MISSED_OFFERS:
                presence.status = PresenceStatus.BREAK
                presence.break_reason = "missed_offers"
                notify.forward_on_commit(
                    notify.SUPERVISORS_GROUP,
                    "supervisor.alert",
                    kind="auto_break",
                    teller=presence.teller.get_username(),
                    missed_offers=presence.missed_offers,
                )
            else:
                presence.status = PresenceStatus.AVAILABLE
            presence.save()
            notify.presence_on_commit(presence)
        for presence in TellerPresence.objects.filter(
            status=PresenceStatus.WRAP_UP, wrap_up_until__lte=now
        ):
            presence.status = PresenceStatus.AVAILABLE
            presence.since = now
            presence.idle_since = now
            presence.wrap_up_until = None
            presence.save()
            notify.presence_on_commit(presence)
        # Only calls old enough for the shortest maximum wait: a long queue is not read whole
        # every tick.
        shortest = min(
            [
                settings.QUEUE_MAX_WAIT_S,
                *Business.objects.filter(max_wait_s__isnull=False).values_list(
                    "max_wait_s", flat=True
                ),
            ]
        )
        for call in Call.objects.filter(
            status=CallStatus.WAITING,
            callback_offered_at__isnull=True,
            enqueued_at__lte=now - timedelta(seconds=shortest),
        ).select_related("business"):
            max_wait = call.business.max_wait_s or settings.QUEUE_MAX_WAIT_S
            if (now - call.enqueued_at).total_seconds() >= max_wait and (
                Call.objects.filter(pk=call.pk, callback_offered_at__isnull=True).update(
                    callback_offered_at=now
                )
            ):
                call_event_record(call_id=call.id, kind=CallEventKind.CALLBACK_OFFERED)
                notify.forward_on_commit(
                    notify.call_group(call.id), "queue.callback_offer", call_id=str(call.id)
                )
    queue_route(now=now)


def access_call_for_teller(*, call_id: uuid.UUID, teller: User) -> Call:
    """The call, if this teller holds it; otherwise Forbidden. Used for every call-scoped move."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None or call.teller_id != teller.pk:
        raise Forbidden("This call is not assigned to you.", "该通话不是分配给您的。")
    return call


def call_leave(*, call_id: uuid.UUID, actor: str, reason: str) -> None:
    """A participant's socket closed: end (or abandon) the call if it is still open."""
    try:
        call_end(call_id=call_id, actor=actor, reason=reason)
    except NotFound:  # the call was never created (its enqueue failed)
        pass


def teller_disconnected(*, teller: User) -> None:
    """The teller's console closed: a call in progress goes back to the head of the queue, a
    ringing offer goes to the next teller, and the teller is offline."""
    presence = TellerPresence.objects.filter(teller=teller).first()
    if presence is None:
        return
    if presence.status == PresenceStatus.BUSY and presence.current_call_id:
        call_requeue_after_teller_drop(call_id=presence.current_call_id, teller=teller)
    elif presence.status == PresenceStatus.OFFERED and presence.current_call_id:
        try:
            offer_reject(call_id=presence.current_call_id, teller=teller)
        except Conflict:  # the offer expired or was withdrawn meanwhile
            pass
    presence.refresh_from_db()
    if presence.status in (PresenceStatus.AVAILABLE, PresenceStatus.WRAP_UP, PresenceStatus.BREAK):
        teller_presence_set(teller=teller, status=PresenceStatus.OFFLINE)


def teller_presence_set_by_name(
    *, username: str, status: str, reason: str, by: User
) -> TellerPresence:
    """A supervisor sets a named teller's presence."""
    return teller_presence_set(
        teller=selectors.teller_by_name(username=username), status=status, reason=reason, by=by
    )


def call_move_by_name(*, call_id: uuid.UUID, username: str, by: User) -> Call:
    return call_move(call_id=call_id, teller=selectors.teller_by_name(username=username), by=by)


# --- media workers: where calls are placed (signaling/media/ runs them) -----------------------


def media_worker_register(*, channel_name: str) -> MediaWorker:
    worker, _ = MediaWorker.objects.update_or_create(
        channel_name=channel_name,
        defaults={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "heartbeat_at": timezone.now(),
            "active_sessions": 0,
        },
    )
    return worker


def media_worker_heartbeat(*, channel_name: str, active_sessions: int) -> None:
    updated = MediaWorker.objects.filter(channel_name=channel_name).update(
        heartbeat_at=timezone.now(), active_sessions=active_sessions
    )
    if not updated:  # row was cleaned away (e.g. test flush): register again
        media_worker_register(channel_name=channel_name)
        MediaWorker.objects.filter(channel_name=channel_name).update(
            active_sessions=active_sessions
        )


def media_worker_unregister(*, channel_name: str) -> None:
    MediaWorker.objects.filter(channel_name=channel_name).delete()
