"""A recording replayed in the QA console (``recordings/views.py``).

Each side is verified exactly as an export is (every segment's SHA-256, its authentication tag in
its own slot, and for a finalised recording its keyed manifest: nothing cut at either end,
missing, added or changed; for one not sealed yet, each side from segment 0 without a hole), then
decrypted and remuxed — not re-encoded — into one MP4 (H.264 + Opus) in memory, served with HTTP
ranges so the reviewer can seek. Nothing decrypted is written to disk. Both sides start at 0 in
their files; ``start_ms`` says where that is in the recording, so the page can lay the two videos
and the call's timeline on one clock.

A small in-process cache keeps the last sides served (``REPLAY_CACHE_BYTES``, for
``REPLAY_CACHE_S``) so a reviewer's seeks, each a range request, do not decrypt the call again.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from recordings.export import (
    RecordingExportError,
    SideSummary,
    join_segments,
    recording_slots,
    slot_open,
    slots_verify,
)
from recordings.models import Recording, Side
from recordings.services import recording_data_key
from videobank.errors import Conflict

CONTENT_TYPE = "video/mp4"


class ReplayError(Conflict):
    """The side cannot be replayed; the words say why, in a form a reviewer can act on (409)."""

    code = "not_replayable"


@dataclass(frozen=True)
class ReplayMedia:
    recording_id: str
    side: str
    data: bytes
    start_ms: int  # where the file's time 0 is in the recording
    duration_ms: int
    video_packets: int
    audio_packets: int


_cache: OrderedDict[tuple, tuple[float, ReplayMedia]] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(recording: Recording) -> tuple:
    # A recording still being written (a server died mid-call) may grow: its segment count is
    # part of the key. A finalised one is fixed by its manifest.
    segments = recording.segments.count()
    return (str(recording.id), recording.status, recording.manifest_hmac, segments)


def _cache_get(key: tuple) -> ReplayMedia | None:
    with _cache_lock:
        entry = _cache.get(key)
        if entry is None:
            return None
        stored_at, media = entry
        if time.monotonic() - stored_at > settings.REPLAY_CACHE_S:
            del _cache[key]
            return None
        _cache.move_to_end(key)
        return media


def _cache_put(key: tuple, media: ReplayMedia) -> None:
    with _cache_lock:
        _cache[key] = (time.monotonic(), media)
        _cache.move_to_end(key)
        total = sum(len(m.data) for _, m in _cache.values())
        while _cache and total > settings.REPLAY_CACHE_BYTES and len(_cache) > 1:
            _, (_, dropped) = _cache.popitem(last=False)
            total -= len(dropped.data)


def replay_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def replay_side(*, recording: Recording, side: str) -> ReplayMedia:
    """One side of ``recording`` as an MP4 in memory; raises ReplayError."""
    if side not in Side.values:
        raise ReplayError(f"Unknown side {side!r}.", f"没有 {side!r} 这一侧。")
    key = (*_cache_key(recording), side)
    cached = _cache_get(key)
    if cached is not None:
        return cached
    root = Path(settings.RECORDING_DIR)
    try:
        data_key = recording_data_key(recording=recording)
        slots, _warnings = recording_slots(recording, root)
        slots_verify(recording, root, data_key, slots)
        plaintexts = [
            slot_open(recording, root, data_key, slot) for slot in slots if slot.side == side
        ]
    except RecordingExportError as exc:
        raise ReplayError(
            f"The recording failed verification: {exc}", f"录像未通过校验：{exc.zh}"
        ) from None
    if not plaintexts:
        raise ReplayError(
            f"Nothing was recorded of the {side}.",
            f"没有录到{'客户' if side == Side.CUSTOMER else '柜员'}的画面。",
        )
    summary = SideSummary(side=side, segments=len(plaintexts))
    buffer = io.BytesIO()
    join_segments(plaintexts, buffer, summary, container_format="mp4", rebase=True)
    media = ReplayMedia(
        recording_id=str(recording.id),
        side=side,
        data=buffer.getvalue(),
        start_ms=summary.start_ms or 0,
        duration_ms=summary.duration_ms,
        video_packets=summary.video_packets,
        audio_packets=summary.audio_packets,
    )
    _cache_put(key, media)
    return media
