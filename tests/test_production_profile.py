"""The production profile as deployed: separate processes sharing one Postgres and one Redis.

Two server (daphne) processes, one media worker and one Celery worker. A call placed through
server A is answered through server B and its media flows both ways through the media worker;
the Celery worker finalises the recording. If the media worker dies mid-call, the segments it had
finished survive, the queue ticker's sweep seals the recording as incomplete with the reason, and
it exports to playable files. If the call goes on through a second media worker, the recording
continues there on the same clock and exports whole.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import av
import pytest
from django.conf import settings

from queueing.models import Call, CallStatus, MediaWorker
from queueing.selectors import media_worker_alive
from recordings.export import recording_export
from recordings.models import Recording, RecordingSegment, RecordingStatus, Side
from signaling.client import CustomerClient, TellerClient
from tests.calls import answered_call, hang_up, orm, teller_cookie, until
from tests.factories import staff_user
from tests.livestack import LiveStack

pytestmark = [
    pytest.mark.production,
    pytest.mark.skipif(
        settings.PROFILE != "production",
        reason="needs the production profile (DATABASE_URL + REDIS_URL); CI runs it",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def start_stack(transactional_db, no_shared_stack, tmp_path):
    """Starts two servers, a media worker and a Celery worker with the environment of the moment
    (so a test can set a knob first); stops them after the test, showing their logs if it failed.
    """
    stacks: list[LiveStack] = []

    def start(media_workers: int = 1) -> LiveStack:
        stack = LiveStack(
            tmp_path / "stack-logs", servers=2, media_workers=media_workers, celery=True
        )
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in stacks:
        print(stack.logs())  # pytest shows it only when the test failed
        stack.stop()


async def _teller_cookie(username: str) -> str:
    return await orm(lambda: teller_cookie(staff_user(username, "teller")))


def _registered(recording_id) -> dict[str, list[RecordingSegment]]:
    """The recording's segment rows, by side."""
    rows = list(RecordingSegment.objects.filter(recording_id=recording_id))
    return {side: [row for row in rows if row.side == side] for side in Side.values}


async def test_call_placed_through_one_server_is_answered_through_another(start_stack):
    stack = start_stack()
    server_a, server_b = stack.urls
    cookies = await _teller_cookie("teller-on-b")

    async with (
        CustomerClient(server_a) as customer,
        TellerClient(server_b, cookies=cookies) as teller,
    ):
        call_id = await answered_call(customer, teller)
        await asyncio.gather(
            customer.wait_media(video=30, audio=50, timeout=30),
            teller.wait_media(video=30, audio=50, timeout=30),
        )
        ended = await hang_up(customer, teller, call_id)

    assert [message["call_id"] for message in ended] == [call_id, call_id]
    call = await orm(Call.objects.get, pk=call_id)
    assert call.status == CallStatus.ENDED
    assert call.end_reason == "hangup_teller"
    # The media went through the separate media worker, not through either server.
    worker_log = stack.process("media-0").log()
    assert f"media worker listening on {call.media_channel}" in worker_log

    def finalised():
        return Recording.objects.filter(call_id=call_id, status=RecordingStatus.FINALISED).first()

    recording = await until(
        lambda: orm(finalised), timeout=30, what="recording finalised by the Celery worker"
    )
    assert len(recording.manifest_sha256) == 64
    segments = await orm(_registered, recording.id)
    for side, rows in segments.items():
        assert sum(row.video_frames for row in rows) > 0, (side, rows)
        assert sum(row.audio_frames for row in rows) > 0, (side, rows)


def _decoded_frames(path) -> dict[str, int]:
    frames = {"video": 0, "audio": 0}
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type in frames]
        for frame in container.decode(*streams):
            frames["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    return frames


def _a_dead_worker_is_noticed_soon(monkeypatch, settings) -> None:
    """A killed media worker counts as dead after 4 s without a heartbeat (beats every second)
    and the ticker's sweep runs every 2 s, in the servers and in this process: the tests wait for
    what a bank's defaults (10 s, 10 s) would make happen, sooner."""
    for name, value in (
        ("MEDIA_WORKER_HEARTBEAT_S", 1.0),
        ("MEDIA_WORKER_STALE_S", 4.0),
        ("QUEUE_HOUSEKEEPING_S", 2.0),
    ):
        monkeypatch.setenv(name, str(value))
        setattr(settings, name, value)


async def test_finished_segments_survive_a_media_worker_killed_mid_call(
    start_stack, monkeypatch, settings, tmp_path
):
    monkeypatch.setenv("RECORDING_SEGMENT_SECONDS", "1")
    _a_dead_worker_is_noticed_soon(monkeypatch, settings)
    stack = start_stack()
    cookies = await _teller_cookie("teller-killed")

    async with (
        CustomerClient(stack.urls[0]) as customer,
        TellerClient(stack.urls[1], cookies=cookies) as teller,
    ):
        call_id = await answered_call(customer, teller)
        await asyncio.gather(
            customer.wait_media(video=30, audio=50, timeout=30),
            teller.wait_media(video=30, audio=50, timeout=30),
        )
        recording = await orm(Recording.objects.get, call_id=call_id)

        async def three_segments_a_side():
            segments = await orm(_registered, recording.id)
            return all(len(rows) >= 3 for rows in segments.values())

        await until(three_segments_a_side, timeout=30, what="three finished segments a side")
        worker_row = await orm(
            lambda: MediaWorker.objects.get(channel_name=call_id_channel(call_id))
        )
        media_worker = stack.process("media-0").popen
        media_worker.kill()
        assert await asyncio.to_thread(media_worker.wait, 10) == -9

    # Nobody lived to finalise it: the queue ticker's sweep seals it as incomplete, saying why.
    def sealed():
        return Recording.objects.filter(pk=recording.pk, status=RecordingStatus.FINALISED).first()

    recording = await until(lambda: orm(sealed), timeout=60, what="recording sealed by the sweep")
    assert recording.incomplete
    assert (
        f"media worker {worker_row.host}:{worker_row.pid} stopped at"
        in recording.incomplete_reason["en"]
    )
    registered = await orm(_registered, recording.id)

    out_dir = tmp_path / "export"
    result = await orm(recording_export, recording=recording, out_dir=out_dir, actor="test")
    assert any("sealed as incomplete: media worker" in w for w in result.warnings)
    for side in Side.values:
        summary = result.sides[side]
        assert summary.segments == len(registered[side]) >= 3, (side, summary)
        frames = await asyncio.to_thread(_decoded_frames, out_dir / summary.file)
        # Every video frame of the finished segments plays; and at least a second of each.
        assert frames["video"] >= sum(row.video_frames for row in registered[side]), frames
        assert frames["video"] >= 15, (side, frames)
        assert frames["audio"] >= 50, (side, frames)


def call_id_channel(call_id: str) -> str:
    return Call.objects.get(pk=call_id).media_channel


def _worker_process(stack: LiveStack, channel: str):
    return next(
        p
        for p in stack.processes
        if p.name.startswith("media-") and f"media worker listening on {channel}" in p.log()
    )


def _video_times(path) -> list[float]:
    with av.open(str(path)) as container:
        return sorted(
            float(packet.pts * packet.time_base)
            for packet in container.demux(container.streams.video[0])
            if packet.pts is not None and packet.size
        )


async def test_a_recording_continues_on_a_second_media_worker_on_one_clock(
    start_stack, monkeypatch, settings, tmp_path
):
    """Worker A is killed mid-call; the teller reconnects and takes the call again, which now
    goes through worker B. The recording continues on B: both parts export and replay on one
    clock, B's after A's, the gap between them no wider than the switch."""
    monkeypatch.setenv("RECORDING_SEGMENT_SECONDS", "1")
    _a_dead_worker_is_noticed_soon(monkeypatch, settings)
    stack = start_stack(media_workers=2)
    cookies = await _teller_cookie("teller-moved")

    async with CustomerClient(stack.urls[0]) as customer:
        teller = TellerClient(stack.urls[1], cookies=cookies)
        await teller.connect()
        call_id = await answered_call(customer, teller)
        await asyncio.gather(
            customer.wait_media(video=30, audio=50, timeout=30),
            teller.wait_media(video=30, audio=50, timeout=30),
        )
        recording = await orm(Recording.objects.get, call_id=call_id)

        async def segments_a_side(count: int):
            segments = await orm(_registered, recording.id)
            return all(len(rows) >= count for rows in segments.values()) and segments

        part_a = await until(lambda: segments_a_side(2), timeout=30, what="A's segments")
        first_channel = await orm(call_id_channel, call_id)
        worker_a = _worker_process(stack, first_channel)
        worker_a.popen.kill()
        killed_at = time.time()
        assert await asyncio.to_thread(worker_a.popen.wait, 10) == -9

        async def a_is_dead():
            return not await orm(media_worker_alive, first_channel)

        await until(a_is_dead, timeout=30, what="worker A's heartbeat stale")
        # The teller's connection drops and comes back: the call is queued at the head again
        # and answered through the live worker B.
        await teller.close()
        await customer.wait_for("call.requeued")
        teller = TellerClient(stack.urls[1], cookies=cookies)
        await teller.connect()
        await teller.go_available()
        await teller.next_offer(call_id)
        await teller.accept(call_id)
        await customer.wait_for("call.answered")
        assert await orm(call_id_channel, call_id) != first_channel
        for client in (customer, teller):
            if client.pc is not None:
                await client.pc.close()
            client.received = {"audio": 0, "video": 0}
        await asyncio.gather(customer.start_media(call_id), teller.start_media(call_id))
        resumed_at = time.time()
        await asyncio.gather(
            customer.wait_media(video=30, audio=50, timeout=30),
            teller.wait_media(video=30, audio=50, timeout=30),
        )
        had = {side: len(rows) for side, rows in part_a.items()}
        await until(lambda: segments_a_side(max(had.values()) + 3), timeout=30, what="B's segments")
        await hang_up(customer, teller, call_id)
        await teller.close()

    def finalised():
        return Recording.objects.filter(call_id=call_id, status=RecordingStatus.FINALISED).first()

    recording = await until(lambda: orm(finalised), timeout=30, what="recording finalised")
    registered = await orm(_registered, recording.id)
    out_dir = tmp_path / "export"
    result = await orm(recording_export, recording=recording, out_dir=out_dir, actor="test")
    switch_s = resumed_at - killed_at
    call = await orm(Call.objects.get, pk=call_id)
    call_s = (call.ended_at - recording.started_at).total_seconds()
    for side in Side.values:
        rows = registered[side]
        assert [row.index for row in rows] == list(range(len(rows))), side
        summary = result.sides[side]
        # No video frame of either part is dropped in the join.
        assert summary.video_packets == sum(row.video_frames for row in rows), (side, summary)
        for times in (
            _video_times(out_dir / summary.file),
            await orm(_replayed_times, recording, side),
        ):
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            # One clock: the widest hole is the switch (plus A's unsealed last second), and
            # B's part comes after A's instead of on top of it.
            assert max(gaps) <= switch_s + 1.0 + 0.5, (side, max(gaps), switch_s)
            assert max(gaps) >= 1.0, (side, max(gaps))
            # Both parts are there: what plays spans the call but for the switch.
            assert times[-1] <= call_s + 1.0, (side, times[-1], call_s)
            assert times[-1] - times[0] >= call_s - switch_s - 3.0, (side, times, call_s)


def _replayed_times(recording, side: str) -> list[float]:
    import io

    from recordings.replay import replay_side

    media = replay_side(recording=recording, side=side)
    with av.open(io.BytesIO(media.data), mode="r") as container:
        return sorted(
            float(packet.pts * packet.time_base) + media.start_ms / 1000
            for packet in container.demux(container.streams.video[0])
            if packet.pts is not None and packet.size
        )


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our http:// URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_production_servers_mount_no_stub_and_its_stubs_no_developer_endpoint(live_stack):
    """The bank's daphne answers no /ext/ path; the stub processes of the stack (the outside
    systems' stand-ins, on ports of their own) serve their API, not their fault switches."""
    for url in live_stack.urls:
        assert _status(f"{url}/healthz") == 200
        for path in (
            "/ext/core-bank/v1/health",
            "/ext/core-bank/v1/_control",
            "/ext/core-bank/v1/_dev/otp?customer_ref=CIF000000001",
            "/ext/national-id/v1/health",
            "/ext/national-id/v1/_control",
        ):
            assert _status(url + path) == 404, path
    assert _status(f"{live_stack.corebank_url}/health") == 200
    assert _status(f"{live_stack.national_stub_url}/health") == 200
    for dev in (
        f"{live_stack.corebank_url}/_control",
        f"{live_stack.corebank_url}/_dev/otp?customer_ref=CIF000000001",
        f"{live_stack.national_stub_url}/_control",
    ):
        assert _status(dev) == 404, dev
