"""An insider with the database and the recordings directory cannot cut a recording without a
trace: the sealed manifest (HMAC under a key derived from the recording's data key) names every
segment, each side's segment count, first segment and media end. Export (the management command)
and replay (the QA console's HTTP views) refuse a recording cut at either end, in words, and write
or serve nothing of it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from queueing.models import CallEvent, CallEventKind
from recordings.crypto import manifest_key
from recordings.manifest import manifest_sign
from recordings.models import Recording, RecordingAccess, RecordingSegment, RecordingStatus
from recordings.replay import replay_cache_clear
from recordings.services import (
    recording_data_key,
    recording_finalise,
    recording_manifest_sha256,
)
from tests.factories import staff_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_cache():
    replay_cache_clear()
    yield
    replay_cache_clear()


@pytest.fixture
def sealed(recorded_call):
    """The 2.5 s two-sided recording (3 segments a side), finalised."""
    recording = recording_finalise(recording_id=recorded_call.id)
    assert recording.status == RecordingStatus.FINALISED
    assert not recording.incomplete
    return recording


def export(recording, out: Path) -> str:
    stdout = io.StringIO()
    call_command(
        "recording_export", str(recording.id), str(out), stdout=stdout, stderr=io.StringIO()
    )
    return stdout.getvalue()


def refused_export(recording, out: Path) -> str:
    """The command's refusal; asserts nothing was written and the refusal was audited."""
    before = RecordingAccess.objects.filter(recording=recording, action="export").count()
    with pytest.raises(CommandError) as refused:
        export(recording, out)
    assert not out.exists(), "a refused export wrote files"
    audit = RecordingAccess.objects.filter(recording=recording, action="export")
    assert audit.count() == before + 1
    assert audit.latest("at").detail["ok"] is False
    message = str(refused.value)
    assert "failed verification, nothing exported" in message
    return message


def replay_answers(recording) -> tuple[dict, dict]:
    """What the QA console says of each side (sides.json), and the media links' answers."""
    client = Client()
    client.force_login(staff_user("qa-sealed", "qa"))
    page = client.get(f"/qa/recordings/{recording.id}/")
    assert page.status_code == 200
    replay = page.context["replay"]
    sides = client.get(replay["info"]).json()["sides"]
    media = {side: client.get(url) for side, url in replay["sides"].items()}
    return sides, media


def cut(recording, side: str, index: int) -> RecordingSegment:
    """What an insider does: remove a segment's row and its file."""
    row = RecordingSegment.objects.get(recording=recording, side=side, index=index)
    (Path(recording_dir_of()) / row.path).unlink()
    row.delete()
    return row


def recording_dir_of() -> Path:
    from django.conf import settings

    return Path(settings.RECORDING_DIR)


def end_s(recording, side: str) -> str:
    rows = RecordingSegment.objects.filter(recording=recording, side=side)
    return f"{max(r.start_ms + r.duration_ms for r in rows) / 1000:.1f}"


def test_an_intact_sealed_recording_exports_and_replays(sealed, tmp_path):
    assert len(sealed.manifest_hmac) == 64
    document = sealed.manifest
    assert document["sides"]["customer"]["segments"] == 3
    assert document["sides"]["customer"]["first_index"] == 0
    assert document["sides"]["teller"]["media_end_ms"] == max(
        r.start_ms + r.duration_ms
        for r in RecordingSegment.objects.filter(recording=sealed, side="teller")
    )
    out = tmp_path / "export"
    summary = export(sealed, out)
    assert "customer: 3 segment(s)" in summary
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["manifest_hmac"] == sealed.manifest_hmac
    assert manifest["sealed_manifest"] == document
    assert manifest["incomplete"] is False

    sides, media = replay_answers(sealed)
    assert sides["customer"]["ok"]
    assert sides["teller"]["ok"]
    assert media["customer"].status_code == 200
    assert media["teller"].status_code == 200


def test_a_recording_cut_at_its_start_is_refused(sealed, tmp_path):
    cut(sealed, "customer", 0)
    says = "customer side: segment 0 is missing — the recording was cut at its start"
    assert says in refused_export(sealed, tmp_path / "export")

    sides, media = replay_answers(sealed)
    for side in ("customer", "teller"):  # the recording is refused whole, not one side
        assert not sides[side]["ok"]
        assert says in sides[side]["error"]
        assert "客户侧：第 0 段缺失——录像开头被截去" in sides[side]["error_zh"]
        assert media[side].status_code == 409
        assert says in media[side].content.decode()
    assert not RecordingAccess.objects.filter(action="replay_media").exists()


def test_a_recording_cut_at_its_end_is_refused(sealed, tmp_path):
    sealed_end = end_s(sealed, "teller")
    cut(sealed, "teller", 2)
    now_end = end_s(sealed, "teller")
    says = (
        f"teller side ends at {now_end} s but the sealed manifest says {sealed_end} s — the "
        f"recording was cut at its end"
    )
    assert says in refused_export(sealed, tmp_path / "export")
    sides, media = replay_answers(sealed)
    assert says in sides["teller"]["error"]
    assert (
        f"柜员侧录像止于 {now_end} 秒，但封存清单记载为 {sealed_end} 秒"
        in sides["teller"]["error_zh"]
    )
    assert media["teller"].status_code == 409


def test_a_recording_cut_at_both_ends_is_refused_naming_both(sealed, tmp_path):
    sealed_end = end_s(sealed, "customer")
    cut(sealed, "customer", 0)
    cut(sealed, "customer", 2)
    cut(sealed, "teller", 2)
    message = refused_export(sealed, tmp_path / "export")
    assert "customer side: segment 0 is missing — the recording was cut at its start" in message
    assert f"customer side ends at {end_s(sealed, 'customer')} s but the sealed manifest says " in (
        message
    )
    assert f"says {sealed_end} s — the recording was cut at its end" in message
    assert "teller side ends at" in message
    sides, media = replay_answers(sealed)
    assert "cut at its start" in sides["customer"]["error"]
    assert "cut at its end" in sides["customer"]["error"]
    assert media["customer"].status_code == media["teller"].status_code == 409


def test_a_whole_side_removed_is_refused(sealed, tmp_path):
    for index in range(3):
        cut(sealed, "teller", index)
    assert "teller side: all 3 sealed segments are missing" in refused_export(
        sealed, tmp_path / "export"
    )


def test_rows_edited_and_the_plain_hash_recomputed_are_refused(sealed, tmp_path):
    """The old manifest was a plain SHA-256 over the rows: recomputing it after a cut hid the cut.
    The keyed manifest still names the segments that were there."""
    cut(sealed, "customer", 2)
    cut(sealed, "teller", 2)
    Recording.objects.filter(pk=sealed.pk).update(
        manifest_sha256=recording_manifest_sha256(RecordingSegment.objects.filter(recording=sealed))
    )
    sealed.refresh_from_db()
    message = refused_export(sealed, tmp_path / "export")
    assert "customer side ends at" in message
    assert "teller side ends at" in message


def test_a_manifest_rewritten_to_match_the_cut_does_not_authenticate(sealed, tmp_path):
    cut(sealed, "customer", 0)
    document = sealed.manifest
    customer = document["sides"]["customer"]
    customer["list"] = customer["list"][1:]
    customer["segments"], customer["first_index"] = 2, 1
    # Re-signed with a key of the forger's own (the real one needs the master key).
    forged = manifest_sign(b"\x00" * 32, document)
    Recording.objects.filter(pk=sealed.pk).update(
        manifest=document,
        manifest_hmac=forged,
        manifest_sha256=recording_manifest_sha256(
            RecordingSegment.objects.filter(recording=sealed)
        ),
    )
    sealed.refresh_from_db()
    says = "the sealed manifest does not authenticate under the recording's key"
    assert says in refused_export(sealed, tmp_path / "export")
    sides, _ = replay_answers(sealed)
    assert says in sides["customer"]["error"]


def test_the_real_key_verifies_what_it_signed(sealed):
    """The test above fails for the right reason: the same document under the real key (which
    only a holder of the master key can derive) authenticates."""
    key = manifest_key(recording_data_key(recording=sealed))
    assert manifest_sign(key, sealed.manifest) == sealed.manifest_hmac


@pytest.mark.parametrize("blank", ["manifest_hmac", "manifest"])
def test_a_finalised_recording_without_its_keyed_manifest_is_refused(sealed, tmp_path, blank):
    Recording.objects.filter(pk=sealed.pk).update(**{blank: "" if blank == "manifest_hmac" else {}})
    sealed.refresh_from_db()
    says = "marked finalised but carries no sealed manifest (keyed HMAC)"
    assert says in refused_export(sealed, tmp_path / "export")
    sides, _ = replay_answers(sealed)
    assert says in sides["teller"]["error"]


def test_a_changed_segment_row_is_refused(sealed, tmp_path):
    RecordingSegment.objects.filter(recording=sealed, side="teller", index=1).update(
        duration_ms=9_000
    )
    assert "teller side: segment(s) 1 are not the ones sealed" in refused_export(
        sealed, tmp_path / "export"
    )


def test_a_seal_removed_by_reopening_is_refused(sealed, tmp_path):
    """Setting the status back to "recording" (to dodge the manifest) leaves the timeline's
    record of the sealing: the recording is refused and is not sealed again."""
    cut(sealed, "teller", 2)
    Recording.objects.filter(pk=sealed.pk).update(
        status=RecordingStatus.RECORDING, manifest={}, manifest_hmac=""
    )
    sealed.refresh_from_db()
    assert "its seal was removed" in refused_export(sealed, tmp_path / "export")
    from recordings.services import RecordingError

    with pytest.raises(RecordingError, match="is not sealed again"):
        recording_finalise(recording_id=sealed.id)
    assert CallEvent.objects.filter(kind=CallEventKind.RECORDING_FINALISED).count() == 1


def test_an_unsealed_recording_cut_at_its_start_is_refused(recorded_call, tmp_path):
    cut(recorded_call, "teller", 0)
    says = "teller side: segment 0 is missing — the recording was cut at its start"
    assert says in refused_export(recorded_call, tmp_path / "export")
    sides, _ = replay_answers(recorded_call)
    assert says in sides["teller"]["error"]


def test_an_unsealed_recording_exports_with_a_warning(recorded_call, tmp_path):
    stderr = io.StringIO()
    call_command(
        "recording_export",
        str(recorded_call.id),
        str(tmp_path / "export"),
        stdout=io.StringIO(),
        stderr=stderr,
    )
    assert "not sealed yet" in stderr.getvalue()
    assert "its end cannot be verified" in stderr.getvalue()
