"""The QA console: listing, replaying (verified, decrypted in memory, ranged) and its audit."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from django.test import Client
from django.utils import timezone

from queueing.models import Call, CallEvent, CallEventKind
from recordings.models import RecordingAccess, RecordingSegment
from recordings.replay import ReplayError, replay_cache_clear, replay_side
from recordings.services import recording_finalise
from tests.factories import staff_user

from .conftest import SECONDS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_cache():
    replay_cache_clear()
    yield
    replay_cache_clear()


def probe(data: bytes) -> dict:
    """What a player would find in the file: tracks, first and last timestamps per kind."""
    times: dict[str, list[float]] = {"video": [], "audio": []}
    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.format.name.startswith("mov")
        for packet in container.demux():
            if packet.pts is not None:
                times[packet.stream.type].append(float(packet.pts * packet.time_base))
        codecs = {s.type: s.codec_context.name for s in container.streams}
    return {"codecs": codecs, **times}


def reviewer(name: str = "qa-reviewer") -> Client:
    client = Client()
    client.force_login(staff_user(name, "qa"))
    return client


def tamper(recording_dir: Path, recording) -> None:
    segment = RecordingSegment.objects.filter(recording=recording, side="teller").first()
    path = Path(recording_dir) / segment.path
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))


def test_each_side_is_one_playable_mp4_starting_at_zero(recorded_call):
    for side in ("customer", "teller"):
        media = replay_side(recording=recorded_call, side=side)
        found = probe(media.data)
        assert found["codecs"] == {"video": "h264", "audio": "opus"}
        assert found["video"]
        assert found["audio"]
        assert min(found["video"] + found["audio"]) < 0.05  # the file starts at its side's start
        length = max(found["video"]) - min(found["video"])
        assert length == pytest.approx(SECONDS, rel=0.15)
        assert media.duration_ms == pytest.approx(SECONDS * 1000, rel=0.15)
        assert -100 < media.start_ms < 500  # where it sits in the recording (Opus primes early)


def test_a_tampered_segment_is_not_replayed(recorded_call, recording_dir):
    tamper(recording_dir, recorded_call)
    with pytest.raises(ReplayError, match="failed verification.*SHA-256 mismatch"):
        replay_side(recording=recorded_call, side="customer")


def test_the_list_is_for_reviewers_only(recorded_call):
    response = reviewer().get("/qa/")
    assert response.status_code == 200
    assert str(recorded_call.id) in response.content.decode()
    teller = Client()
    teller.force_login(staff_user("teller-x", "teller"))
    assert teller.get("/qa/").status_code == 403
    assert teller.get(f"/qa/recordings/{recorded_call.id}/").status_code == 403
    anonymous = Client().get("/qa/")
    assert anonymous.status_code == 302
    assert "/console/login/" in anonymous["Location"]
    assert not RecordingAccess.objects.exists()  # refused looks are not replays


def test_a_reviewer_signing_in_lands_on_the_qa_console():
    response = reviewer().get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/qa/"


def test_filters(recorded_call):
    client = reviewer()
    call_id = str(recorded_call.call_id)
    found = client.get("/qa/", {"call": call_id[:8]}).content.decode()
    assert str(recorded_call.id) in found
    # A prefix neither the call's nor the recording's id starts with (the filter takes both).
    other = next(c for c in "0123" if c not in (call_id[0], str(recorded_call.id)[0]))
    assert str(recorded_call.id) not in client.get("/qa/", {"call": other}).content.decode()
    day = timezone.localdate(recorded_call.started_at).isoformat()  # the bank's day
    assert str(recorded_call.id) in client.get("/qa/", {"day": day}).content.decode()
    assert str(recorded_call.id) not in client.get("/qa/", {"teller": "nobody"}).content.decode()
    bad = client.get("/qa/", {"day": "27/11/2026", "call": "'; drop"})
    assert bad.status_code == 200
    assert 'data-testid="qa-filter-error"' in bad.content.decode()


def open_replay(client: Client, recording) -> dict:
    response = client.get(f"/qa/recordings/{recording.id}/")
    assert response.status_code == 200
    return response.context["replay"]


def test_replay_page_is_audited_and_its_links_serve_ranges(recorded_call):
    client = reviewer()
    replay = open_replay(client, recorded_call)
    page = RecordingAccess.objects.get(action="replay")
    assert page.actor == "qa-reviewer"
    assert page.user.username == "qa-reviewer"
    kinds = [event["kind"] for event in replay["timeline"]]
    assert kinds == list(
        CallEvent.objects.filter(call_id=recorded_call.call_id)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )

    info = client.get(replay["info"]).json()
    assert info["sides"]["customer"]["ok"]
    assert info["sides"]["teller"]["ok"]

    whole = client.get(replay["sides"]["customer"])
    assert whole.status_code == 200
    assert whole["Content-Type"] == "video/mp4"
    assert whole["Accept-Ranges"] == "bytes"
    assert "no-store" in whole["Cache-Control"]
    data = whole.content
    assert probe(data)["video"]

    part = client.get(replay["sides"]["customer"], HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert part.content == data[100:200]
    tail = client.get(replay["sides"]["customer"], HTTP_RANGE="bytes=-50")
    assert tail.status_code == 206
    assert tail.content == data[-50:]
    beyond = client.get(replay["sides"]["customer"], HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{len(data)}"
    garbage = client.get(replay["sides"]["customer"], HTTP_RANGE="lines=1-2")
    assert garbage.status_code == 416

    streams = RecordingAccess.objects.filter(action="replay_media")
    # The whole file and nothing else started at byte 0: one stream opened.
    assert [(a.detail["side"], a.detail["page_access"]) for a in streams] == [("customer", page.pk)]


def test_a_replay_link_works_only_for_its_reviewer_and_recording(recorded_call, settings):
    first = reviewer("qa-first")
    replay = open_replay(first, recorded_call)
    link = replay["sides"]["teller"]
    second = reviewer("qa-second")
    assert second.get(link).status_code == 403
    assert first.get(link.split("?")[0]).status_code == 403  # no grant
    assert first.get(link + "tampered").status_code == 403
    other_side_path = link.replace("/teller.mp4", "/customer.mp4")
    assert first.get(other_side_path).status_code == 200  # same page, other side: fine
    settings.REPLAY_GRANT_S = -1
    expired = first.get(link)
    assert expired.status_code == 403
    assert not RecordingAccess.objects.filter(action="replay_media", user__username="qa-second")


def test_a_tampered_recording_says_why_and_serves_nothing(recorded_call, recording_dir):
    tamper(recording_dir, recorded_call)
    client = reviewer()
    replay = open_replay(client, recorded_call)
    info = client.get(replay["info"]).json()
    assert not info["sides"]["teller"]["ok"]
    assert "SHA-256 mismatch" in info["sides"]["teller"]["error"]
    refused = client.get(replay["sides"]["teller"])
    assert refused.status_code == 409
    assert "failed verification" in refused.content.decode()


def test_a_finalised_recording_replays_and_a_cut_off_one_too(recorded_call):
    client = reviewer()
    unsealed = client.get(
        client.get(f"/qa/recordings/{recorded_call.id}/").context["replay"]["info"]
    )
    assert unsealed.json()["sides"]["customer"]["ok"]
    recording_finalise(recording_id=recorded_call.id)
    CallEvent.objects.create(call_id=recorded_call.call_id, kind=CallEventKind.HUNG_UP)
    replay = open_replay(client, recorded_call)
    assert replay["timeline"][-1]["kind"] == CallEventKind.HUNG_UP
    assert client.get(replay["info"]).json()["sides"]["teller"]["ok"]


def evidence_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_identity_pictures_are_shown_decrypted_and_each_view_audited(recorded_call):
    from kyc.models import IdentityCheck, IdentityEvidence
    from kyc.services import _seal_evidence

    check = IdentityCheck.objects.create(call_id=recorded_call.call_id)
    jpeg = evidence_jpeg()
    item = _seal_evidence(
        check,
        kind="face_frame",
        jpeg=jpeg,
        source="media_worker",
        offset_ms=1200,
        meta={"distance": 0.41, "fields": {"id_number": "110101199003071233"}},
    )
    client = reviewer()
    replay = open_replay(client, recorded_call)
    [shown] = replay["evidence"]
    assert (shown["kind"], shown["offset_ms"], shown["meta"]) == (
        "face_frame",
        1200,
        {"distance": 0.41},  # what the check found, not what it read off the card
    )
    response = client.get(shown["url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response.content == jpeg
    audit = RecordingAccess.objects.get(action="replay_evidence")
    assert audit.detail["evidence"] == str(item.id)
    assert audit.detail["ok"] is True
    assert client.get(shown["url"].split("?")[0]).status_code == 403  # no grant

    other_call = Call.objects.create(business=recorded_call.call.business)
    other_check = IdentityCheck.objects.create(call=other_call)
    IdentityEvidence.objects.filter(pk=item.pk).update(identity_check=other_check)
    assert client.get(shown["url"]).status_code == 404  # not this call's picture
    IdentityEvidence.objects.filter(pk=item.pk).update(identity_check=check)

    sealed = bytearray(IdentityEvidence.objects.get(pk=item.pk).sealed)
    sealed[-5] ^= 0x01
    IdentityEvidence.objects.filter(pk=item.pk).update(sealed=bytes(sealed))
    refused = client.get(shown["url"])
    assert refused.status_code == 409
    assert (
        RecordingAccess.objects.filter(action="replay_evidence").latest("at").detail["ok"] is False
    )


@pytest.fixture
def reviewer_user():
    return staff_user("qa-async", "qa")


async def test_a_slow_replay_does_not_hold_the_servers_shared_thread(
    recorded_call, reviewer_user, monkeypatch
):
    """Preparing a replay (up to seconds for a long call) runs on a worker thread: the shared
    sync thread, which carries every socket's database work, stays free meanwhile."""
    import asyncio
    import threading

    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    from recordings import views

    entered, release = threading.Event(), threading.Event()
    real = views.replay_side

    def slow(**kwargs):
        entered.set()
        release.wait(20)
        return real(**kwargs)

    monkeypatch.setattr(views, "replay_side", slow)
    client = AsyncClient()
    await client.aforce_login(reviewer_user)
    page = await client.get(f"/qa/recordings/{recorded_call.id}/")
    request = asyncio.ensure_future(client.get(page.context["replay"]["info"]))
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, entered.wait, 20)
    # What a socket consumer does for every message: a call on the shared sync thread.
    assert await asyncio.wait_for(sync_to_async(lambda: "free")(), timeout=5) == "free"
    assert not request.done()
    release.set()
    answer = await request
    assert answer.status_code == 200
    assert answer.json()["sides"]["customer"]["ok"]
    # The test's own sync calls (sign-in, the page) left a connection on the shared thread.
    await sync_to_async(connections.close_all)()
