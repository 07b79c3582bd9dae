from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils import timezone

from .models import Business, Call, CallStatus


def business_list(*, active_only: bool = True) -> list[Business]:
    qs = Business.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    return list(qs)


def waiting_calls() -> list[Call]:
    return list(
        Call.objects.filter(status=CallStatus.WAITING)
        .select_related("business")
        .order_by("enqueued_at", "id")
    )


@dataclass(frozen=True)
class QueuePlace:
    call_id: uuid.UUID
    position: int  # 1 = next for its business
    waiting: int  # calls waiting for that business


def queue_places() -> list[QueuePlace]:
    """First-come-first-served position of every waiting call within its business."""
    per_business: dict[int, list[uuid.UUID]] = {}
    for call_id, business_id in (
        Call.objects.filter(status=CallStatus.WAITING)
        .order_by("enqueued_at", "id")
        .values_list("id", "business_id")
    ):
        per_business.setdefault(business_id, []).append(call_id)
    return [
        QueuePlace(call_id=call_id, position=i + 1, waiting=len(ids))
        for ids in per_business.values()
        for i, call_id in enumerate(ids)
    ]


def queue_place(*, call_id: uuid.UUID) -> QueuePlace | None:
    return next((p for p in queue_places() if p.call_id == call_id), None)


def queue_snapshot() -> list[dict]:
    """What a teller console lists: the waiting calls, oldest first."""
    now = timezone.now()
    return [
        {
            "call_id": str(call.id),
            "business": call.business.key,
            "business_name": {"zh": call.business.name_zh, "en": call.business.name_en},
            "channel": call.channel,
            "language": call.language,
            "waited_s": int((now - call.enqueued_at).total_seconds()),
        }
        for call in waiting_calls()
    ]


def call_get(*, call_id: uuid.UUID) -> Call | None:
    return Call.objects.select_related("business", "teller").filter(pk=call_id).first()
