"""Fixtures of the recordings tests: a real recording of synthetic media, sealed on disk."""

import base64
import os

import pytest

from queueing.models import Business, Call
from recordings.models import RecordingSegment
from recordings.services import recording_data_key, recording_recorder, recording_start
from recordings.tests.synthetic import feed

T0 = 500.0
SECONDS = 2.5


@pytest.fixture
def recording_dir(settings, tmp_path):
    settings.RECORDING_DIR = tmp_path / "recordings"
    settings.RECORDING_MASTER_KEYS = "k1:" + base64.b64encode(os.urandom(32)).decode()
    return settings.RECORDING_DIR


@pytest.fixture
def recorded_call(recording_dir, catalogue):
    """A call whose two sides were recorded for 2.5 s in 1 s segments, registered by the writer."""
    business = Business.objects.create(key="rec-test", name_zh="录像测试", name_en="Recording test")
    call = Call.objects.create(business=business)
    recording = recording_start(call_id=call.id)
    assert recording_start(call_id=call.id) == recording  # idempotent
    data_key = recording_data_key(recording=recording)
    recorders = [
        recording_recorder(
            recording_id=recording.id,
            side=side,
            data_key=data_key,
            t0=T0,
            segment_seconds=1.0,
            queue_size=4096,
        )
        for side in ("customer", "teller")
    ]
    for recorder in recorders:
        feed(recorder, SECONDS, t0=T0)
    for recorder in recorders:
        recorder.close()
        assert recorder.stats["errors"] == 0
    assert RecordingSegment.objects.filter(recording=recording).count() == 6
    return recording
