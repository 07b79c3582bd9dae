"""Writes and transitions of recordings."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import OperationalError, close_old_connections, connections, transaction
from django.utils import timezone

from queueing.models import OPEN_CALL_STATUSES, Call, CallEvent, CallEventKind, MediaWorker
from queueing.services import call_lock
from recordings.crypto import (
    SegmentIntegrityError,
    manifest_key,
    new_data_key,
    open_sealed,
    segment_aad,
)
from recordings.manifest import (
    SIDE_WORDS,
    Entry,
    Finding,
    manifest_build,
    manifest_sign,
    sequence_gaps,
)
from recordings.models import (
    Recording,
    RecordingAccess,
    RecordingSegment,
    RecordingStatus,
    Side,
)
from recordings.writer import (
    SegmentInfo,
    SideRecorder,
    segment_files_unregistered,
    segment_probe,
    segment_relpath,
)
from videobank.keys import get_key_backend

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

SEALED_KINDS = (CallEventKind.RECORDING_FINALISED, CallEventKind.RECORDING_INCOMPLETE)


class RecordingError(Exception):
    """A recording write that is not allowed in the recording's current state."""


def recording_start(*, call_id: uuid.UUID) -> Recording:
    """Create the call's recording with a fresh, wrapped data key; returns the existing one.
    Listens to ``events.CallAnswered``: inside the transaction that connects the call."""
    with transaction.atomic():
        # Lock the call so two media workers starting at once create one recording.
        if call_lock(call_id) is None:
            raise Call.DoesNotExist(call_id)
        existing = Recording.objects.filter(call_id=call_id).first()
        if existing is not None:
            return existing
        key_id, wrapped = get_key_backend().wrap(new_data_key())
        recording = Recording.objects.create(
            call_id=call_id,
            key_id=key_id,
            wrapped_key=wrapped,
            started_at=timezone.now(),
            status=RecordingStatus.RECORDING,
        )
        CallEvent.objects.create(
            call_id=call_id,
            kind=CallEventKind.RECORDING_STARTED,
            actor="system",
            data={"recording_id": str(recording.id)},
        )
    return recording


def recording_data_key(*, recording: Recording) -> bytes:
    return get_key_backend().unwrap(recording.key_id, bytes(recording.wrapped_key))


SEGMENT_DB_ATTEMPTS = 5


def recording_recorder(
    *, recording_id: uuid.UUID, side: str, data_key: bytes, t0: float, **options: Any
) -> SideRecorder:
    """A recorder of one side whose sealed segments are registered here as they are made, from
    the recorder's own thread (which closes its database connections when it ends)."""
    return SideRecorder(
        recording_id=recording_id,
        side=side,
        data_key=data_key,
        t0=t0,
        on_segment=_segment_registrar(uuid.UUID(str(recording_id))),
        on_thread_end=connections.close_all,
        **options,
    )


def _segment_registrar(recording_id: uuid.UUID) -> Callable[[SegmentInfo], None]:
    def on_segment(info: SegmentInfo) -> None:
        for attempt in range(SEGMENT_DB_ATTEMPTS):
            close_old_connections()
            try:
                recording_segment_add(recording_id=recording_id, info=info)
                return
            except OperationalError:
                # Transient: SQLite's "database is locked" when both sides' recorders register
                # a segment at once, a dropped Postgres connection. The service is idempotent.
                if attempt == SEGMENT_DB_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2**attempt)  # this recorder's own thread, never the loop
            finally:
                close_old_connections()

    return on_segment


def recording_mark_started(*, recording_id: uuid.UUID, started_at: datetime) -> Recording:
    """Fix the recording clock's origin at when media actually began (the writers' t0), once: a
    session resumed later (on another media worker, after the first one died or the call moved)
    gets the recording back with the origin unchanged and continues on that one clock."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        if recording.status != RecordingStatus.RECORDING:
            raise RecordingError(f"recording {recording_id} is {recording.status}, not recording")
        if not recording.clock_fixed:
            recording.started_at = started_at
            recording.clock_fixed = True
            recording.save(update_fields=["started_at", "clock_fixed"])
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


def recording_sealed_event(recording: Recording) -> CallEvent | None:
    """The timeline's record that this recording was sealed, if it ever was."""
    return (
        CallEvent.objects.filter(
            call_id=recording.call_id,
            kind__in=SEALED_KINDS,
            data__recording_id=str(recording.id),
        )
        .order_by("at", "id")
        .first()
    )


def _adopt_unregistered(recording: Recording, data_key: bytes) -> list[Finding]:
    """Give a row to each sealed segment file whose row never reached the database (its writer
    died between sealing and registering), if it opens under the recording's key in its own
    slot; a file that does not is left out and named. Caller holds the recording's row lock."""
    root = Path(settings.RECORDING_DIR)
    directory = root / str(recording.id)
    known = set(recording.segments.values_list("side", "index"))
    refused: list[Finding] = []
    for side, index, name in segment_files_unregistered(recording.id, root, known, Side.values):
        blob = (directory / name).read_bytes()
        try:
            plaintext = open_sealed(data_key, blob, segment_aad(recording.id, side, index))
            probe = segment_probe(plaintext)
        except (SegmentIntegrityError, OSError, ValueError) as exc:
            log.warning("recording %s: %s not adopted: %s", recording.id, name, exc)
            refused.append(
                Finding(
                    f"{name} failed authentication and was left out",
                    f"{name} 未通过认证，未纳入录像",
                )
            )
            continue
        RecordingSegment.objects.create(
            recording=recording,
            side=side,
            index=index,
            path=segment_relpath(recording.id, side, index),
            size=len(blob),
            sha256=hashlib.sha256(blob).hexdigest(),
            **probe,
        )
        log.info("recording %s: adopted %s (sealed, never registered)", recording.id, name)
    return refused


def recording_finalise(*, recording_id: uuid.UUID, incomplete: Finding | None = None) -> Recording:
    """Seal the recording: adopt authentic segment files that never got a row, then store the
    keyed manifest of every segment (see recordings/manifest.py). ``incomplete`` says why the
    recording lacks part of the call (the sweeper's reason); a segment index that never reached
    storage also makes it incomplete. Finalising twice changes nothing; a recording whose seal
    was removed (its timeline says it was sealed) is never sealed again."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        if recording.status == RecordingStatus.FINALISED:
            return recording
        sealed = recording_sealed_event(recording)
        if sealed is not None:
            raise RecordingError(
                f"recording {recording_id} was sealed at {sealed.at.isoformat()} and its seal is "
                f"gone: it is not sealed again (export and replay refuse it)"
            )
        data_key = recording_data_key(recording=recording)
        reasons = [incomplete] if incomplete is not None else []
        reasons += _adopt_unregistered(recording, data_key)
        segments = list(recording.segments.all())
        entries = [Entry(s.side, s.index, s.sha256, s.start_ms, s.duration_ms) for s in segments]
        for side, missing in sequence_gaps(entries).items():
            en, zh = SIDE_WORDS[side]
            reasons.append(
                Finding(
                    f"{en}: segment(s) {', '.join(map(str, missing))} never reached storage",
                    f"{zh}：第 {', '.join(map(str, missing))} 段未能存储",
                )
            )
        reason = (
            {"en": "; ".join(r.en for r in reasons), "zh": "；".join(r.zh for r in reasons)}
            if reasons
            else {}
        )
        recording.ended_at = timezone.now()
        recording.manifest = manifest_build(
            recording_id=str(recording.id),
            call_id=str(recording.call_id),
            started_at=recording.started_at,
            ended_at=recording.ended_at,
            entries=entries,
            incomplete_reason=reason,
        )
        recording.manifest_hmac = manifest_sign(manifest_key(data_key), recording.manifest)
        recording.manifest_sha256 = recording_manifest_sha256(segments)
        recording.incomplete = bool(reason)
        recording.incomplete_reason = reason
        recording.status = RecordingStatus.FINALISED
        recording.save(
            update_fields=[
                "manifest",
                "manifest_hmac",
                "manifest_sha256",
                "incomplete",
                "incomplete_reason",
                "status",
                "ended_at",
            ]
        )
        data = {
            "recording_id": str(recording.id),
            "segments": len(segments),
            "manifest_sha256": recording.manifest_sha256,
            "manifest_hmac": recording.manifest_hmac,
        }
        if reason:
            data |= {"reason": reason["en"], "reason_zh": reason["zh"]}
        CallEvent.objects.create(
            call_id=recording.call_id,
            kind=(
                CallEventKind.RECORDING_INCOMPLETE if reason else CallEventKind.RECORDING_FINALISED
            ),
            actor="system",
            data=data,
        )
    return recording


def local_time_words(moment: datetime) -> str:
    """A moment as a reviewer reads it: the bank's local time, with its zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def _sweep_reason(
    recording: Recording, workers: dict[str, MediaWorker], now: datetime
) -> Finding | None:
    """Why this open recording is to be sealed as incomplete now, or None to leave it open."""
    call = recording.call
    worker = workers.get(call.media_channel) if call.media_channel else None
    if worker is not None:
        last_seen = worker.heartbeat_at
        name = f"{worker.host}:{worker.pid}"
        dead = now - last_seen > timedelta(seconds=settings.MEDIA_WORKER_STALE_S)
    else:
        # No row: the worker unregistered (or was removed). Its last sign of life is its last
        # segment, else the recording's start.
        last_segment = recording.segments.order_by("-created_at").first()
        last_seen = last_segment.created_at if last_segment else recording.started_at
        name = call.media_channel or "(none)"
        dead = False  # a worker stopping cleanly finalises first: give it the grace below
    seen = local_time_words(last_seen)
    stopped = Finding(
        f"media worker {name} stopped at {seen}; what it had not sealed is lost",
        f"媒体服务 {name} 于 {seen} 停止，其未封存的部分已丢失",
    )
    if call.status in OPEN_CALL_STATUSES:
        # A call waiting for a new teller keeps its recording open for the next media worker;
        # only a long silence of the worker carrying it closes it.
        if now - last_seen > timedelta(seconds=settings.RECORDING_SWEEP_STALE_S):
            return stopped
        return None
    if dead:
        return stopped
    ended_at = call.ended_at or now
    grace = settings.RECORDING_SWEEP_GRACE_S
    if now - ended_at <= timedelta(seconds=grace):
        return None
    if worker is None:
        return stopped
    ended = local_time_words(ended_at)
    return Finding(
        f"the call ended at {ended} but its media worker {name} did not finalise the recording "
        f"within {grace:g} s",
        f"通话于 {ended} 结束，但媒体服务 {name} 未在 {grace:g} 秒内完成录像封存",
    )


_reopened_reported: set[uuid.UUID] = set()


def recordings_sweep() -> list[uuid.UUID]:
    """Seal as incomplete, with the reason, each recording left open by a media worker that
    died (it listens to ``events.Housekeeping`` of the queue ticker): its call ended and its
    worker is dead (heartbeat older than MEDIA_WORKER_STALE_S) or let RECORDING_SWEEP_GRACE_S
    pass, or its call is still open but its worker has been silent for RECORDING_SWEEP_STALE_S.
    A call waiting for a new teller keeps its recording open while that silence is shorter: the
    next media worker resumes it on the same clock. Returns the recordings sealed."""
    now = timezone.now()
    open_recordings = list(
        Recording.objects.filter(status=RecordingStatus.RECORDING).select_related("call")
    )
    if not open_recordings:
        return []
    channels = {r.call.media_channel for r in open_recordings if r.call.media_channel}
    workers = {w.channel_name: w for w in MediaWorker.objects.filter(channel_name__in=channels)}
    sealed: list[uuid.UUID] = []
    for recording in open_recordings:
        reason = _sweep_reason(recording, workers, now)
        if reason is None:
            continue
        if recording_sealed_event(recording) is not None:
            # Its seal was removed (status set back by hand): sealing again would bless a cut.
            if recording.id not in _reopened_reported:
                _reopened_reported.add(recording.id)
                log.error("recording %s was sealed once and reopened: left as it is", recording.id)
            continue
        try:
            recording_finalise(recording_id=recording.id, incomplete=reason)
        except Exception:
            log.exception("recording %s: the sweep could not seal it", recording.id)
            continue
        log.warning("recording %s sealed as incomplete: %s", recording.id, reason.en)
        sealed.append(recording.id)
    return sealed


def recording_access_log(
    *,
    recording: Recording,
    actor: str,
    action: str,
    user: User | None = None,
    detail: dict[str, Any] | None = None,
) -> RecordingAccess:
    return RecordingAccess.objects.create(
        recording=recording, actor=actor, action=action, user=user, detail=detail or {}
    )
