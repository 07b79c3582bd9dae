"""Reads of recordings."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import QuerySet
from django.db.models.expressions import Combinable

from queueing.models import CallEvent, Offer, OfferStatus
from recordings.models import QaReview, Recording, RecordingSegment

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


# The end of a recording's last segment (ms from its start): what it holds, even when the call
# was cut off before it could be finalised.
_MEDIA_END = models.Max(models.F("segments__start_ms") + models.F("segments__duration_ms"))


def recording_get(recording_id: uuid.UUID | str) -> Recording | None:
    return Recording.objects.filter(pk=recording_id).select_related("call").first()


def recording_for_call(call_id: uuid.UUID | str) -> Recording | None:
    return Recording.objects.filter(call_id=call_id).select_related("call").first()


def recording_find(identifier: str) -> Recording | None:
    """A recording by its own id or by its call's id."""
    try:
        key = uuid.UUID(str(identifier))
    except ValueError:
        return None
    return recording_get(key) or recording_for_call(key)


def recording_segments(
    recording: Recording, *, side: str | None = None
) -> QuerySet[RecordingSegment]:
    segments = RecordingSegment.objects.filter(recording=recording)
    if side is not None:
        segments = segments.filter(side=side)
    return segments.order_by("side", "index")


def recording_timeline(recording: Recording) -> list[dict[str, Any]]:
    """The call's events with their offset from the recording's start (may be negative)."""
    events = CallEvent.objects.filter(call_id=recording.call_id).order_by("at", "id")
    return [
        {
            "kind": event.kind,
            "actor": event.actor,
            "at": event.at.isoformat(),
            "offset_ms": round((event.at - recording.started_at).total_seconds() * 1000),
            "data": event.data,
        }
        for event in events
    ]


def recording_list(
    *,
    teller: str = "",
    business: str = "",
    day: date | None = None,
    call: str = "",
    reviewed: str = "",
    viewer: User | AnonymousUser | None = None,
) -> QuerySet[Recording]:
    """Recordings for the QA console, newest first, filtered by teller user name, business key,
    day (a date, the server's time zone), call or recording id prefix, and reviewed ("yes" /
    "no"); each carries its newest review's verdict, score and kind (review or a supervisor's
    override), and ``own_call``: whether ``viewer`` served the call as a teller (they may not
    review it)."""
    newest = QaReview.objects.filter(recording=models.OuterRef("pk")).order_by("-created_at", "-id")
    recordings = Recording.objects.select_related("call", "call__business", "call__teller")
    served: models.Q | Combinable = models.Q(pk__in=[])
    if viewer is not None and viewer.pk is not None:
        served = models.Q(call__teller_id=viewer.pk) | models.Exists(
            Offer.objects.filter(
                call_id=models.OuterRef("call_id"),
                teller_id=viewer.pk,
                status__in=(OfferStatus.ACCEPTED, OfferStatus.DROPPED),
            )
        )
    recordings = recordings.annotate(
        media_ms=_MEDIA_END,
        review_verdict=models.Subquery(newest.values("verdict")[:1]),
        review_score=models.Subquery(newest.values("score")[:1]),
        review_kind=models.Subquery(newest.values("kind")[:1]),
        # CASE, not the bare condition: a call without a teller would make it NULL.
        own_call=models.Case(
            models.When(served, then=models.Value(True)),
            default=models.Value(False),
            output_field=models.BooleanField(),
        ),
    )
    if reviewed == "yes":
        recordings = recordings.filter(review_verdict__isnull=False)
    elif reviewed == "no":
        recordings = recordings.filter(review_verdict__isnull=True)
    if teller:
        recordings = recordings.filter(call__teller__username=teller)
    if business:
        recordings = recordings.filter(call__business__key=business)
    if day is not None:
        recordings = recordings.filter(started_at__date=day)
    if call:
        prefix = call.strip().lower()
        recordings = recordings.filter(
            models.Q(call__id__startswith=prefix) | models.Q(id__startswith=prefix)
        )
    return recordings.order_by("-started_at")


def recording_media_ms(recording: Recording) -> int | None:
    """How much the recording holds: the end of its last segment, in ms from its start."""
    end: int | None = Recording.objects.filter(pk=recording.pk).aggregate(end=_MEDIA_END)["end"]
    return end
