"""Writes and transitions of recordings."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from queueing.models import Call, CallEvent, CallEventKind
from recordings.backends.keys import get_key_backend
from recordings.crypto import new_data_key
from recordings.models import Recording, RecordingAccess, RecordingSegment, RecordingStatus

if TYPE_CHECKING:
    from recordings.writer import SegmentInfo


class RecordingError(Exception):
    """A recording write that is not allowed in the recording's current state."""


def recording_start(*, call: Call) -> Recording:
    """Create the call's recording with a fresh, wrapped data key; returns the existing one."""
    with transaction.atomic():
        # Lock the call so two media workers starting at once create one recording.
        Call.objects.select_for_update().get(pk=call.pk)
        existing = Recording.objects.filter(call_id=call.pk).first()
        if existing is not None:
            return existing
        key_id, wrapped = get_key_backend().wrap(new_data_key())
        recording = Recording.objects.create(
            call_id=call.pk,
            key_id=key_id,
            wrapped_key=wrapped,
            started_at=timezone.now(),
            status=RecordingStatus.RECORDING,
        )
        CallEvent.objects.create(
            call_id=call.pk,
            kind=CallEventKind.RECORDING_STARTED,
            actor="system",
            data={"recording_id": str(recording.id)},
        )
    return recording


def recording_data_key(*, recording: Recording) -> bytes:
    return get_key_backend().unwrap(recording.key_id, bytes(recording.wrapped_key))


def recording_mark_started(*, recording_id: uuid.UUID, started_at: datetime) -> Recording:
    """Move the recording clock's origin to when media actually began (the writers' t0)."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        if recording.status != RecordingStatus.RECORDING:
            raise RecordingError(f"recording {recording_id} is {recording.status}, not recording")
        if recording.started_at != started_at:
            recording.started_at = started_at
            recording.save(update_fields=["started_at"])
    return recording


def recording_segment_add(*, recording_id: uuid.UUID, info: SegmentInfo) -> RecordingSegment:
    """Register a sealed segment file; adding the same segment again returns the existing row."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        existing = RecordingSegment.objects.filter(
            recording=recording, side=info.side, index=info.index
        ).first()
        if existing is not None:
            if existing.sha256 != info.sha256:
                raise RecordingError(
                    f"segment {info.side}:{info.index} of recording {recording_id} is already "
                    f"registered with another hash"
                )
            return existing
        if recording.status != RecordingStatus.RECORDING:
            raise RecordingError(
                f"recording {recording_id} is {recording.status}: segment "
                f"{info.side}:{info.index} arrived too late"
            )
        return RecordingSegment.objects.create(
            recording=recording,
            side=info.side,
            index=info.index,
            path=info.path,
            start_ms=info.start_ms,
            duration_ms=info.duration_ms,
            size=info.size,
            sha256=info.sha256,
            video_frames=info.video_frames,
            audio_frames=info.audio_frames,
        )


def recording_manifest_sha256(segments: Iterable[RecordingSegment]) -> str:
    """SHA-256 over "side:index:sha256\\n" lines in (side, index) order."""
    ordered = sorted(segments, key=lambda s: (s.side, s.index))
    digest = hashlib.sha256()
    for segment in ordered:
        digest.update(f"{segment.side}:{segment.index}:{segment.sha256}\n".encode())
    return digest.hexdigest()


def recording_finalise(*, recording_id: uuid.UUID) -> Recording:
    """Seal the list of segments with a manifest hash; finalising twice changes nothing."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        if recording.status == RecordingStatus.FINALISED:
            return recording
        segments = list(recording.segments.all())
        recording.manifest_sha256 = recording_manifest_sha256(segments)
        recording.status = RecordingStatus.FINALISED
        recording.ended_at = timezone.now()
        recording.save(update_fields=["manifest_sha256", "status", "ended_at"])
        CallEvent.objects.create(
            call_id=recording.call_id,
            kind=CallEventKind.RECORDING_FINALISED,
            actor="system",
            data={
                "recording_id": str(recording.id),
                "segments": len(segments),
                "manifest_sha256": recording.manifest_sha256,
            },
        )
    return recording


def recording_access_log(
    *,
    recording: Recording,
    actor: str,
    action: str,
    user=None,
    detail: dict | None = None,
) -> RecordingAccess:
    return RecordingAccess.objects.create(
        recording=recording, actor=actor, action=action, user=user, detail=detail or {}
    )
