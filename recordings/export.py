"""Export of a recording as playable files, after verifying every segment.

Verification comes first and is complete: each segment's stored bytes must match the SHA-256
registered for it and must open under the recording's key in its own slot (AES-GCM with the slot
as AAD). A finalised recording must carry its sealed manifest, authentic under the key derived
from its data key (recordings/manifest.py), and what is stored must be exactly what was sealed:
a side cut at its start or its end, a segment missing, added or changed is refused, in words.
Only then is anything written; replay (recordings/replay.py) verifies the same way.

A recording not finalised yet is still being recorded, or its media worker died and the
recordings sweep (a queue-ticker job) has not sealed it as incomplete yet — which it does within
``RECORDING_SWEEP_GRACE_S`` of the call's end. Until then it exports what finished, with a
warning that its end cannot be verified; each side must still begin at segment 0 with no hole,
and a recording whose timeline says it was sealed once is refused (its seal was removed). A
sealed segment whose row never reached the database is taken on the strength of its
authentication tag alone, and the manifest says so; sealing adopts such files the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import av
from django.conf import settings
from django.utils import timezone

from recordings.crypto import SegmentIntegrityError, manifest_key, open_sealed, segment_aad
from recordings.evidence import evidence_for_call, evidence_open
from recordings.manifest import (
    Entry,
    Finding,
    incomplete_words,
    manifest_authentic,
    manifest_compare,
    sequence_findings,
)
from recordings.models import Recording, RecordingStatus, Side
from recordings.selectors import recording_segments, recording_timeline
from recordings.services import (
    local_time_words,
    recording_access_log,
    recording_data_key,
    recording_sealed_event,
)
from recordings.writer import segment_files_unregistered, segment_relpath
from videobank.errors import Conflict

logger = logging.getLogger(__name__)


class RecordingExportError(Conflict):
    """The recording failed verification; nothing was exported. ``str()`` says why in English,
    ``zh`` in Chinese (409)."""

    code = "not_verified"

    @classmethod
    def of(cls, findings: list[Finding]) -> RecordingExportError:
        return cls("\n".join(f.en for f in findings), "\n".join(f.zh for f in findings))


@dataclass
class _Slot:
    side: str
    index: int
    path: str  # relative to RECORDING_DIR
    sha256: str | None  # None: the file exists but was never registered
    start_ms: int | None = None
    duration_ms: int | None = None
    video_frames: int | None = None
    audio_frames: int | None = None
    size: int | None = None


@dataclass
class SideSummary:
    side: str
    segments: int = 0
    duration_ms: int = 0  # first to last timestamp in the exported file
    start_ms: int | None = None
    video_packets: int = 0
    audio_packets: int = 0
    # Opus packets repeated where two segments meet (encoder priming), left out of the join.
    overlapping_packets_dropped: int = 0
    file: str | None = None


@dataclass
class ExportResult:
    recording_id: str
    out_dir: Path
    sides: dict[str, SideSummary] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def recording_slots(recording: Recording, root: Path) -> tuple[list[_Slot], list[str]]:
    """Registered segments plus sealed files on disk that never got a row."""
    warnings: list[str] = []
    slots = [
        _Slot(
            side=row.side,
            index=row.index,
            path=row.path,
            sha256=row.sha256,
            start_ms=row.start_ms,
            duration_ms=row.duration_ms,
            video_frames=row.video_frames,
            audio_frames=row.audio_frames,
            size=row.size,
        )
        for row in recording_segments(recording)
    ]
    known = {(slot.side, slot.index) for slot in slots}
    for side, index, name in segment_files_unregistered(recording.id, root, known, Side.values):
        if recording.status == RecordingStatus.FINALISED:
            warnings.append(f"{name}: not in the finalised manifest, left out")
            continue
        warnings.append(f"{name}: never registered, verified by its authentication tag only")
        slots.append(
            _Slot(
                side=side,
                index=index,
                path=segment_relpath(recording.id, side, index),
                sha256=None,
            )
        )
    slots.sort(key=lambda slot: (slot.side, slot.index))
    return slots, warnings


def slot_open(recording: Recording, root: Path, data_key: bytes, slot: _Slot) -> bytes:
    """Read, check and decrypt one segment; raises RecordingExportError with the reason."""
    name = f"{slot.side}:{slot.index} ({slot.path})"
    zh_name = f"{'客户侧' if slot.side == Side.CUSTOMER else '柜员侧'}第 {slot.index} 段"
    try:
        blob = (root / slot.path).read_bytes()
    except FileNotFoundError:
        raise RecordingExportError(
            f"segment {name}: file is missing", f"{zh_name}：文件缺失"
        ) from None
    if slot.sha256 is not None:
        actual = hashlib.sha256(blob).hexdigest()
        if actual != slot.sha256:
            raise RecordingExportError(
                f"segment {name}: SHA-256 mismatch, stored file was modified "
                f"(expected {slot.sha256}, found {actual})",
                f"{zh_name}：SHA-256 不符，存储的文件被改动",
            )
    else:
        slot.sha256 = hashlib.sha256(blob).hexdigest()
        slot.size = len(blob)
    try:
        return open_sealed(data_key, blob, segment_aad(recording.id, slot.side, slot.index))
    except SegmentIntegrityError as exc:
        raise RecordingExportError(
            f"segment {name}: {exc}", f"{zh_name}：未通过认证（被篡改、截断、挪位或非本录像密钥）"
        ) from None


def seal_findings(recording: Recording, data_key: bytes, entries: list[Entry]) -> list[Finding]:
    """A finalised recording against its sealed manifest: the manifest must be there and
    authentic, and name exactly the segments stored now."""
    document, mac = recording.manifest, recording.manifest_hmac
    if not document or not mac:
        return [
            Finding(
                "the recording is marked finalised but carries no sealed manifest (keyed HMAC): "
                "it cannot be shown to be whole",
                "录像标记为已封存，但没有带密钥的封存清单（HMAC），无法证明其完整",
            )
        ]
    if not manifest_authentic(manifest_key(data_key), document, mac):
        return [
            Finding(
                "the sealed manifest does not authenticate under the recording's key: it was "
                "altered or forged",
                "封存清单无法用本录像的密钥验证：清单被改动或伪造",
            )
        ]
    findings: list[Finding] = []
    if document.get("recording_id") != str(recording.id) or document.get("call_id") != str(
        recording.call_id
    ):
        findings.append(
            Finding(
                "the sealed manifest belongs to another recording or call",
                "封存清单属于另一录像或通话",
            )
        )
    for name, en, zh in (
        ("started_at", "start", "开始"),
        ("ended_at", "end", "结束"),
    ):
        value = getattr(recording, name)
        if value is None or datetime.fromisoformat(document.get(name, "")) != value:
            findings.append(
                Finding(
                    f"the recording's {en} time was changed after sealing (sealed: "
                    f"{document.get(name)})",
                    f"录像的{zh}时间在封存后被改动（封存时为 {document.get(name)}）",
                )
            )
    if bool(document.get("complete")) == recording.incomplete or (
        document.get("incomplete_reason") or {}
    ) != (recording.incomplete_reason or {}):
        findings.append(
            Finding(
                "the recording's completeness or its reason was changed after sealing",
                "录像的完整性标记或原因在封存后被改动",
            )
        )
    return findings + manifest_compare(document, entries)


def slots_verify(
    recording: Recording, root: Path, data_key: bytes, slots: list[_Slot]
) -> list[str]:
    """Raises RecordingExportError with every problem found; returns warnings."""
    problems: list[Finding] = []
    warnings: list[str] = []
    for slot in slots:
        try:
            slot_open(recording, root, data_key, slot)
        except RecordingExportError as exc:
            problems.append(Finding(str(exc), exc.zh))
    entries = [
        Entry(slot.side, slot.index, slot.sha256 or "", slot.start_ms or 0, slot.duration_ms or 0)
        for slot in slots
    ]
    if recording.status == RecordingStatus.FINALISED:
        registered = [
            e for e, slot in zip(entries, slots, strict=True) if slot.start_ms is not None
        ]
        problems += seal_findings(recording, data_key, registered)
        incomplete = incomplete_words(recording.manifest or {})
        if incomplete is not None and not problems:
            warnings.append(f"sealed as incomplete: {incomplete.en}")
    else:
        sealed = recording_sealed_event(recording)
        if sealed is not None:
            at = local_time_words(sealed.at)
            problems.append(
                Finding(
                    f"the recording was sealed at {at} but is no longer: its seal was removed",
                    f"录像已于 {at} 封存，但封存已被撤除",
                )
            )
        problems += sequence_findings(entries)
        warnings.append(
            "not sealed yet (still recording, or its media worker stopped and the sweep has not "
            "sealed it): its end cannot be verified"
        )
    if problems:
        raise RecordingExportError.of(problems)
    return warnings


def _join_side(segments: list[bytes], path: Path, summary: SideSummary) -> None:
    """Remux the side's segments into one Matroska file, keeping their timestamps."""
    with open(path, "r+b") as target:
        join_segments(segments, target, summary, container_format="matroska")


def _first_pts(segment: bytes) -> float:
    """The earliest timestamp of any track in a segment, in seconds."""
    with av.open(io.BytesIO(segment), mode="r") as source:
        inputs = [s for s in source.streams if s.type in ("video", "audio")]
        times = [
            float(packet.pts * packet.time_base)
            for packet in source.demux(inputs)
            if packet.pts is not None
        ]
    return min(times, default=0.0)


def join_segments(
    segments: list[bytes],
    target,
    summary: SideSummary,
    *,
    container_format: str,
    rebase: bool = False,
) -> None:
    """Remux decrypted segments (in order) into one file of ``container_format`` written to the
    file object ``target``, without re-encoding. ``rebase`` moves the side's first timestamp to 0
    (``summary.start_ms`` keeps where it was in the recording), for players that start at 0."""
    output = av.open(target, mode="w", format=container_format)
    streams: dict[str, av.stream.Stream] = {}
    last_pts: dict[str, float] = {}
    first = last = None
    offset = _first_pts(segments[0]) if rebase and segments else None
    try:
        for data in segments:
            with av.open(io.BytesIO(data), mode="r") as source:
                inputs = [s for s in source.streams if s.type in ("video", "audio")]
                if not streams:
                    for stream in inputs:
                        streams[stream.type] = output.add_stream_from_template(stream)
                for packet in source.demux(inputs):
                    if packet.pts is None or packet.stream.type not in streams:
                        continue  # the demuxer's end-of-stream packet
                    kind = packet.stream.type
                    # Matroska stores presentation times only; without B-frames dts == pts.
                    pts = float(packet.pts * packet.time_base)
                    if kind in last_pts and pts <= last_pts[kind]:
                        summary.overlapping_packets_dropped += 1
                        continue
                    last_pts[kind] = pts
                    end = pts + float((packet.duration or 0) * packet.time_base)
                    first = pts if first is None else min(first, pts)
                    last = end if last is None else max(last, end)
                    if offset is not None:
                        # Both tracks shift by the side's first timestamp: they stay in sync.
                        packet.pts = max(0, packet.pts - round(offset / packet.time_base))
                    packet.dts = packet.pts
                    if kind == "video":
                        summary.video_packets += 1
                    else:
                        summary.audio_packets += 1
                    packet.stream = streams[kind]
                    output.mux(packet)
    finally:
        output.close()
    if first is not None and last is not None:
        summary.start_ms = round((offset if offset is not None else first) * 1000)
        summary.duration_ms = round((last - first) * 1000)


def recording_export(
    *,
    recording: Recording,
    out_dir: Path,
    actor: str,
    user=None,
    recording_dir: Path | None = None,
) -> ExportResult:
    """Verify and export ``recording`` into ``out_dir``; every attempt is audited."""
    root = Path(recording_dir if recording_dir is not None else settings.RECORDING_DIR)
    out_dir = Path(out_dir)
    result = ExportResult(recording_id=str(recording.id), out_dir=out_dir)
    error: str | None = None
    try:
        data_key = recording_data_key(recording=recording)
        slots, result.warnings = recording_slots(recording, root)
        result.warnings += slots_verify(recording, root, data_key, slots)
        _write(recording, root, data_key, slots, out_dir, result)
    except Exception as exc:
        error = str(exc) or exc.__class__.__name__
        raise
    finally:
        recording_access_log(
            recording=recording,
            actor=actor,
            action="export",
            user=user,
            detail={
                "out_dir": str(out_dir.resolve()),
                "ok": error is None,
                "error": error,
                "segments": {side: s.segments for side, s in result.sides.items()},
            },
        )
    return result


def _write(
    recording: Recording,
    root: Path,
    data_key: bytes,
    slots: list[_Slot],
    out_dir: Path,
    result: ExportResult,
) -> None:
    # Decrypted customer video: readable by the exporting user only.
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    segments_dir = out_dir / "segments"
    segments_dir.mkdir(mode=0o700, exist_ok=True)
    for side in Side.values:
        side_slots = [slot for slot in slots if slot.side == side]
        if not side_slots:
            continue
        summary = SideSummary(side=side, segments=len(side_slots), file=f"{side}.mkv")
        plaintexts = []
        for slot in side_slots:
            plaintext = slot_open(recording, root, data_key, slot)
            _write_private(segments_dir / f"{side}-{slot.index:05d}.mkv", plaintext)
            plaintexts.append(plaintext)
        joined = out_dir / f"{side}.mkv"
        _write_private(joined, b"")
        _join_side(plaintexts, joined, summary)
        result.sides[side] = summary

    timeline = recording_timeline(recording)
    _write_private(
        out_dir / "timeline.json",
        json.dumps(
            {
                "recording_id": str(recording.id),
                "call_id": str(recording.call_id),
                "started_at": recording.started_at.isoformat(),
                "events": timeline,
            },
            indent=2,
            ensure_ascii=False,
        ).encode(),
    )
    identity = _export_identity_evidence(recording, out_dir, result)
    manifest = {
        "recording_id": str(recording.id),
        "call_id": str(recording.call_id),
        "identity_evidence": identity,
        "status": recording.status,
        "started_at": recording.started_at.isoformat(),
        "ended_at": recording.ended_at.isoformat() if recording.ended_at else None,
        "manifest_sha256": recording.manifest_sha256 or None,
        # The sealed manifest and its HMAC-SHA256 (key: HKDF of the data key, see
        # recordings/crypto.py manifest_key), verified before this export was written.
        "sealed_manifest": recording.manifest or None,
        "manifest_hmac": recording.manifest_hmac or None,
        "incomplete": recording.incomplete,
        "incomplete_reason": recording.incomplete_reason or None,
        "key_id": recording.key_id,
        "exported_at": timezone.now().isoformat(),
        "segments": [
            {
                "side": slot.side,
                "index": slot.index,
                "file": f"segments/{slot.side}-{slot.index:05d}.mkv",
                "stored_path": slot.path,
                "stored_size": slot.size,
                "stored_sha256": slot.sha256,
                "registered": slot.start_ms is not None,
                "start_ms": slot.start_ms,
                "duration_ms": slot.duration_ms,
                "video_frames": slot.video_frames,
                "audio_frames": slot.audio_frames,
            }
            for slot in slots
        ],
        "sides": {
            side: {
                "file": s.file,
                "segments": s.segments,
                "start_ms": s.start_ms,
                "duration_ms": s.duration_ms,
                "video_packets": s.video_packets,
                "audio_packets": s.audio_packets,
                "overlapping_packets_dropped": s.overlapping_packets_dropped,
            }
            for side, s in result.sides.items()
        },
        "warnings": result.warnings,
    }
    _write_private(
        out_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    )


def _export_identity_evidence(recording: Recording, out_dir: Path, result: ExportResult) -> int:
    """The identity check's pictures (card, portrait, sampled face and liveness frames), sealed
    with this recording's key (recordings/evidence.py): written to ``identity/`` beside the
    recording, each checked against its SHA-256, with ``identity/evidence.json`` saying what each
    one is and scored."""
    items = list(evidence_for_call(recording.call_id))
    if not items:
        return 0
    folder = out_dir / "identity"
    folder.mkdir(exist_ok=True)
    listing = []
    for item in items:
        jpeg = evidence_open(item)
        if hashlib.sha256(jpeg).hexdigest() != item.sha256:
            result.warnings.append(f"identity evidence {item.id}: SHA-256 mismatch, not exported")
            continue
        name = f"{item.captured_at:%H%M%S%f}-{item.kind}-{str(item.id)[:8]}.jpg"
        _write_private(folder / name, jpeg)
        listing.append(
            {
                "file": f"identity/{name}",
                "kind": item.kind,
                "source": item.source,
                "offset_ms": item.offset_ms,
                "captured_at": item.captured_at.isoformat(),
                "sha256": item.sha256,
                "meta": item.meta,
                "check_id": str(item.identity_check_id),
            }
        )
    _write_private(
        folder / "evidence.json", json.dumps(listing, indent=2, ensure_ascii=False).encode()
    )
    return len(listing)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
