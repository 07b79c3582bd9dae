"""Identity evidence can't be swapped, and uploads can't hurt the server.

Tried as an attacker would, through the real interfaces (the upload URL through Django's test
client, the services the sockets call), on the real engines (OCR, face_recognition, the national
stub over HTTP). Each refusal is asserted in words (en + zh) AND that nothing changed: no evidence
row, the steps as they were, no timeline row.

- A side of the card takes evidence only while its step has not passed; the customer's upload or
  chip read never overwrites a side the teller relies on. The teller capturing it again replaces
  it: every step that rested on the card is reset, in words, on the timeline, and a passed check
  is passed no more.
- The face match is bound to the exact photo the national check was run with (by hash) and says
  which; results about evidence the step no longer waits for change nothing.
- Uploads: only while the call is connected and its check waits for that side, checked before
  any decoding; pixel bombs are refused from the header in bounded memory; per-call rate limit.
"""

from __future__ import annotations

import ctypes
import io
import re
import struct
import threading
import tracemalloc
import zlib
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from kyc import selectors, services
from kyc.errors import Refused
from kyc.models import CheckStatus, EvidenceKind, IdentityCheck, IdentityEvidence, UploadAttempt
from kyc.tests.test_identity_check import (
    _confirmable,
    _jpeg,
    frames,
    grab,
    settle,
    started,
    step,
)
from queueing.access import customer_token_issue
from queueing.models import CallEvent
from queueing.services import call_end

pytestmark = [pytest.mark.django_db(transaction=True)]

CHIP_FIELDS = {
    "name": "张伟",
    "sex": "男",
    "ethnicity": "汉",
    "birth": "19900307",
    "address": "北京市东城区东华门街道1号",
    "id_number": "110101199003071233",
    "authority": "北京市公安局东城分局",
    "validity": "2020.03.07-2040.03.07",
}
RESTS_ON_CARD = ("fields", "national", "face_match", "liveness")


# --- helpers ----------------------------------------------------------------------------------


def post_upload(call, side: str, content: bytes, *, name: str = "card.jpg"):
    image = SimpleUploadedFile(name, content, content_type="image/jpeg")
    token = customer_token_issue(call_id=call.id)
    return Client().post("/kyc/upload/", {"token": token, "side": side, "image": image})


def refused_in_words(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]["en"], body
    assert body["detail"]["zh"], body
    assert body["detail"]["zh"] != body["detail"]["en"]
    return body


def state_of(call) -> dict:
    """Everything a refused attempt must leave as it was."""
    check = IdentityCheck.objects.filter(call=call).order_by("-created_at").first()
    return {
        "evidence": sorted(
            str(i)
            for i in IdentityEvidence.objects.filter(identity_check__call=call).values_list(
                "id", flat=True
            )
        ),
        "check": None
        if check is None
        else {
            "status": check.status,
            "steps": check.steps,
            "source": check.source,
            "fields": check.fields,
            "fields_read": check.fields_read,
            "national_check_id": check.national_check_id,
        },
        "timeline": list(CallEvent.objects.filter(call=call).values_list("id", "kind")),
    }


@pytest.fixture
def decodes(monkeypatch) -> list:
    """Every picture Pillow is asked to open from now on (the header read comes first, so no
    decoding happens without a call here)."""
    opened: list = []
    real = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(fp)
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    return opened


def png_header(width: int, height: int) -> bytes:
    """A valid PNG (CRCs right) declaring ``width`` x ``height`` RGB pixels, 74 bytes long."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _proc_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1))


def peak_memory(action):
    """(result, Python-heap peak bytes, process RSS peak above the start in bytes). The RSS peak
    also sees what Pillow allocates in C, which tracemalloc does not.

    Free memory the C heap still holds is handed back to the system first (malloc_trim): an
    allocation that reused it would not raise the RSS, and the meter would read a 16 MP decode
    as 28 MB instead of 48 MB after earlier tests freed large pictures in this process."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc (the test reads /proc: Linux)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS
    rss_before = _proc_kib("VmRSS")
    tracemalloc.start()
    try:
        result = action()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, traced_peak, max(0, _proc_kib("VmHWM") - rss_before) * 1024


def chip_photo() -> bytes:
    from kyc.testing import card_portrait
    from tests.media import face_photo

    photo = np.asarray(Image.open(face_photo()).convert("RGB"))
    return _jpeg(card_portrait(photo, kind="chip"))


def through_the_check(call, data) -> IdentityCheck:
    """Card front and back from the video, fields confirmed, national check passed (3 factors)."""
    from kyc.national_stub.services import citizen_register

    person = data["person"]
    citizen_register(name=person.name, id_number=person.id_number, portrait=data["holder"])
    check = started(call)
    assert grab(check, "card_front", data["front"])["status"] == "passed"
    assert grab(check, "card_back", data["back"])["status"] == "passed"
    services.identity_fields_confirm(
        call_id=call.id, teller=call.teller, fields=_confirmable(check)
    )
    settle()
    assert step(check, "national")["status"] == "passed", step(check, "national")
    return check


def face_matched(call, check, live: list[bytes]) -> dict:
    services.identity_face_match_request(call_id=call.id, teller=call.teller)
    return grab(check, "face_match", *live)


# --- uploads: when they are taken at all --------------------------------------------------------


def test_an_upload_after_the_call_ended_is_refused_and_nothing_is_kept(
    call, person_and_frames, decodes
):
    started(call)
    call_end(call_id=call.id, actor="customer", reason="hangup_customer")
    before = state_of(call)
    decodes.clear()

    refused = post_upload(call, "front", person_and_frames["front"])

    body = refused_in_words(refused, 409, "call_ended")
    assert "ended" in body["detail"]["en"]
    assert decodes == []
    assert state_of(call) == before
    assert not IdentityEvidence.objects.exists()
    assert not UploadAttempt.objects.exists()


def test_an_upload_for_a_call_without_an_identity_check_is_never_decoded(call, decodes):
    bomb = png_header(30_000, 30_000)
    before = state_of(call)
    decodes.clear()

    refused = post_upload(call, "front", bomb, name="card.png")

    refused_in_words(refused, 409, "not_waiting")
    assert decodes == []  # the check is looked for before a byte of the picture is read
    assert state_of(call) == before
    assert not UploadAttempt.objects.exists()

    # Before consent it is refused the same way, still undecoded.
    services.identity_check_start(call_id=call.id, teller=call.teller)
    before = state_of(call)
    refused_in_words(post_upload(call, "front", bomb, name="card.png"), 409, "no_consent")
    assert decodes == []
    assert state_of(call) == before


def test_an_upload_of_a_side_that_passed_is_refused_and_changes_nothing(
    call, person_and_frames, decodes
):
    data = person_and_frames
    check = started(call)
    assert grab(check, "card_front", data["front"])["status"] == "passed"
    before = state_of(call)
    decodes.clear()

    refused = post_upload(call, "front", data["someone_else"][0])

    body = refused_in_words(refused, 409, "already_received")
    assert "already has" in body["detail"]["en"]
    assert decodes == []
    assert state_of(call) == before
    # The other side still waits, and takes the upload.
    assert post_upload(call, "back", data["back"]).status_code == 202
    settle()
    assert step(check, "card_back")["status"] == "passed"


def test_a_30000_by_30000_png_is_refused_from_its_header_in_bounded_memory(call, capsys):
    from kyc.images import image_load

    started(call)
    before = state_of(call)
    bomb = png_header(30_000, 30_000)

    refused, traced, rss = peak_memory(lambda: post_upload(call, "front", bomb, name="card.png"))

    body = refused_in_words(refused, 413, "too_many_pixels")
    assert "900 megapixels" in body["detail"]["en"]
    assert "像素" in body["detail"]["zh"]
    assert state_of(call) == before
    # The meter sees a real decode (Pillow allocates in C): a 16 MP picture costs ≥ 40 MB.
    sentinel = io.BytesIO()
    Image.new("RGB", (4000, 4000), (90, 120, 200)).save(sentinel, format="PNG", compress_level=1)
    _, _, sentinel_rss = peak_memory(lambda: image_load(sentinel.getvalue()))
    with capsys.disabled():
        print(
            f"\n30000x30000 PNG upload: peak python heap {traced / 1e6:.1f} MB, "
            f"peak RSS +{rss / 1e6:.1f} MB (a 16 MP decode: +{sentinel_rss / 1e6:.1f} MB)"
        )
    assert sentinel_rss >= 40e6
    assert traced < 100e6
    assert rss < 100e6


def test_pillows_bomb_guard_is_our_limit_and_answers_in_words():
    """Between our limit and Pillow's error threshold Pillow only warns: refused all the same."""
    from kyc.errors import BadImage
    from kyc.images import MAX_PIXELS, image_load

    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    for width, height in [(5000, 4100), (30_000, 30_000), (65_535, 65_535)]:
        with pytest.raises(BadImage) as refused:
            image_load(png_header(width, height))
        assert refused.value.code == "too_many_pixels"
        assert f"{width * height / 1e6:.0f} megapixels" in refused.value.detail
        assert refused.value.detail_zh != refused.value.detail


def test_uploads_are_limited_per_call_and_the_limit_answers_in_words(
    call, person_and_frames, settings, monkeypatch, decodes
):
    settings.KYC_UPLOAD_MAX_PER_MINUTE = 6
    started(call)
    for _ in range(6):  # unusable files, each checked (and counted)
        refused_in_words(post_upload(call, "front", b"not a picture"), 400, "not_image")
    before = state_of(call)
    decodes.clear()

    limited = post_upload(call, "front", person_and_frames["front"])

    body = refused_in_words(limited, 429, "too_many")
    assert "6 a minute" in body["detail"]["en"]
    assert decodes == []
    assert state_of(call) == before
    assert UploadAttempt.objects.filter(call=call).count() == 6

    # A minute later the customer can send it again.
    later = services._now() + timedelta(seconds=61)
    monkeypatch.setattr(services, "_now", lambda: later)
    assert post_upload(call, "front", person_and_frames["front"]).status_code == 202
    settle()
    assert IdentityCheck.objects.get(call=call).steps["card_front"]["status"] == "passed"


# --- replacing card evidence -----------------------------------------------------------------


def test_capturing_the_card_again_after_the_check_passed_resets_what_rested_on_it(
    call, person_and_frames
):
    from kyc.liveness import challenge_for
    from kyc.testing import liveness_clip_frames

    data = person_and_frames
    check = through_the_check(call, data)
    assert face_matched(call, check, data["live"])["status"] == "passed"
    challenge = challenge_for(["turn_left", "look_up"])
    IdentityCheck.objects.filter(pk=check.id).update(liveness_challenge=challenge.as_dict())
    moving = liveness_clip_frames(data["holder"], challenge.kinds, fps=5, seconds_per_step=1.5)
    grab(check, "liveness", *[_jpeg(f) for f in moving])
    assert services.identity_for_call(call_id=call.id) is not None  # the check passed
    old_front = step(check, "card_front")["evidence"]

    services.identity_capture_request(call_id=call.id, teller=call.teller, side="front")

    check.refresh_from_db()
    assert check.status == CheckStatus.IN_PROGRESS
    assert services.identity_for_call(call_id=call.id) is None
    assert check.national_check_id is None
    assert check.fields == {}
    panel = {s["step"]: s for s in selectors.identity_panel(check)["steps"]}
    for name in RESTS_ON_CARD:
        assert panel[name]["status"] == "pending", panel[name]
        assert panel[name]["detail"].startswith("Reset: ID card, front was replaced")
        assert "已重置" in panel[name]["detail_zh"]
    assert panel["card_front"]["status"] == "running"
    assert panel["card_back"]["status"] == "passed"  # untouched: nothing replaced it
    reset = CallEvent.objects.get(call=call, kind="kyc_reset")
    assert reset.actor == f"teller:{call.teller.pk}"
    assert reset.data["replaced"] == ["front"]
    assert reset.data["evidence_replaced"] == {"front": old_front}
    assert reset.data["steps_reset"] == list(RESTS_ON_CARD)
    assert reset.data["check_was_passed"] is True
    # The old evidence stays on record.
    assert IdentityEvidence.objects.filter(pk=old_front).exists()

    # The side takes new evidence again (the customer's upload), and the check does not pass
    # until every step that rested on the card has been done again on it.
    assert post_upload(call, "front", data["front"]).status_code == 202
    settle()
    front = step(check, "card_front")
    assert front["status"] == "passed"
    assert front["evidence"] != old_front
    uploaded = CallEvent.objects.get(call=call, kind="kyc_capture", actor="customer")
    assert uploaded.data == {"side": "front", "source": "upload", "evidence": [front["evidence"]]}
    services.identity_fields_confirm(
        call_id=call.id, teller=call.teller, fields=_confirmable(check)
    )
    settle()
    check.refresh_from_db()
    assert check.steps["national"]["status"] == "passed"
    assert check.steps["national"]["portrait"] == front["portrait"]
    assert check.status == CheckStatus.IN_PROGRESS
    assert services.identity_for_call(call_id=call.id) is None


def test_a_chip_read_after_the_fields_were_confirmed_is_refused_until_the_teller_asks_again(
    call, kyc_settings
):
    check = started(call)
    services.identity_chip_read(call_id=call.id, fields=CHIP_FIELDS, photo_jpeg=chip_photo())
    services.identity_fields_confirm(call_id=call.id, teller=call.teller, fields=CHIP_FIELDS)
    settle()
    check.refresh_from_db()
    assert check.steps["fields"]["status"] == "passed"
    before = state_of(call)

    other = {**CHIP_FIELDS, "name": "李娜", "sex": "女", "id_number": "110101199003071241"}
    with pytest.raises(Refused) as refused:
        services.identity_chip_read(call_id=call.id, fields=other, photo_jpeg=chip_photo())
    assert refused.value.reason == "already_received"
    assert "already read" in refused.value.detail
    assert "证件已读取" in refused.value.detail_zh
    assert state_of(call) == before

    # The teller asks for the card again: what rested on it is reset, and the card reader's next
    # read is taken.
    services.identity_capture_request(call_id=call.id, teller=call.teller, side="front")
    services.identity_chip_read(call_id=call.id, fields=other, photo_jpeg=chip_photo())
    check.refresh_from_db()
    assert check.fields_read["front"]["name"] == "李娜"
    assert check.steps["card_front"]["status"] == "passed"
    assert check.steps["card_front"]["portrait"]["source"] == "chip"
    for name in ("fields", "national"):
        assert check.steps[name]["status"] == "pending"
        assert "Reset" in check.steps[name]["detail"]
        assert "已重置" in check.steps[name]["detail_zh"]
    resets = list(CallEvent.objects.filter(call=call, kind="kyc_reset").order_by("at"))
    assert [r.data["by"] for r in resets] == ["capture", "chip"]
    assert resets[0].data["steps_reset"] == ["fields", "national"]


def test_a_chip_read_replacing_the_front_the_face_was_matched_to_resets_the_face_match(
    call, person_and_frames
):
    data = person_and_frames
    check = started(call)
    front = grab(check, "card_front", data["front"])
    assert face_matched(call, check, data["live"])["status"] == "passed"

    # The back is still waiting, so the card reader's read is taken — and it replaces the front.
    services.identity_chip_read(call_id=call.id, fields=CHIP_FIELDS, photo_jpeg=chip_photo())

    face = step(check, "face_match")
    assert face["status"] == "pending"
    assert face["detail"] == (
        "Reset: ID card, front was replaced (the card reader read a card); match the face again."
    )
    assert (
        face["detail_zh"]
        == "已重置：身份证人像面已被替换（读卡器读取了证件），请重新进行人脸比对。"
    )
    reset = CallEvent.objects.get(call=call, kind="kyc_reset")
    assert (reset.actor, reset.data["replaced"], reset.data["steps_reset"]) == (
        "customer",
        ["front"],
        ["face_match"],
    )
    assert reset.data["evidence_replaced"] == {"front": front["evidence"]}
    check.refresh_from_db()
    assert check.face_matched_at is None


# --- the face match is bound to the national check's photo ------------------------------------


def test_the_face_match_uses_the_photo_the_national_check_was_run_with_and_names_it(
    call, person_and_frames
):
    data = person_and_frames
    check = through_the_check(call, data)
    bound = step(check, "national")["portrait"]
    assert bound["source"] == "card"
    assert bound == step(check, "card_front")["portrait"]
    # A newer photo of someone else on file (what a swapped upload left before) is not used.
    services._seal_evidence(
        check, kind=EvidenceKind.PORTRAIT, jpeg=data["someone_else"][0], source="card"
    )

    match = face_matched(call, check, data["live"])

    assert match["status"] == "passed", match
    assert match["portrait"] == bound
    assert f"evidence {bound['evidence'][:8]}, sha256 {bound['sha256'][:12]}" in match["detail"]
    assert "Compared with the card's photo" in match["detail"]
    assert "比对对象：证件照片" in match["detail_zh"]
    event = CallEvent.objects.filter(call=call, kind="kyc_face_match").latest("at")
    assert event.data["portrait"] == {
        "evidence": bound["evidence"],
        "source": "card",
        "sha256": bound["sha256"][:16],
    }


def test_a_face_match_is_refused_in_words_when_the_photo_changed_after_the_national_check(
    call, person_and_frames
):
    data = person_and_frames
    check = through_the_check(call, data)
    # The card's photo no longer the national check's (as a swap after the check once made it).
    other = services._seal_evidence(
        check, kind=EvidenceKind.PORTRAIT, jpeg=data["someone_else"][0], source="card"
    )
    check.refresh_from_db()
    front = {**check.steps["card_front"], "portrait": services._portrait_ref(other, "card")}
    IdentityCheck.objects.filter(pk=check.id).update(steps={**check.steps, "card_front": front})
    before = state_of(call)

    with pytest.raises(Refused) as refused:
        services.identity_face_match_request(call_id=call.id, teller=call.teller)
    assert "run the national check again" in refused.value.detail
    assert "重新进行联网核查" in refused.value.detail_zh
    assert state_of(call) == before

    # Once the national check runs again it is bound to the new photo, and so is the face match.
    services.identity_national_request(call_id=call.id, teller=call.teller)
    settle()
    check.refresh_from_db()
    assert check.steps["national"]["portrait"]["evidence"] == str(other.id)
    services.identity_face_match_request(call_id=call.id, teller=call.teller)
    check.refresh_from_db()
    assert check.steps["face_match"]["portrait"]["evidence"] == str(other.id)


def test_a_face_match_result_about_a_replaced_card_changes_nothing(call, person_and_frames):
    from kyc.tasks import _embedded

    data = person_and_frames
    check = started(call)
    grab(check, "card_front", data["front"])
    services.identity_face_match_request(call_id=call.id, teller=call.teller)
    gate = threading.Event()
    _embedded.submit(gate.wait, 60)  # the analysis queues behind this
    try:
        services.identity_frames_received(
            check_id=check.id, purpose="face_match", frames=frames(*data["live"]), source="test"
        )
        services.identity_capture_request(call_id=call.id, teller=call.teller, side="front")
    finally:
        gate.set()
    settle()

    face = step(check, "face_match")
    assert face["status"] == "pending"
    assert face["code"] == "reset"
    assert not CallEvent.objects.filter(call=call, kind="kyc_face_match").exists()
    check.refresh_from_db()
    assert check.face_matched_at is None


def test_the_check_never_passes_on_a_face_matched_to_another_photo(call, person_and_frames):
    """The last line: every step passed, but the face match was bound to another photo than the
    national check — the check does not pass, and says why."""
    from kyc.liveness import challenge_for
    from kyc.testing import liveness_clip_frames

    data = person_and_frames
    check = through_the_check(call, data)
    assert face_matched(call, check, data["live"])["status"] == "passed"
    other = services._seal_evidence(
        check, kind=EvidenceKind.PORTRAIT, jpeg=data["someone_else"][0], source="card"
    )
    check.refresh_from_db()
    face = {**check.steps["face_match"], "portrait": services._portrait_ref(other, "card")}
    challenge = challenge_for(["turn_right", "look_down"])
    IdentityCheck.objects.filter(pk=check.id).update(
        steps={**check.steps, "face_match": face}, liveness_challenge=challenge.as_dict()
    )
    moving = liveness_clip_frames(data["holder"], challenge.kinds, fps=5, seconds_per_step=1.5)
    assert grab(check, "liveness", *[_jpeg(f) for f in moving])["status"] == "passed"

    check.refresh_from_db()
    assert check.status == CheckStatus.IN_PROGRESS
    assert services.identity_for_call(call_id=call.id) is None
    assert check.steps["face_match"]["status"] == "failed"
    assert check.steps["face_match"]["code"] == "stale_evidence"
    assert "replaced" in check.steps["face_match"]["detail"]


def test_the_chip_read_follows_the_call_state(call, decodes):
    """A card reader's read for a call with no check waiting, or that ended: refused in words,
    nothing kept, the photo never decoded."""
    photo = chip_photo()
    decodes.clear()
    with pytest.raises(Refused) as refused:
        services.identity_chip_read(call_id=call.id, fields=CHIP_FIELDS, photo_jpeg=photo)
    assert refused.value.reason == "not_waiting"
    started(call)
    call_end(call_id=call.id, actor="customer", reason="hangup_customer")
    before = state_of(call)
    with pytest.raises(Refused) as refused:
        services.identity_chip_read(call_id=call.id, fields=CHIP_FIELDS, photo_jpeg=photo)
    assert refused.value.reason == "call_ended"
    assert "ended" in refused.value.detail
    assert refused.value.detail_zh != refused.value.detail
    assert state_of(call) == before
    assert decodes == []
