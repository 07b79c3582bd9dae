"""Reads of recordings."""

import uuid

from django.db.models import QuerySet

from queueing.models import CallEvent
from recordings.models import Recording, RecordingSegment


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


def recording_segments(recording: Recording, *, side: str | None = None) -> QuerySet:
    segments = RecordingSegment.objects.filter(recording=recording)
    if side is not None:
        segments = segments.filter(side=side)
    return segments.order_by("side", "index")


def recording_timeline(recording: Recording) -> list[dict]:
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
