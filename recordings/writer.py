"""Server-side recording of one participant ("side") of a call.

The media worker hands decoded frames to ``SideRecorder.push_video`` / ``push_audio`` from its event
loop. Those calls only enqueue: encoding, muxing, sealing and writing run in the recorder's own
thread, behind a bounded queue that drops (and counts) frames rather than ever blocking the loop.

Why not aiortc's ``MediaRecorder``: it opens the video encoder from the first video frame, so audio
arriving first loses the video, and it uses x264's default (slow) preset. Here the output size is
fixed (``RECORDING_VIDEO_SIZE``), so both encoders are opened when a segment opens.

Every ``segment_seconds`` of recording time a new Matroska container (new encoders, so it starts
on a keyframe) is built in memory, sealed with the recording's data key and written atomically;
plaintext never touches the disk. Timestamps are ``t - t0`` (arrival time on the recording clock)
so both sides and the call's timeline line up; segments keep those absolute timestamps.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.video.stream import VideoStream
from django.conf import settings

from recordings.crypto import seal, segment_aad

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 1000)
AUDIO_RATE = 48_000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
AUDIO_LAYOUT = "stereo"
AUDIO_FORMAT = "s16"  # what aiortc's Opus decoder yields, so the resampler mostly just reframes
AUDIO_BIT_RATE = 48_000  # speech; libopus would pick 96 kbit/s for stereo
OPUS_FRAME_SAMPLES = 960  # 20 ms; libopus accepts only fixed-size frames
# Audio timestamps follow the sample count, re-anchored to arrival time only past this gap.
AUDIO_MAX_SKEW_S = 0.2
SEAL_ATTEMPTS = 5
DEFAULT_QUEUE_SIZE = 256  # ~2.5 s of one side's 15 fps video plus 50 audio frames/s
SEGMENT_SUFFIX = ".mkv.enc"

_STOP = object()
_VIDEO = "video"
_AUDIO = "audio"


@dataclass(frozen=True)
class SegmentInfo:
    side: str
    index: int
    path: str  # relative to RECORDING_DIR
    start_ms: int  # on the recording clock
    duration_ms: int
    size: int  # of the sealed file
    sha256: str  # of the sealed file
    video_frames: int
    audio_frames: int


def segment_relpath(recording_id: uuid.UUID | str, side: str, index: int) -> str:
    return f"{recording_id}/{side}-{index:05d}{SEGMENT_SUFFIX}"


def segment_filename_re(side: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(side)}-(\d{{5,}}){re.escape(SEGMENT_SUFFIX)}$")


def segment_files_unregistered(
    recording_id: uuid.UUID | str, root: Path, known: set[tuple[str, int]], sides
) -> list[tuple[str, int, str]]:
    """Sealed segment files of a recording on disk whose ``(side, index)`` is not in ``known``
    (their writer died between sealing and registering): ``(side, index, file name)``."""
    directory = Path(root) / str(recording_id)
    names = sorted(os.listdir(directory)) if directory.is_dir() else []
    found = []
    for side in sides:
        pattern = segment_filename_re(side)
        for name in names:
            match = pattern.match(name)
            if match and (side, int(match.group(1))) not in known:
                found.append((side, int(match.group(1)), name))
    return found


def _video_codec() -> tuple[str, dict[str, str]]:
    """x264 ultrafast/zerolatency (1.4 ms a 640x480 frame); VP8 realtime if the wheel lacks it."""
    if "libx264" in av.codecs_available:
        return "libx264", {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "crf": "25",
            # Caps the worst case (screen noise, fast motion) at about 1.5 Mbit/s.
            "maxrate": "1500k",
            "bufsize": "3000k",
        }
    return "libvpx", {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "b": "1000k",
    }


def _copy_frame(frame: av.VideoFrame) -> av.VideoFrame:
    # The media worker may share decoded frames with other consumers (a relay to the other
    # party): never restamp theirs. One memcpy, ~0.07 ms at 640x480.
    array = frame.to_ndarray()
    try:
        return av.VideoFrame.from_numpy_buffer(array, format="yuv420p")
    except ValueError:
        return av.VideoFrame.from_ndarray(array, format="yuv420p")


class _Segment:
    """One in-memory Matroska container with a video and an audio stream."""

    def __init__(self, *, window_end_s: float, size: tuple[int, int], fps: int):
        self.window_end_s = window_end_s
        self.buffer = io.BytesIO()
        self.container = av.open(self.buffer, mode="w", format="matroska")
        codec, options = _video_codec()
        # The codec is chosen at run time (_video_codec): always a video encoder.
        self.video = cast(VideoStream, self.container.add_stream(codec, rate=fps, options=options))
        self.video.width, self.video.height = size
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = VIDEO_TIME_BASE
        self.video.codec_context.time_base = VIDEO_TIME_BASE
        self.video.codec_context.gop_size = fps * 2  # a keyframe every 2 s keeps seeking cheap
        # One thread per encoder: several recorders share the cores better than sliced threads.
        self.video.codec_context.thread_count = 1
        self.audio = self.container.add_stream("libopus", rate=AUDIO_RATE, layout=AUDIO_LAYOUT)
        self.audio.time_base = AUDIO_TIME_BASE
        self.audio.codec_context.time_base = AUDIO_TIME_BASE
        self.audio.codec_context.format = AUDIO_FORMAT
        self.audio.codec_context.bit_rate = AUDIO_BIT_RATE
        self.container.start_encoding()
        self.video_frames = 0
        self.audio_frames = 0
        self.start_ms: float | None = None
        self.end_ms = 0.0

    def extend(self, start_ms: float, end_ms: float) -> None:
        if self.start_ms is None or start_ms < self.start_ms:
            self.start_ms = start_ms
        if end_ms > self.end_ms:
            self.end_ms = end_ms

    def finish(self) -> bytes:
        for packet in self.video.encode(None):
            self.container.mux(packet)
        for packet in self.audio.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.buffer.getvalue()

    def abandon(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the segment is being thrown away anyway
            logger.debug("closing an abandoned segment failed", exc_info=True)


class SideRecorder:
    """Records one side of a call into sealed, independently playable segments."""

    def __init__(
        self,
        *,
        recording_id: uuid.UUID,
        side: str,
        data_key: bytes,
        t0: float,
        segment_seconds: float | None = None,
        out_dir: Path | None = None,
        on_segment: Callable[[SegmentInfo], None],
        on_thread_end: Callable[[], None] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.recording_id = uuid.UUID(str(recording_id))
        self.side = side
        self.t0 = t0
        self.segment_seconds = float(
            segment_seconds if segment_seconds is not None else settings.RECORDING_SEGMENT_SECONDS
        )
        if self.segment_seconds <= 0:
            raise ValueError("segment_seconds must be positive")
        self.root = Path(out_dir if out_dir is not None else settings.RECORDING_DIR)
        self.directory = self.root / str(self.recording_id)
        self._data_key = data_key
        # Registering a sealed segment is the caller's (recordings.services.recording_recorder
        # registers it in the database); this module only writes files.
        self._on_segment = on_segment
        self._on_thread_end = on_thread_end
        width, height = settings.RECORDING_VIDEO_SIZE
        self._size = (width, height)
        self._fps = int(settings.RECORDING_VIDEO_FPS)

        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._close_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats = {
            "video_frames": 0,  # encoded
            "audio_frames": 0,  # 20 ms Opus frames encoded
            "video_dropped": 0,  # queue full
            "audio_dropped": 0,  # queue full, or audio running ahead of the clock
            "segments": 0,
            "bytes": 0,
            "errors": 0,
            "video_encode_s": 0.0,  # reformat + encode + mux, for the cost per frame
        }

        # Worker-thread state only.
        self._segment: _Segment | None = None
        self._next_index = 0
        self._last_video_pts = -1
        self._resampler: av.AudioResampler | None = None
        self._audio_anchor = 0  # pts (samples) of the first sample fed since the last anchor
        self._audio_fed = 0.0  # samples (at 48 kHz) fed since the anchor
        self._audio_next_pts = 0

        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{side}-{self.recording_id}", daemon=True
        )
        self._thread.start()

    # --- producer side: called from the media worker's event loop ---------------------------

    def push_video(self, frame: av.VideoFrame, t: float) -> None:
        self._push(_VIDEO, frame, t)

    def push_audio(self, frame: av.AudioFrame, t: float) -> None:
        self._push(_AUDIO, frame, t)

    def _push(self, kind: str, frame, t: float) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait((kind, frame, t))
        except queue.Full:
            with self._stats_lock:
                self._stats[f"{kind}_dropped"] += 1

    def close(self) -> None:
        """Encode what is queued, seal the last segment, and wait for it. Blocking."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                while self._thread.is_alive():
                    try:
                        self._queue.put(_STOP, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        self._thread.join()

    @property
    def stats(self) -> dict:
        with self._stats_lock:
            stats = dict(self._stats)
        stats["queued"] = self._queue.qsize()
        return stats

    # --- worker thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._next_index = self._first_free_index()
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                kind, frame, t = item
                try:
                    if kind is _VIDEO:
                        self._write_video(frame, t)
                    else:
                        self._write_audio(frame, t)
                except Exception:
                    self._count_error("could not record a %s frame", kind)
            self._finish_segment()
        except Exception:
            self._count_error("recorder thread failed")
        finally:
            if self._segment is not None:
                self._segment.abandon()
                self._segment = None
            if self._on_thread_end is not None:
                self._on_thread_end()

    def _count_error(self, message: str, *args) -> None:
        with self._stats_lock:
            self._stats["errors"] += 1
            first = self._stats["errors"] <= 3
        # The first few with a traceback; a broken stream must not flood the log at 65 frames/s.
        if first:
            logger.exception(message + " (%s %s)", *args, self.recording_id, self.side)

    def _first_free_index(self) -> int:
        # A recorder restarted for the same recording never overwrites sealed segments.
        pattern = segment_filename_re(self.side)
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        indexes = [int(m.group(1)) for m in map(pattern.match, names) if m]
        return max(indexes) + 1 if indexes else 0

    def _segment_for(self, t_rel: float) -> _Segment:
        segment = self._segment
        if segment is not None and t_rel >= segment.window_end_s:
            self._finish_segment()
            segment = None
        if segment is None:
            slot = max(0, math.floor(t_rel / self.segment_seconds))
            segment = _Segment(
                window_end_s=(slot + 1) * self.segment_seconds,
                size=self._size,
                fps=self._fps,
            )
            self._segment = segment
        return segment

    def _write_video(self, frame: av.VideoFrame, t: float) -> None:
        started = time.perf_counter()
        t_rel = t - self.t0
        segment = self._segment_for(t_rel)
        pts = max(round(t_rel * 1000), self._last_video_pts + 1)
        self._last_video_pts = pts
        width, height = self._size
        image = frame.reformat(width=width, height=height, format="yuv420p")
        if image is frame:
            image = _copy_frame(frame)
        image.pts = pts
        image.time_base = VIDEO_TIME_BASE
        for packet in segment.video.encode(image):
            segment.container.mux(packet)
        segment.video_frames += 1
        # The last frame is shown until the next one, which belongs to the next segment.
        segment.extend(pts, max(pts, min(pts + 1000 / self._fps, segment.window_end_s * 1000)))
        elapsed = time.perf_counter() - started
        with self._stats_lock:
            self._stats["video_frames"] += 1
            self._stats["video_encode_s"] += elapsed

    def _write_audio(self, frame: av.AudioFrame, t: float) -> None:
        t_rel = t - self.t0
        arrival_pts = round(max(t_rel, 0.0) * AUDIO_RATE)
        samples = frame.samples * AUDIO_RATE / frame.sample_rate
        if self._resampler is None:
            self._reanchor(arrival_pts)
        else:
            drift = arrival_pts - (self._audio_anchor + self._audio_fed)
            if drift > AUDIO_MAX_SKEW_S * AUDIO_RATE:
                # A gap (muted, packet loss, network stall): restart the clock at arrival time.
                self._reanchor(arrival_pts)
            elif drift < -AUDIO_MAX_SKEW_S * AUDIO_RATE:
                # The sender delivers faster than real time: drop rather than let A/V drift.
                with self._stats_lock:
                    self._stats["audio_dropped"] += 1
                return
        segment = self._segment_for(t_rel)
        assert self._resampler is not None
        self._audio_fed += samples
        try:
            chunks = self._resampler.resample(frame)
        except ValueError:
            # The input layout or rate changed mid-call: start a resampler for the new one.
            self._reanchor(arrival_pts)
            self._audio_fed = samples
            chunks = self._resampler.resample(frame)
        for chunk in chunks:
            chunk.pts = self._audio_next_pts
            chunk.time_base = AUDIO_TIME_BASE
            for packet in segment.audio.encode(chunk):
                segment.container.mux(packet)
            start_ms = self._audio_next_pts * 1000 / AUDIO_RATE
            self._audio_next_pts += chunk.samples
            segment.audio_frames += 1
            segment.extend(start_ms, self._audio_next_pts * 1000 / AUDIO_RATE)
            with self._stats_lock:
                self._stats["audio_frames"] += 1

    def _reanchor(self, arrival_pts: int) -> None:
        # Samples still buffered in the old resampler (< 20 ms) are dropped with it.
        self._resampler = av.AudioResampler(
            format=AUDIO_FORMAT,
            layout=AUDIO_LAYOUT,
            rate=AUDIO_RATE,
            frame_size=OPUS_FRAME_SAMPLES,
        )
        self._audio_anchor = max(arrival_pts, self._audio_next_pts)
        self._audio_next_pts = self._audio_anchor
        self._audio_fed = 0.0

    def _finish_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        if segment.video_frames == 0 and segment.audio_frames == 0:
            segment.abandon()
            return
        plaintext = segment.finish()
        # The index is taken only now, when there is something to seal: an index is never left
        # empty behind (a hole reads as a cut), and a sealed file is never replaced — if another
        # writer of this recording (a media worker presumed dead, still running) took the index
        # meanwhile, this segment takes the next free one.
        for _attempt in range(SEAL_ATTEMPTS):
            index = self._next_index
            blob = seal(self._data_key, plaintext, segment_aad(self.recording_id, self.side, index))
            relpath = segment_relpath(self.recording_id, self.side, index)
            try:
                self._write_new(self.root / relpath, blob)
                break
            except FileExistsError:
                self._next_index = max(index + 1, self._first_free_index())
        else:
            raise RuntimeError(f"no free segment index for {self.side} after {SEAL_ATTEMPTS} tries")
        self._next_index = index + 1
        del plaintext
        start_ms = round(segment.start_ms or 0)
        info = SegmentInfo(
            side=self.side,
            index=index,
            path=relpath,
            start_ms=start_ms,
            duration_ms=max(0, round(segment.end_ms) - start_ms),
            size=len(blob),
            sha256=hashlib.sha256(blob).hexdigest(),
            video_frames=segment.video_frames,
            audio_frames=segment.audio_frames,
        )
        with self._stats_lock:
            self._stats["segments"] += 1
            self._stats["bytes"] += len(blob)
        try:
            self._on_segment(info)
        except Exception:
            # The sealed file is on disk; export still finds it, authenticated by its AAD.
            self._count_error("on_segment failed for segment %s", index)

    @staticmethod
    def _write_new(path: Path, blob: bytes) -> None:
        """Write ``blob`` at ``path`` whole or not at all; FileExistsError if ``path`` exists
        (a hard link from the temporary file never replaces what is there)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def segment_probe(plaintext: bytes) -> dict[str, int]:
    """A decrypted segment's place on the recording clock and its frame counts, read from the
    container (for a sealed file whose row never reached the database)."""
    starts: list[float] = []
    ends: list[float] = []
    counts = {"video": 0, "audio": 0}
    with av.open(io.BytesIO(plaintext), mode="r") as source:
        inputs = [s for s in source.streams if s.type in counts]
        for packet in source.demux(inputs):
            if packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base)
            starts.append(start)
            ends.append(start + float((packet.duration or 0) * packet.time_base))
            counts[packet.stream.type] += 1
    start_ms = max(0, round(min(starts, default=0.0) * 1000))
    return {
        "start_ms": start_ms,
        "duration_ms": max(0, round(max(ends, default=0.0) * 1000) - start_ms),
        "video_frames": counts["video"],
        "audio_frames": counts["audio"],
    }
