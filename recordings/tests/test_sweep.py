"""A recording whose media worker died does not stay open: the queue ticker's housekeeping job
(``recordings.services.recordings_sweep``, a listener of ``events.Housekeeping``) seals it as
incomplete, with the reason, adopting sealed segment files that never got a row if — and only
if — they authenticate. The timeline, the QA list and the replay page say "incomplete: <reason>".
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from queueing import ticker
from queueing.models import Call, CallEvent, CallEventKind, CallStatus, MediaWorker
from recordings.models import Recording, RecordingSegment, RecordingStatus
from recordings.services import recordings_sweep
from tests.factories import staff_user
from videobank import events

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = "media.test-worker-a"


class _HeldLease:
    def held(self) -> bool:
        return True


def tick_housekeeping(monkeypatch) -> None:
    """One tick of the queue ticker that runs its housekeeping jobs (the first tick does)."""
    monkeypatch.setattr(ticker, "_lease", _HeldLease())
    monkeypatch.setattr(ticker, "_ticks", 0)
    assert ticker.tick_once(standalone=True)


def place(recording, *, status: str, ended_ago_s: float | None, heartbeat_ago_s: float | None):
    """The call's state and its media worker's last heartbeat (None: no worker row)."""
    now = timezone.now()
    Call.objects.filter(pk=recording.call_id).update(
        status=status,
        media_channel=WORKER,
        ended_at=None if ended_ago_s is None else now - timedelta(seconds=ended_ago_s),
    )
    if heartbeat_ago_s is not None:
        MediaWorker.objects.create(
            channel_name=WORKER,
            host="media-host-a",
            pid=4242,
            heartbeat_at=now - timedelta(seconds=heartbeat_ago_s),
        )


def test_the_sweep_is_a_queue_ticker_job():
    assert recordings_sweep in events.listeners(events.Housekeeping)


def test_a_dead_workers_recording_is_sealed_incomplete_with_the_reason(
    recorded_call, recording_dir, monkeypatch, tmp_path
):
    # The worker registered two of the teller's segments, sealed the third but died before its
    # row was written; and a file that is not a sealed segment of this recording lies beside.
    orphan = RecordingSegment.objects.get(recording=recorded_call, side="teller", index=2)
    orphan_sha = orphan.sha256
    orphan.delete()
    directory = Path(recording_dir) / str(recorded_call.id)
    (directory / "customer-00003.mkv.enc").write_bytes(b"VBSEG1" + b"\x00" * 64)
    place(recorded_call, status=CallStatus.ENDED, ended_ago_s=5, heartbeat_ago_s=30)

    tick_housekeeping(monkeypatch)

    recording = Recording.objects.get(pk=recorded_call.pk)
    assert recording.status == RecordingStatus.FINALISED
    assert recording.incomplete
    reason = recording.incomplete_reason["en"]
    assert "media worker media-host-a:4242 stopped at" in reason
    assert "customer-00003.mkv.enc failed authentication and was left out" in reason
    assert "媒体服务 media-host-a:4242 于" in recording.incomplete_reason["zh"]
    # The authentic file was adopted; the forged one was not.
    adopted = RecordingSegment.objects.get(recording=recording, side="teller", index=2)
    assert adopted.sha256 == orphan_sha
    assert adopted.video_frames > 0
    assert not RecordingSegment.objects.filter(recording=recording, index=3).exists()
    assert recording.manifest["complete"] is False
    assert recording.manifest["sides"]["teller"]["segments"] == 3

    [event] = CallEvent.objects.filter(kind=CallEventKind.RECORDING_INCOMPLETE)
    assert event.data["recording_id"] == str(recording.id)
    assert "media worker media-host-a:4242 stopped at" in event.data["reason"]
    assert not CallEvent.objects.filter(kind=CallEventKind.RECORDING_FINALISED).exists()

    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff_user("qa-sweep", "qa"))
    listed = client.get("/qa/").content.decode()
    assert "Incomplete: media worker media-host-a:4242 stopped at" in listed
    page = client.get(f"/qa/recordings/{recording.id}/")
    assert 'data-testid="replay-incomplete"' in page.content.decode()
    assert "Incomplete: media worker media-host-a:4242 stopped at" in page.content.decode()
    kinds = [event["kind"] for event in page.context["replay"]["timeline"]]
    assert kinds[-1] == CallEventKind.RECORDING_INCOMPLETE
    sides = client.get(page.context["replay"]["info"]).json()["sides"]
    assert sides["customer"]["ok"]
    assert sides["teller"]["ok"]

    stderr = io.StringIO()
    out = tmp_path / "export"
    call_command(
        "recording_export", str(recording.id), str(out), stdout=io.StringIO(), stderr=stderr
    )
    assert "sealed as incomplete: media worker media-host-a:4242 stopped at" in stderr.getvalue()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["incomplete"] is True
    assert manifest["sealed_manifest"]["sides"]["teller"]["segments"] == 3

    # A second sweep finds nothing left to do.
    tick_housekeeping(monkeypatch)
    assert CallEvent.objects.filter(kind=CallEventKind.RECORDING_INCOMPLETE).count() == 1


@pytest.mark.parametrize(
    ("status", "ended_ago_s", "heartbeat_ago_s"),
    [
        (CallStatus.CONNECTED, None, 1),  # live call, live worker
        (CallStatus.WAITING, None, 1),  # teller dropped; the worker keeps the customer's side
        (CallStatus.WAITING, None, 30),  # worker died; the next one resumes it (below the bound)
        (CallStatus.ENDED, 5, 1),  # just ended; its worker is finalising
    ],
)
def test_a_recording_still_in_hand_is_left_open(
    recorded_call, monkeypatch, status, ended_ago_s, heartbeat_ago_s
):
    place(recorded_call, status=status, ended_ago_s=ended_ago_s, heartbeat_ago_s=heartbeat_ago_s)
    tick_housekeeping(monkeypatch)
    assert Recording.objects.get(pk=recorded_call.pk).status == RecordingStatus.RECORDING
    assert not CallEvent.objects.filter(kind=CallEventKind.RECORDING_INCOMPLETE).exists()


def test_a_finalisation_that_never_came_is_sealed_after_the_grace(
    recorded_call, monkeypatch, settings
):
    settings.RECORDING_SWEEP_GRACE_S = 60
    place(recorded_call, status=CallStatus.ENDED, ended_ago_s=61, heartbeat_ago_s=1)
    tick_housekeeping(monkeypatch)
    recording = Recording.objects.get(pk=recorded_call.pk)
    assert recording.incomplete
    assert "did not finalise the recording within 60 s" in recording.incomplete_reason["en"]


def test_an_open_call_whose_worker_fell_silent_long_ago_is_sealed(
    recorded_call, monkeypatch, settings
):
    settings.RECORDING_SWEEP_STALE_S = 600
    place(recorded_call, status=CallStatus.CONNECTED, ended_ago_s=None, heartbeat_ago_s=601)
    tick_housekeeping(monkeypatch)
    recording = Recording.objects.get(pk=recorded_call.pk)
    assert recording.incomplete
    assert "media worker media-host-a:4242 stopped at" in recording.incomplete_reason["en"]


def test_a_worker_gone_without_a_trace_is_sealed_after_the_grace(
    recorded_call, monkeypatch, settings
):
    settings.RECORDING_SWEEP_GRACE_S = 60
    place(recorded_call, status=CallStatus.ENDED, ended_ago_s=61, heartbeat_ago_s=None)
    tick_housekeeping(monkeypatch)
    recording = Recording.objects.get(pk=recorded_call.pk)
    assert recording.incomplete
    assert f"media worker {WORKER} stopped at" in recording.incomplete_reason["en"]
