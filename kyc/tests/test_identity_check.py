"""The identity check of a call, service by service, on the real engines: frames grabbed from the
video (as the media worker hands them over) are sealed as evidence, read by OCR, matched by
face_recognition, checked for liveness, and the national check goes over HTTP to the stub.

What a teller and a customer would notice: nothing happens before consent; each step ends
passed or failed *with words*; corrections are audited; the ID number never reaches the call's
timeline in clear; the check passes only when every step has, and then serves the call until it
expires.
"""

from __future__ import annotations

import io
import json
import random
from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image, ImageFilter

from kyc import selectors, services
from kyc.errors import BadImage
from kyc.models import CheckStatus, EvidenceKind, IdentityCheck, IdentityEvidence, Level
from queueing.access import customer_token_issue
from queueing.errors import Conflict, Forbidden
from queueing.models import Business, Call, CallEvent, CallStatus
from recordings.services import recording_start
from tests.factories import staff_user
from tests.media import face_photos

pytestmark = [pytest.mark.django_db(transaction=True)]

SEED = 11


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def person_and_frames():
    """A random valid person, their card held up to a 640x480 camera (front, back), the front
    upside down and out of focus, and live-like frames of them and of someone else."""
    from kyc.idcard.generator import card_back, card_front, card_in_frame, person_random
    from kyc.testing import live_frame

    photos = face_photos()
    holder = np.asarray(Image.open(photos["obama"]).convert("RGB"))
    person = person_random(random.Random(SEED))
    front = card_in_frame(
        card_front(person, portrait=Image.fromarray(holder), rng=random.Random(SEED)), scale=0.95
    )
    back = card_in_frame(card_back(person, rng=random.Random(SEED)), scale=0.95)
    other = np.asarray(Image.open(photos["biden"]).convert("RGB"))
    return {
        "person": person,
        "holder": holder,
        "front": _jpeg(front),
        "back": _jpeg(back),
        "upside_down": _jpeg(front.rotate(180)),
        "blurred": _jpeg(front.filter(ImageFilter.GaussianBlur(6))),
        "live": [
            _jpeg(live_frame(np.asarray(Image.open(photos[n])), seed=i))
            for i, n in enumerate(["obama2", "obama3", "obama"])
        ],
        "someone_else": [_jpeg(live_frame(other, seed=i)) for i in range(3)],
    }


def _jpeg(image) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def kyc_settings(settings, live_server):
    # Analysis and the national check on background threads of this process (the embedded
    # path), the stub over real HTTP: the test's own server mounts it at /ext/national-id/
    # whatever the profile (tests.stub_urls; production's servers never do).
    settings.ROOT_URLCONF = "tests.stub_urls"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    base = f"{live_server.url}/ext/national-id/v1"
    settings.KYC_NATIONAL_CHANNELS = [f"{base}/primary", f"{base}/secondary"]
    settings.KYC_NATIONAL_RETRY_BACKOFF_S = 0.1
    settings.NATIONAL_STUB_LATENCY_MS = 20
    settings.NATIONAL_STUB_JITTER_MS = 0
    return settings


@pytest.fixture
def call(catalogue, kyc_settings):
    teller = staff_user("kyc-teller", "teller")
    now = timezone.now()
    call = Call.objects.create(
        business=Business.objects.get(key="account_change"),
        status=CallStatus.CONNECTED,
        teller=teller,
        media_channel="media.kyc-test",
        enqueued_at=now,
        answered_at=now,
    )
    recording_start(call_id=call.id)
    return call


def settle() -> None:
    """Wait for the background analysis and national checks this test started."""
    from kyc.national.tasks import national_check_threads_join
    from kyc.tasks import _embedded

    for _ in range(3):  # an analysis may start a check that finishes with a hook, and so on
        _embedded.submit(lambda: None).result(timeout=120)
        assert national_check_threads_join(timeout=60)


def frames(*jpegs: bytes, step_ms: int = 200) -> list[tuple[int, int, bytes]]:
    return [(1000 + i * step_ms, i * step_ms, jpeg) for i, jpeg in enumerate(jpegs)]


def started(call) -> IdentityCheck:
    services.identity_check_start(call_id=call.id, teller=call.teller)
    return services.identity_consent(
        call_id=call.id, accepted=True, geolocation={"lat": 31.23, "lon": 121.47}, ip="10.1.2.3"
    )


def step(check: IdentityCheck, name: str) -> dict:
    check.refresh_from_db()
    return check.steps[name]


def grab(check, purpose: str, *jpegs: bytes, step_ms: int = 200) -> dict:
    services.identity_frames_received(
        check_id=check.id, purpose=purpose, frames=frames(*jpegs, step_ms=step_ms), source="test"
    )
    settle()
    return step(check, purpose)


# --- consent ----------------------------------------------------------------------------------


def test_nothing_is_grabbed_before_consent_and_consent_is_recorded(call):
    check = services.identity_check_start(call_id=call.id, teller=call.teller)
    assert check.status == CheckStatus.CONSENT_PENDING
    with pytest.raises(Conflict, match="consent"):
        services.identity_capture_request(call_id=call.id, teller=call.teller, side="front")

    services.identity_consent(
        call_id=call.id, accepted=True, geolocation={"lat": 31.23, "lon": 121.47}, ip="10.1.2.3"
    )
    check.refresh_from_db()
    assert check.status == CheckStatus.IN_PROGRESS
    assert check.consent_ip == "10.1.2.3"
    assert check.geolocation["lat"] == 31.23
    event = CallEvent.objects.filter(call=call, kind="kyc_consent", actor="customer").get()
    assert event.data["accepted"] is True
    assert event.data["at"]
    # Asking again gives the same check: once per call.
    again = services.identity_check_start(call_id=call.id, teller=call.teller)
    assert again.id == check.id


def test_a_refusal_stops_the_check_and_another_teller_cannot_drive_it(call):
    services.identity_check_start(call_id=call.id, teller=call.teller)
    stranger = staff_user("kyc-other-teller", "teller")
    with pytest.raises(Forbidden):
        services.identity_capture_request(call_id=call.id, teller=stranger, side="front")
    check = services.identity_consent(call_id=call.id, accepted=False)
    assert check.status == CheckStatus.REFUSED
    assert check.steps["consent"]["status"] == "failed"
    with pytest.raises(Conflict, match="refused"):
        services.identity_capture_request(call_id=call.id, teller=call.teller, side="front")


# --- the card ---------------------------------------------------------------------------------


def test_card_frames_are_sealed_read_and_kept_off_the_timeline_in_clear(call, person_and_frames):
    data = person_and_frames
    person = data["person"]
    check = started(call)
    front = grab(check, "card_front", data["blurred"], data["front"], data["blurred"])
    assert front["status"] == "passed", front
    check.refresh_from_db()
    read = check.fields_read["front"]
    assert read["id_number"] == person.id_number
    assert read["name"] == person.name
    assert read["birth"] == person.birth.strftime("%Y%m%d")
    # The sharpest of the three frames was read.
    evidence = IdentityEvidence.objects.get(pk=front["evidence"])
    assert services.identity_evidence_open(evidence=evidence) == data["front"]

    back = grab(check, "card_back", data["back"])
    assert back["status"] == "passed", back
    check.refresh_from_db()
    assert check.fields_read["back"]["authority"] == person.authority

    # Evidence is sealed: no JPEG in the database, and each opens to what was grabbed.
    for item in IdentityEvidence.objects.filter(identity_check=check):
        blob = bytes(item.sealed)
        assert not blob.startswith(b"\xff\xd8")
        assert b"JFIF" not in blob[:64]
        assert services.identity_evidence_open(evidence=item).startswith(b"\xff\xd8")
    assert check.evidence.filter(kind=EvidenceKind.PORTRAIT).count() == 1
    # The call's timeline says what happened, never the ID number in clear.
    timeline = json.dumps(list(CallEvent.objects.filter(call=call).values("kind", "data")))
    assert "kyc_ocr" in timeline
    assert person.id_number not in timeline


@pytest.mark.parametrize(
    ("variant", "words"),
    [("upside_down", "upside down"), ("blurred", "blur")],
)
def test_an_unusable_card_picture_fails_with_a_reason(call, person_and_frames, variant, words):
    check = started(call)
    front = grab(check, "card_front", person_and_frames[variant])
    assert front["status"] == "failed"
    assert words in front["detail"].lower()
    assert front["detail_zh"]
    assert front["detail_zh"] != front["detail"]
    # The customer's page says what to do about it, too (and nothing personal).
    check.refresh_from_db()
    told = selectors.identity_progress(check, step="card_front")
    assert words in told["text"]["en"].lower()
    assert told["text"]["zh"] != told["text"]["en"]


# --- the teller confirms, the national check runs ---------------------------------------------


def _confirmable(check) -> dict:
    check.refresh_from_db()
    return {**check.fields_read["back"], **check.fields_read["front"]}


def test_teller_corrections_are_audited_and_the_national_check_passes(call, person_and_frames):
    from kyc.national_stub.services import citizen_register

    data = person_and_frames
    person = data["person"]
    citizen_register(name=person.name, id_number=person.id_number, portrait=data["holder"])
    check = started(call)
    grab(check, "card_front", data["front"])
    grab(check, "card_back", data["back"])
    fields = _confirmable(check)

    # A wrong check character is refused in words, and nothing is confirmed.
    wrong = person.id_number[:-1] + ("0" if person.id_number[-1] != "0" else "1")
    with pytest.raises(Conflict, match="last character"):
        services.identity_fields_confirm(
            call_id=call.id, teller=call.teller, fields={**fields, "id_number": wrong}
        )
    assert step(check, "fields")["status"] == "pending"

    corrected = {**fields, "address": fields["address"] + "1号楼"}
    services.identity_fields_confirm(call_id=call.id, teller=call.teller, fields=corrected)
    check.refresh_from_db()
    assert check.fields["address"] == corrected["address"]
    assert check.corrections == [
        {
            "field": "address",
            "from": fields["address"],
            "to": corrected["address"],
            "by": "kyc-teller",
            "at": check.corrections[0]["at"],
        }
    ]
    event = CallEvent.objects.get(call=call, kind="kyc_fields")
    assert event.data["corrections"][0]["field"] == "address"

    settle()
    national = step(check, "national")
    assert national["status"] == "passed", national
    assert national["factors"] == 3  # name + number + the card's photo


def test_an_unknown_citizen_fails_the_national_check_in_words(call, person_and_frames):
    data = person_and_frames  # this person is not in the stub's registry
    check = started(call)
    grab(check, "card_front", data["front"])
    grab(check, "card_back", data["back"])
    services.identity_fields_confirm(
        call_id=call.id, teller=call.teller, fields=_confirmable(check)
    )
    settle()
    national = step(check, "national")
    assert national["status"] == "failed"
    assert national["outcome"] == "not_found"
    assert national["detail"]
    assert national["detail_zh"]


# --- the live face ----------------------------------------------------------------------------


def test_face_match_passes_for_the_holder_and_fails_for_someone_else(call, person_and_frames):
    data = person_and_frames
    check = started(call)
    grab(check, "card_front", data["front"])

    match = grab(check, "face_match", *data["live"])
    assert match["status"] == "passed", match
    assert len(match["distances"]) == 3
    assert all(d is not None and d <= match["threshold"] for d in match["distances"])
    check.refresh_from_db()
    assert check.face_matched_at is not None
    frames_kept = check.evidence.filter(kind=EvidenceKind.FACE_FRAME)
    assert frames_kept.count() == 3
    assert all(item.meta["distance"] is not None for item in frames_kept)

    other = grab(check, "face_match", *data["someone_else"])
    assert other["status"] == "failed"
    assert other["detail"]
    assert other["detail_zh"]


def test_liveness_passes_on_moves_and_fails_on_a_still_photo(call, person_and_frames):
    from kyc.liveness import challenge_for
    from kyc.testing import liveness_clip_frames, still_clip_frames

    data = person_and_frames
    check = started(call)
    challenge = challenge_for(["turn_left", "look_up"])
    # As identity_liveness_request stores it (its challenge is random; this one is chosen).
    IdentityCheck.objects.filter(pk=check.id).update(liveness_challenge=challenge.as_dict())
    fps = 5
    moving = liveness_clip_frames(data["holder"], challenge.kinds, fps=fps, seconds_per_step=1.5)
    passed = grab(check, "liveness", *[_jpeg(f) for f in moving], step_ms=1000 // fps)
    assert passed["status"] == "passed", passed

    still = still_clip_frames(data["holder"], fps=fps, seconds=len(moving) / fps)
    failed = grab(check, "liveness", *[_jpeg(f) for f in still], step_ms=1000 // fps)
    assert failed["status"] == "failed"
    assert failed["code"] == "no_movement"


def test_liveness_frames_without_a_challenge_fail_the_step_in_words(call):
    """Frames for liveness with no challenge stored to judge them by (none was asked for): the
    step fails with words for the teller instead of the analysis crashing and leaving the panel
    on "Checking the pictures…" for good."""
    check = started(call)
    assert IdentityCheck.objects.get(pk=check.id).liveness_challenge is None
    blank = _jpeg(Image.new("RGB", (640, 480), (128, 128, 128)))
    failed = grab(check, "liveness", blank, blank, blank)
    assert failed["status"] == "failed", failed
    assert failed["code"] == "no_challenge"
    assert "start it again" in failed["detail"]
    assert "重新开始活体检测" in failed["detail_zh"]


# --- the whole check ---------------------------------------------------------------------------


def test_the_check_passes_only_when_every_step_has_and_then_expires(call, person_and_frames):
    from kyc.liveness import challenge_for
    from kyc.national_stub.services import citizen_register
    from kyc.testing import liveness_clip_frames

    data = person_and_frames
    person = data["person"]
    citizen_register(name=person.name, id_number=person.id_number, portrait=data["holder"])
    check = started(call)
    grab(check, "card_front", data["front"])
    grab(check, "card_back", data["back"])
    services.identity_fields_confirm(
        call_id=call.id, teller=call.teller, fields=_confirmable(check)
    )
    settle()
    grab(check, "face_match", *data["live"])
    assert services.identity_for_call(call_id=call.id) is None  # liveness still to do

    challenge = challenge_for(["turn_right", "look_down"])
    IdentityCheck.objects.filter(pk=check.id).update(liveness_challenge=challenge.as_dict())
    moving = liveness_clip_frames(data["holder"], challenge.kinds, fps=5, seconds_per_step=1.5)
    grab(check, "liveness", *[_jpeg(f) for f in moving])

    verified = services.identity_for_call(call_id=call.id)
    assert verified is not None
    assert verified.id == check.id
    assert verified.level == Level.THREE_FACTOR_FACE
    assert verified.expires_at > timezone.now() + timedelta(minutes=20)
    assert CallEvent.objects.filter(call=call, kind="kyc_result").exists()

    IdentityCheck.objects.filter(pk=check.id).update(expires_at=timezone.now())
    assert services.identity_for_call(call_id=call.id) is None


# --- the customer's upload ----------------------------------------------------------------------


def test_uploads_are_checked_before_anything_is_stored(call, person_and_frames):
    started(call)
    client = Client()
    token = customer_token_issue(call_id=call.id)

    def post(side, name, content, content_type):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile(name, content, content_type=content_type)
        return client.post("/kyc/upload/", {"token": token, "side": side, "image": upload})

    not_image = post("front", "card.jpg", b"%PDF-1.4 not a picture", "image/jpeg")
    assert not_image.status_code == 400
    assert not_image.json()["code"] == "not_image"
    assert not_image.json()["detail"]["zh"]
    too_big = post("front", "card.jpg", b"\xff\xd8" + b"0" * (10 * 1024 * 1024 + 1), "image/jpeg")
    assert too_big.status_code == 413
    bad_token = client.post("/kyc/upload/", {"token": "forged", "side": "front"})
    assert bad_token.status_code == 403
    assert IdentityEvidence.objects.count() == 0

    accepted = post("front", "card.jpg", person_and_frames["front"], "image/jpeg")
    assert accepted.status_code == 202
    settle()
    check = IdentityCheck.objects.get(call=call)
    assert check.source == "upload"
    assert check.steps["card_front"]["status"] == "passed"


def test_a_huge_picture_is_refused_by_pixels_not_trusted_by_name():
    big = Image.new("RGB", (5000, 4100), (200, 200, 200))
    out = io.BytesIO()
    big.save(out, format="PNG", optimize=True)
    from kyc.images import image_load

    with pytest.raises(BadImage) as refused:
        image_load(out.getvalue())
    assert refused.value.code == "too_many_pixels"
