"""How long a QA reviewer waits before a recorded call can play.

    .venv/bin/python bench/replay.py [--minutes 10] [--segment-s 10]

Builds one side of a call of ``--minutes`` as the recorder does (640x480 H.264 at 15 fps plus
Opus, in Matroska segments of ``--segment-s``, each sealed with AES-256-GCM), then times what
``recordings.replay.replay_side`` does on the first request: hash every stored segment, open it
under the data key, and remux the side into one MP4 in memory. (A call has two sides; the page
asks for both at once, one server thread each.) Later range requests are served from memory.

Last line: ``replay_prepare_s=<s> minutes=<m> mp4_mb=<size> segments=<n>``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import time
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videobank.settings")

import django  # noqa: E402

django.setup()

from recordings.crypto import open_sealed, seal, segment_aad  # noqa: E402
from recordings.export import SideSummary, join_segments  # noqa: E402

RECORDING = uuid.UUID(int=7)
FPS = 15
RATE = 48_000


def segment(index: int, seconds: float) -> bytes:
    """One recorder-like segment: moving gradient video and a tone, timestamps continuing."""
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format="matroska")
    video = out.add_stream(
        "libx264", rate=FPS, options={"preset": "veryfast", "tune": "zerolatency"}
    )
    video.width, video.height, video.pix_fmt = 640, 480, "yuv420p"
    video.codec_context.time_base = Fraction(1, 90_000)
    audio = out.add_stream("libopus", rate=RATE, layout="mono")
    audio.codec_context.time_base = Fraction(1, RATE)
    t0 = index * seconds
    x = np.arange(640, dtype=np.uint16)[None, :]
    y = np.arange(480, dtype=np.uint16)[:, None]
    for n in range(round(seconds * FPS)):
        frame_no = round(t0 * FPS) + n
        luma = ((x + y + (frame_no * 4) % 256) % 256).astype(np.uint8)
        image = np.concatenate([luma, np.full((240, 640), 128, np.uint8)])
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = round((t0 + n / FPS) * 90_000)
        frame.time_base = Fraction(1, 90_000)
        out.mux(video.encode(frame))
    samples = 960
    for n in range(round(seconds * RATE / samples)):
        start = round(t0 * RATE) + n * samples
        t = (start + np.arange(samples)) / RATE
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = start
        frame.time_base = Fraction(1, RATE)
        out.mux(audio.encode(frame))
    out.mux(video.encode(None))
    out.mux(audio.encode(None))
    out.close()
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--segment-s", type=float, default=10.0)
    args = parser.parse_args()

    key = os.urandom(32)
    count = max(1, round(args.minutes * 60 / args.segment_s))
    print(f"building {count} segments of {args.segment_s:.0f} s (one side)...", flush=True)
    stored = []
    for index in range(count):
        plain = segment(index, args.segment_s)
        blob = seal(key, plain, segment_aad(RECORDING, "customer", index))
        stored.append((blob, hashlib.sha256(blob).hexdigest()))
    size = sum(len(blob) for blob, _ in stored)

    started = time.perf_counter()
    plaintexts = []
    for index, (blob, digest) in enumerate(stored):
        assert hashlib.sha256(blob).hexdigest() == digest
        plaintexts.append(open_sealed(key, blob, segment_aad(RECORDING, "customer", index)))
    opened = time.perf_counter()
    buffer = io.BytesIO()
    summary = SideSummary(side="customer", segments=count)
    join_segments(plaintexts, buffer, summary, container_format="mp4", rebase=True)
    done = time.perf_counter()

    mp4_mb = len(buffer.getvalue()) / 1e6
    print(
        f"stored {size / 1e6:.1f} MB in {count} segments; verify+decrypt {opened - started:.3f} s, "
        f"remux to MP4 {done - opened:.3f} s ({summary.video_packets} video, "
        f"{summary.audio_packets} audio packets, {summary.duration_ms / 1000:.0f} s)"
    )
    print(
        f"replay_prepare_s={done - started:.3f} minutes={args.minutes:g} "
        f"mp4_mb={mp4_mb:.1f} segments={count}"
    )


if __name__ == "__main__":
    main()
