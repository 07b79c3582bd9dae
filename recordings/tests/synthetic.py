"""Synthetic media for recorder tests: a moving gradient and a 440 Hz tone, on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

AUDIO_FRAME_S = 0.02
VIDEO_FPS = 15


def gradient_frame(index: int, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame (what aiortc's decoders yield) whose gradient moves with ``index``."""
    x = np.arange(width, dtype=np.uint16)
    y = np.arange(height, dtype=np.uint16)[:, None]
    luma = ((x + y + index * 8) % 256).astype(np.uint8)
    chroma = np.full((height // 2, width), 128, np.uint8)
    return av.VideoFrame.from_ndarray(np.vstack([luma, chroma]), format="yuv420p")


def tone_frame(index: int, sample_rate: int = 48_000) -> av.AudioFrame:
    """20 ms of a 440 Hz tone, s16 stereo, as aiortc's Opus decoder delivers it."""
    samples = int(sample_rate * AUDIO_FRAME_S)
    t = (np.arange(samples) + index * samples) / sample_rate
    mono = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2)[None, :], format="s16", layout="stereo")
    frame.sample_rate = sample_rate
    return frame


def media_schedule(
    duration_s: float,
    *,
    video_from_s: float = 0.25,
    small_until_s: float = 1.5,
) -> Iterator[tuple[str, float, int, tuple[int, int]]]:
    """(kind, seconds since start, index, size) in arrival order.

    Audio starts at 0, video only at ``video_from_s`` (the MediaRecorder trap); video is 480x360
    (Chromium's "bandwidth limited" start) until ``small_until_s``, then 640x480.
    """
    events = []
    n_audio = round(duration_s / AUDIO_FRAME_S)
    events += [("audio", i * AUDIO_FRAME_S, i, (0, 0)) for i in range(n_audio)]
    n_video = round((duration_s - video_from_s) * VIDEO_FPS)
    for i in range(n_video):
        t = video_from_s + i / VIDEO_FPS
        events.append(("video", t, i, (480, 360) if t < small_until_s else (640, 480)))
    events.sort(key=lambda e: (e[1], e[0]))
    return iter(events)


def feed(recorder, duration_s: float, *, t0: float, **schedule) -> dict[str, int]:
    """Push the schedule into ``recorder`` with fake monotonic times; returns counts pushed."""
    pushed = {"video": 0, "audio": 0}
    for kind, t, index, (width, height) in media_schedule(duration_s, **schedule):
        if kind == "video":
            recorder.push_video(gradient_frame(index, width, height), t0 + t)
        else:
            recorder.push_audio(tone_frame(index), t0 + t)
        pushed[kind] += 1
    return pushed
