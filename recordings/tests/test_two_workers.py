"""A recording resumed on a second media worker keeps one clock: worker A records the first
part, the call moves to worker B (another machine: its monotonic clock has another origin, and it
opens the session seconds later), B records the rest. Export and replay hold both parts, on one
clock: B's part follows A's with no gap wider than the switch, nothing dropped as overlap.

Before, B restarted the recording clock at its own start: its segments began again at 0, and the
join dropped every packet of B's part as "overlapping" A's."""

from __future__ import annotations

import io
import types
from datetime import timedelta
from pathlib import Path

import av
import pytest
from channels.layers import InMemoryChannelLayer
from django.core.management import call_command
from django.utils import timezone

from queueing.models import Business, Call, CallStatus
from recordings.models import Recording, RecordingSegment
from recordings.replay import replay_cache_clear, replay_side
from recordings.services import recording_finalise, recording_start
from recordings.tests.synthetic import feed
from signaling.media import worker as media_worker

pytestmark = pytest.mark.django_db(transaction=True)

PART_A_S = 2.5  # recorded on worker A
SWITCH_S = 3.0  # worker B opens the session this long after A did
PART_B_S = 2.0  # recorded on worker B


def video_times(path_or_bytes) -> list[float]:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with av.open(source, mode="r") as container:
        return sorted(
            float(packet.pts * packet.time_base)
            for packet in container.demux(container.streams.video[0])
            if packet.pts is not None and packet.size
        )


@pytest.fixture
def connected_call(recording_dir, catalogue, settings):
    settings.RECORDING_SEGMENT_SECONDS = 1.0
    business = Business.objects.create(key="two-workers", name_zh="两台", name_en="Two workers")
    call = Call.objects.create(business=business, status=CallStatus.CONNECTED)
    recording_start(call_id=call.id)
    return call


async def record_part(worker, call_id: str, seconds: float, *, first: bool) -> dict:
    """Open (or resume) the call's session on ``worker`` and feed both sides ``seconds`` of
    media; then the session stops (the call moves on) without finalising. The first session's
    media begins at its clock's origin; a resumed session's media begins as the offer reaches
    the worker, read on the worker's own clock (so a session that restarted the recording's
    clock would place it at 0). Returns the frames pushed."""
    offer_at = media_worker.time.monotonic()
    session = await worker._open(call_id, "reply.channel")
    assert session is not None
    assert session.recording is not None
    arrival = session.t0 if first else offer_at
    pushed = {}
    for side, recorder in session.recorders.items():
        pushed[side] = feed(recorder, seconds, t0=arrival, video_from_s=0.0, small_until_s=0.0)
    await session.close(finalise=False)
    for recorder in session.recorders.values():
        assert recorder.stats["errors"] == 0
        assert recorder.stats["video_dropped"] == 0
    return pushed


@pytest.fixture
async def shared_thread_closed():
    """The worker's and the test's database calls run on the shared sync thread: close its
    connection afterwards (the test database is dropped at the end of the session)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


async def test_a_recording_resumed_on_another_worker_replays_whole(
    connected_call, monkeypatch, tmp_path, shared_thread_closed
):
    from asgiref.sync import sync_to_async

    call_id = str(connected_call.id)
    worker_a = media_worker.MediaWorker(InMemoryChannelLayer(), "media.worker-a")
    pushed_a = await record_part(worker_a, call_id, PART_A_S, first=True)

    # Worker B runs on another machine: its monotonic clock counts from elsewhere, and it opens
    # the session SWITCH_S after A did (the call reached it after A stopped).
    started_at = (await sync_to_async(Recording.objects.get)(call_id=call_id)).started_at
    real_monotonic, real_now = media_worker.time.monotonic, timezone.now
    shift = started_at + timedelta(seconds=SWITCH_S) - real_now()
    monkeypatch.setattr(
        media_worker, "time", types.SimpleNamespace(monotonic=lambda: real_monotonic() + 7_000.0)
    )
    monkeypatch.setattr(
        media_worker, "timezone", types.SimpleNamespace(now=lambda: real_now() + shift)
    )
    worker_b = media_worker.MediaWorker(InMemoryChannelLayer(), "media.worker-b")
    pushed_b = await record_part(worker_b, call_id, PART_B_S, first=False)
    monkeypatch.undo()

    recording = await sync_to_async(Recording.objects.get)(call_id=call_id)
    assert recording.clock_fixed
    rows = await sync_to_async(
        lambda: list(
            RecordingSegment.objects.filter(recording=recording, side="customer").order_by("index")
        )
    )()
    # A's three 1 s segments, then B's, continuing the indexes and the clock.
    assert [row.index for row in rows] == list(range(len(rows)))
    assert len(rows) >= 5
    assert rows[3].start_ms == pytest.approx(SWITCH_S * 1000, abs=50)
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.start_ms >= before.start_ms + before.duration_ms - 30

    recording = await sync_to_async(recording_finalise)(recording_id=recording.id)
    assert not recording.incomplete

    out = tmp_path / "export"
    await sync_to_async(call_command)(
        "recording_export", str(recording.id), str(out), stdout=io.StringIO()
    )
    replay_cache_clear()
    for side in ("customer", "teller"):
        exported = video_times(Path(out) / f"{side}.mkv")
        media = await sync_to_async(replay_side)(recording=recording, side=side)
        replayed = [t + media.start_ms / 1000 for t in video_times(media.data)]
        for times in (exported, replayed):
            # Every frame of both parts is there: none dropped as "overlap".
            assert len(times) == pushed_a[side]["video"] + pushed_b[side]["video"]
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            # The widest gap is the switch itself (A's last frame to B's first), no wider.
            assert max(gaps) == pytest.approx(SWITCH_S - PART_A_S + 1 / 15, abs=0.05)
            assert times[0] == pytest.approx(0.0, abs=0.05)
            assert times[-1] == pytest.approx(SWITCH_S + PART_B_S - 1 / 15, abs=0.1)
        # Replay lays the side on the recording's clock exactly as the export does.
        assert replayed == pytest.approx(exported, abs=0.002)
        assert media.duration_ms == pytest.approx((SWITCH_S + PART_B_S) * 1000, abs=150)
