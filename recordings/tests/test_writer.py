import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import av
import pytest
from django.conf import settings as django_settings

from recordings.crypto import new_data_key, open_sealed, segment_aad
from recordings.tests.synthetic import feed, gradient_frame
from recordings.writer import SegmentInfo, SideRecorder

MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"
T0 = 1000.0  # a monotonic clock reading; only differences matter


def probe(plaintext: bytes) -> dict:
    """What a player would see: streams, packet spans and decoded frames."""
    result: dict = {"video": [], "audio": [], "sizes": set(), "audio_samples": 0}
    with av.open(io.BytesIO(plaintext), mode="r") as container:
        kinds = {s.type for s in container.streams}
        result["streams"] = kinds
        for packet in container.demux():
            if packet.pts is None:
                continue  # the demuxer's end-of-stream packet
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            result[packet.stream.type].append((start, end))
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    result["sizes"].add((frame.width, frame.height))
                elif isinstance(frame, av.AudioFrame):
                    result["audio_samples"] += frame.samples
    return result


def open_segment(root: Path, recording_id, data_key: bytes, info: SegmentInfo) -> bytes:
    blob = (root / info.path).read_bytes()
    plaintext = open_sealed(data_key, blob, segment_aad(recording_id, info.side, info.index))
    assert plaintext.startswith(MATROSKA_MAGIC)
    # No run of the plaintext is on disk: its first 64 bytes (the Matroska header) appear
    # nowhere in the sealed file. (The 4-byte magic alone turns up by chance in ciphertext of a
    # few MB now and then: a test that looked for it failed once in CI.)
    assert plaintext[:64] not in blob, "plaintext Matroska on disk"
    return plaintext


class _ReportingRecorder(SideRecorder):
    infos: list[SegmentInfo]  # what it reported (its on_segment), in order


@pytest.fixture
def recorder_factory(tmp_path):
    made = []

    def make(**kwargs):
        kwargs.setdefault("recording_id", uuid.uuid4())
        kwargs.setdefault("side", "customer")
        kwargs.setdefault("data_key", new_data_key())
        kwargs.setdefault("t0", T0)
        kwargs.setdefault("out_dir", tmp_path)
        kwargs.setdefault("queue_size", 4096)
        infos: list[SegmentInfo] = []
        kwargs.setdefault("on_segment", infos.append)
        recorder = _ReportingRecorder(**kwargs)
        recorder.infos = infos
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


def test_segments_play_with_audio_first_and_a_size_change(recorder_factory, tmp_path):
    recorder = recorder_factory(segment_seconds=1.0)
    pushed = feed(recorder, 3.5, t0=T0, video_from_s=0.25, small_until_s=1.5)
    recorder.close()

    infos = recorder.infos
    assert [i.index for i in infos] == [0, 1, 2, 3]
    stats = recorder.stats
    assert stats["video_frames"] == pushed["video"]
    assert stats["video_dropped"] == stats["audio_dropped"] == stats["errors"] == 0
    assert stats["segments"] == 4

    total_samples = 0
    spans = []
    for info in infos:
        assert (tmp_path / info.path).stat().st_size == info.size
        media = probe(open_segment(tmp_path, recorder.recording_id, recorder._data_key, info))
        assert {"video", "audio"} <= media["streams"]
        assert media["video"], f"segment {info.index} has no video"
        assert media["audio"], f"segment {info.index} has no audio"
        # Every frame, 480x360 or 640x480 on input, is stored at the fixed recording size.
        assert media["sizes"] == {tuple(django_settings.RECORDING_VIDEO_SIZE)}
        # Timestamps stay on the recording clock and inside the segment's window.
        video_start = media["video"][0][0]
        assert info.index <= video_start < info.index + 1
        stamps = [s for s, _ in media["video"] + media["audio"]]
        # Opus packets carry the encoder's 6.5 ms priming before the first sample.
        assert max(stamps) - min(stamps) <= 1.0 + 0.0065
        assert info.duration_ms <= 1000 + 20  # an Opus frame may straddle the boundary
        total_samples += media["audio_samples"]
        spans.append(info.duration_ms)
    assert sum(spans) == pytest.approx(3500, rel=0.10)
    assert total_samples / 48_000 == pytest.approx(3.5, rel=0.10)
    # Segment 0 starts with audio: the 250 ms before the first video frame were kept.
    assert infos[0].start_ms < 50


def test_a_full_queue_drops_frames_instead_of_blocking(recorder_factory):
    recorder = recorder_factory(queue_size=2, segment_seconds=10.0)
    frame = gradient_frame(0, 640, 480)
    for i in range(200):
        recorder.push_video(frame, T0 + i / 15)
    recorder.close()
    stats = recorder.stats
    assert stats["video_dropped"] > 0
    assert stats["video_frames"] + stats["video_dropped"] == 200
    # The caller's frame is shared with others (relay): its timestamp is left alone.
    assert frame.pts is None


def test_nothing_is_written_without_frames_and_pushes_after_close_are_ignored(
    recorder_factory, tmp_path
):
    recorder = recorder_factory()
    recorder.close()
    recorder.push_video(gradient_frame(0, 640, 480), T0)
    recorder.close()
    assert recorder.infos == []
    assert not (tmp_path / str(recorder.recording_id)).exists()


def test_a_restarted_recorder_never_overwrites_sealed_segments(recorder_factory, tmp_path):
    recording_id, data_key = uuid.uuid4(), new_data_key()
    first = recorder_factory(recording_id=recording_id, data_key=data_key, segment_seconds=1.0)
    feed(first, 1.5, t0=T0)
    first.close()
    second = recorder_factory(recording_id=recording_id, data_key=data_key, segment_seconds=1.0)
    feed(second, 1.5, t0=T0 + 5.0)  # restarted 5 s into the recording
    second.close()
    assert [i.index for i in first.infos] == [0, 1]
    assert [i.index for i in second.infos] == [2, 3]
    assert second.infos[0].start_ms >= 5000
    for info in first.infos + second.infos:
        probe(open_segment(tmp_path, recording_id, data_key, info))


def test_two_writers_of_one_side_never_overwrite_each_other(recorder_factory, tmp_path):
    """A media worker presumed dead but still writing, and the one that resumed the call: both
    start from the same free index; each sealed segment keeps its own slot, none is replaced,
    and no index is left empty."""
    import hashlib

    recording_id, data_key = uuid.uuid4(), new_data_key()
    old = recorder_factory(recording_id=recording_id, data_key=data_key, segment_seconds=1.0)
    new = recorder_factory(recording_id=recording_id, data_key=data_key, segment_seconds=1.0)
    feed(old, 2.5, t0=T0)
    feed(new, 2.5, t0=T0 + 3.0)  # the resumed part, 3 s later on the recording's clock
    old.close()
    new.close()
    infos = old.infos + new.infos
    assert sorted(i.index for i in infos) == list(range(6))
    for info in infos:
        stored = (tmp_path / info.path).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == info.sha256  # still the one it sealed
        probe(open_segment(tmp_path, recording_id, data_key, info))
    assert not [p for p in (tmp_path / str(recording_id)).iterdir() if p.suffix == ".tmp"]


def _lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.strip())
    sink.put(None)


@pytest.mark.process
def test_finished_segments_survive_a_killed_server(tmp_path):
    recording_id, data_key = uuid.uuid4(), new_data_key()
    env = {**os.environ, "PYTHONPATH": str(Path(django_settings.BASE_DIR))}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recordings.tests.writer_process",
            str(tmp_path),
            str(recording_id),
            data_key.hex(),
            "3.5",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=django_settings.BASE_DIR,
        env=env,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
    infos: list[SegmentInfo] = []
    try:
        deadline = time.monotonic() + 60
        while len(infos) < 3:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, "recorder process exited early"
            if line.startswith("{"):
                infos.append(SegmentInfo(**json.loads(line)))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdin.close()
    assert child.returncode == -signal.SIGKILL

    stored = sorted(p.name for p in (tmp_path / str(recording_id)).iterdir())
    finished = [n for n in stored if n.endswith(".mkv.enc")]
    assert finished[:3] == [
        "customer-00000.mkv.enc",
        "customer-00001.mkv.enc",
        "customer-00002.mkv.enc",
    ]
    # The segment in progress was only ever in memory: no partial file passes for a segment.
    assert "customer-00003.mkv.enc" not in finished
    for info in infos[:3]:
        media = probe(open_segment(tmp_path, recording_id, data_key, info))
        assert media["video"]
        assert media["audio"]
