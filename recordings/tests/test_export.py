import io
import json
import stat
from pathlib import Path

import av
import pytest
from django.core.management import CommandError, call_command

from queueing.models import CallEvent, CallEventKind
from recordings.models import RecordingAccess, RecordingSegment, RecordingStatus
from recordings.services import recording_finalise
from recordings.tasks import recording_finalise_task

T0 = 500.0
SECONDS = 2.5

# The writer registers segments from its own thread, on its own connection: the test's data
# must be committed for it to see the recording.
pytestmark = pytest.mark.django_db(transaction=True)


def media_of(path: Path) -> dict:
    spans: dict[str, list[float]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                spans[packet.stream.type].append(float(packet.pts * packet.time_base))
        kinds = {s.type for s in container.streams}
    return {"kinds": kinds, **spans}


def export(target: str, out: Path) -> str:
    stdout = io.StringIO()
    call_command("recording_export", target, str(out), stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def test_export_of_an_unfinalised_recording(recorded_call, tmp_path):
    out = tmp_path / "export"
    summary = export(str(recorded_call.id), out)

    assert "customer: 3 segment(s)" in summary
    assert "teller: 3 segment(s)" in summary
    for side in ("customer", "teller"):
        media = media_of(out / f"{side}.mkv")
        assert media["kinds"] == {"video", "audio"}
        # One continuous file on the recording clock: 0.25 s (first video) to 2.5 s.
        assert media["video"] == sorted(media["video"])
        assert media["video"][0] == pytest.approx(0.25, abs=0.01)
        assert max(media["video"]) - min(media["audio"]) == pytest.approx(SECONDS, rel=0.1)
        assert len(media["video"]) == round((SECONDS - 0.25) * 15)
        for index in range(3):
            assert media_of(out / "segments" / f"{side}-{index:05d}.mkv")["video"]

    # Decrypted video is private to whoever exported it.
    assert stat.S_IMODE((out / "customer.mkv").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "segments").stat().st_mode) == 0o700

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == RecordingStatus.RECORDING
    assert len(manifest["segments"]) == 6
    assert all(s["registered"] for s in manifest["segments"])
    timeline = json.loads((out / "timeline.json").read_text())
    assert [e["kind"] for e in timeline["events"]] == [CallEventKind.RECORDING_STARTED]
    assert timeline["events"][0]["offset_ms"] >= 0

    access = RecordingAccess.objects.get(recording=recorded_call)
    assert access.action == "export"
    assert access.actor.startswith("cli:")
    assert access.detail["ok"] is True


def test_export_by_call_id_after_finalising(recorded_call, tmp_path):
    manifest_sha256 = recording_finalise_task(str(recorded_call.id))
    finalised = recording_finalise(recording_id=recorded_call.id)
    assert finalised.manifest_sha256 == manifest_sha256
    assert finalised.status == RecordingStatus.FINALISED
    assert len(finalised.manifest_sha256) == 64
    assert CallEvent.objects.filter(kind=CallEventKind.RECORDING_FINALISED).count() == 1

    out = tmp_path / "export"
    export(str(recorded_call.call_id), out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["manifest_sha256"] == finalised.manifest_sha256
    timeline = json.loads((out / "timeline.json").read_text())
    assert [e["kind"] for e in timeline["events"]][-1] == CallEventKind.RECORDING_FINALISED


def test_a_tampered_segment_fails_the_export(recorded_call, recording_dir, tmp_path):
    stored = recording_dir / str(recorded_call.id) / "teller-00001.mkv.enc"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x40
    stored.write_bytes(bytes(data))

    out = tmp_path / "export"
    with pytest.raises(CommandError, match=r"teller:1 .*SHA-256 mismatch"):
        export(str(recorded_call.id), out)
    assert not (out / "teller.mkv").exists()
    assert not (out / "customer.mkv").exists()
    access = RecordingAccess.objects.get(recording=recorded_call)
    assert access.detail["ok"] is False


def test_swapped_segments_fail_even_with_matching_hashes(recorded_call, recording_dir, tmp_path):
    """Someone with database access swaps two files and fixes up the hashes: the AAD catches it."""
    first, second = (
        RecordingSegment.objects.get(recording=recorded_call, side="customer", index=i)
        for i in (0, 1)
    )
    root = Path(recording_dir)
    a, b = (root / first.path).read_bytes(), (root / second.path).read_bytes()
    (root / first.path).write_bytes(b)
    (root / second.path).write_bytes(a)
    first.sha256, second.sha256 = second.sha256, first.sha256
    first.save()
    second.save()

    with pytest.raises(CommandError, match="failed authentication"):
        export(str(recorded_call.id), tmp_path / "export")


def test_a_deleted_segment_is_reported(recorded_call, recording_dir, tmp_path):
    RecordingSegment.objects.filter(recording=recorded_call, side="customer", index=1).delete()
    (recording_dir / str(recorded_call.id) / "customer-00001.mkv.enc").unlink()
    with pytest.raises(CommandError, match=r"customer: segment index\(es\) \[1\] missing"):
        export(str(recorded_call.id), tmp_path / "export")


def test_unknown_recording(recording_dir, tmp_path):
    with pytest.raises(CommandError, match="no recording"):
        export("00000000-0000-4000-8000-00000000dead", tmp_path / "export")
