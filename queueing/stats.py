"""Service figures for the wallboard: computed from the day's calls, in the bank's time zone.

Service level (SL): calls answered within QUEUE_SERVICE_LEVEL_S ÷ calls answered.
SL2 (Asterisk's variant): (answered within T + abandoned within T) ÷ (answered + abandoned).
ASA: average speed of answer. Abandonment rate: abandoned ÷ (answered + abandoned).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from . import clock
from .models import Business, Call, CallStatus, PresenceStatus, TellerPresence


def _day_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def service_figures(calls, *, threshold_s: float) -> dict:
    answered_waits = [
        (c.answered_at - c.enqueued_at).total_seconds() for c in calls if c.answered_at
    ]
    abandoned_waits = [
        (c.ended_at - c.enqueued_at).total_seconds()
        for c in calls
        if c.status == CallStatus.ABANDONED and c.answered_at is None and c.ended_at
    ]
    answered, abandoned = len(answered_waits), len(abandoned_waits)
    within = sum(1 for w in answered_waits if w <= threshold_s)
    abandoned_within = sum(1 for w in abandoned_waits if w <= threshold_s)
    return {
        "answered": answered,
        "abandoned": abandoned,
        "service_level": round(within / answered, 4) if answered else None,
        "service_level_2": (
            round((within + abandoned_within) / (answered + abandoned), 4)
            if answered + abandoned
            else None
        ),
        "asa_s": round(sum(answered_waits) / answered, 1) if answered else None,
        "abandon_rate": round(abandoned / (answered + abandoned), 4)
        if answered + abandoned
        else None,
    }


def wallboard(*, now: datetime | None = None) -> dict:
    now = now or clock.now()
    start = _day_start(now)
    threshold = settings.QUEUE_SERVICE_LEVEL_S
    today = list(Call.objects.filter(enqueued_at__gte=start).select_related("business"))
    waiting = [c for c in today if c.status == CallStatus.WAITING] + list(
        Call.objects.filter(status=CallStatus.WAITING, enqueued_at__lt=start)
    )
    by_business = []
    for business in Business.objects.filter(active=True):
        mine = [c for c in today if c.business_id == business.pk]
        waits = [
            (now - c.enqueued_at).total_seconds() for c in waiting if c.business_id == business.pk
        ]
        by_business.append(
            {
                "business": business.key,
                "name": {"zh": business.name_zh, "en": business.name_en},
                "waiting": len(waits),
                "longest_wait_s": int(max(waits)) if waits else 0,
                **service_figures(mine, threshold_s=threshold),
            }
        )
    hours: dict[int, list[Call]] = defaultdict(list)
    for call in today:
        hours[timezone.localtime(call.enqueued_at).hour].append(call)
    presences = list(TellerPresence.objects.select_related("teller").order_by("teller__username"))
    return {
        "at": now.isoformat(),
        "threshold_s": threshold,
        "overall": {
            "waiting": len(waiting),
            "longest_wait_s": int(
                max(((now - c.enqueued_at).total_seconds() for c in waiting), default=0)
            ),
            **service_figures(today, threshold_s=threshold),
        },
        "businesses": by_business,
        "tellers_by_state": dict(Counter(p.status for p in presences)),
        "tellers": [
            {
                "teller": p.teller.get_username(),
                "status": p.status,
                "reason": p.break_reason,
                "since_s": int((now - p.since).total_seconds()),
            }
            for p in presences
            if p.status != PresenceStatus.OFFLINE or (now - p.since) < timedelta(hours=12)
        ],
        "service_level_by_hour": [
            {"hour": hour, **service_figures(calls, threshold_s=threshold)}
            for hour, calls in sorted(hours.items())
        ],
        **waiting_calls_first(now=now),
    }


def waiting_calls_first(*, now: datetime) -> dict:
    """The first QUEUE_SNAPSHOT_CALLS calls not yet answered and how many more there are: the
    frame stays the same size however long the queue."""
    listed = waiting_calls(now=now, limit=settings.QUEUE_SNAPSHOT_CALLS)
    total = Call.objects.filter(status__in=(CallStatus.WAITING, CallStatus.OFFERED)).count()
    return {"waiting_calls": listed, "waiting_calls_more": max(0, total - len(listed))}


def waiting_calls(*, now: datetime, limit: int | None = None) -> list[dict]:
    """Calls not yet answered (waiting, or ringing a teller), in service order, with what a
    supervisor needs to pick one to move."""
    calls = (
        Call.objects.filter(status__in=(CallStatus.WAITING, CallStatus.OFFERED))
        .select_related("business", "preferred_teller")
        .order_by("-priority", "-head", "enqueued_at", "id")
    )
    if limit is not None:
        calls = calls[:limit]
    return [
        {
            "call_id": str(call.id),
            "business": call.business.key,
            "business_name": {"zh": call.business.name_zh, "en": call.business.name_en},
            "status": call.status,
            "priority": call.priority,
            "priority_claim": call.priority_claim,
            "channel": call.channel,
            "waited_s": int((now - call.enqueued_at).total_seconds()),
            "preferred_teller": (
                call.preferred_teller.get_username()
                if call.preferred_teller is not None
                and call.preferred_until
                and call.preferred_until > now
                else None
            ),
        }
        for call in calls
    ]
