"""What a QA reviewer would check in a call's recording, read back with PyAV."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import av

from queueing.models import Call
from recordings.export import recording_export
from recordings.models import Recording, RecordingStatus


@dataclass
class Track:
    packets: int
    first_s: float
    last_s: float

    @property
    def duration_s(self) -> float:
        return self.last_s - self.first_s


def wait_finalised(call_id: str, timeout: float = 60.0) -> Recording:
    """The call's recording once its finalisation task has run (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        recording = Recording.objects.filter(call_id=call_id).first()
        if recording is not None and recording.status == RecordingStatus.FINALISED:
            return recording
        if time.monotonic() > deadline:
            state = recording.status if recording else "missing"
            raise TimeoutError(f"recording of call {call_id} not finalised ({state})")
        time.sleep(0.1)  # the Celery worker / media worker writes; nothing pushes to the test


def tracks_of(path: Path) -> dict[str, Track]:
    """Per stream kind: packets with data, and the first/last timestamps in seconds."""
    out: dict[str, Track] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            kind = packet.stream.type
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            track = out.get(kind)
            if track is None:
                out[kind] = Track(1, start, end)
            else:
                track.packets += 1
                track.first_s = min(track.first_s, start)
                track.last_s = max(track.last_s, end)
    return out


def check_call_recording(call_id: str, out_dir: Path, tolerance: float = 0.15) -> dict:
    """Decrypt the call's recording and assert both sides have audio and video spanning the call.

    Returns the measured figures (for the test's report)."""
    recording = wait_finalised(call_id)
    call = Call.objects.get(pk=call_id)
    call_s = (call.ended_at - call.answered_at).total_seconds()
    recording_export(recording=recording, out_dir=out_dir, actor="test:e2e")
    figures = {"call_s": round(call_s, 2)}
    for side in ("customer", "teller"):
        tracks = tracks_of(out_dir / f"{side}.mkv")
        for kind in ("video", "audio"):
            assert kind in tracks, f"{side} recording has no {kind} packets"
            track = tracks[kind]
            assert track.packets > 10, f"{side} {kind}: only {track.packets} packets"
            assert abs(track.duration_s - call_s) <= tolerance * call_s, (
                f"{side} {kind} lasts {track.duration_s:.2f} s, the call {call_s:.2f} s"
            )
            figures[f"{side}_{kind}_s"] = round(track.duration_s, 2)
    return figures
