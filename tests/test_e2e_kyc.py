"""End to end in real browsers: the teller verifies the caller's identity inside the call.

The customer's fake camera plays a looping clip: a synthetic ID card (a random valid person, a
real face photo in its photo area) held up front side, then back side, then the person's face.
The teller drives the KYC panel; the *server* grabs every picture from the call's video (the
media worker samples the customer's track), reads the card with PP-OCR, matches the card photo
against live frames with face_recognition and asks the national-ID stub over HTTP. The customer
gives consent on their page and sees the progress.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import Participant, diagnostics, launch, off_loop
from tests.factories import staff_user
from tests.kyc_media import PHASE_IS, kyc_clip
from tests.media import face_photo, pattern_y4m

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TELLER = "teller-kyc"
PASSWORD = "pw-for-kyc-tests"
BUSINESS = "account_change"
PHASE_S = 8.0
STEP_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def cameras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kyc-cameras")
    clip = kyc_clip(folder / "kyc.y4m", seed=5, seconds_per_phase=PHASE_S, fps=5)
    return {"clip": clip, "teller": pattern_y4m(folder / "bars.y4m")}


@pytest.fixture
def citizen(catalogue, cameras):
    """The card's holder is on the national registry with the photo on their card."""
    import numpy as np
    from PIL import Image

    from kyc.national_stub.services import citizen_register

    person = cameras["clip"].person
    photo = np.asarray(Image.open(face_photo()).convert("RGB"))
    citizen_register(name=person.name, id_number=person.id_number, portrait=photo)
    staff_user(TELLER, "teller", password=PASSWORD)
    return person


@pytest.fixture
def participants(live_stack, cameras, citizen):
    with sync_playwright() as playwright:
        customer = launch(playwright, "customer", cameras["clip"].path, base_url=live_stack.url)
        teller = launch(playwright, "teller", cameras["teller"], base_url=live_stack.url)
        try:
            yield customer, teller
        finally:
            customer.close()
            teller.close()


def assert_step_passes(teller: Participant, name: str) -> None:
    """Wait for the step to end; if it failed, say why (the panel's words)."""
    step = teller.testid(f"kyc-step-{name}")
    expect(step).to_have_attribute(
        "data-status", re.compile("passed|failed"), timeout=STEP_TIMEOUT_MS
    )
    if step.get_attribute("data-status") != "passed":
        pytest.fail(f"{name} failed: {step.inner_text()}")


def wait_for_phase_start(teller: Participant, phase: str) -> None:
    """Wait until the customer's camera *starts* showing ``phase`` (a whole phase ahead)."""
    page = teller.page
    timeout = 4 * PHASE_S * 1000
    page.wait_for_function(f"(w) => !({PHASE_IS})(w)", arg=phase, polling=100, timeout=timeout)
    page.wait_for_function(PHASE_IS, arg=phase, polling=100, timeout=timeout)


def connect(customer: Participant, teller: Participant) -> str:
    page = teller.page
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login/"))
    teller.testid("login-username").fill(TELLER)
    teller.testid("login-password").fill(PASSWORD)
    teller.testid("login-submit").click()
    teller.testid("go-available").click()
    expect(teller.testid("presence")).to_have_attribute("data-presence", "available")
    customer.page.goto("/")
    customer.testid("business-select").select_option(BUSINESS)
    customer.testid("call-start").click()
    status = customer.testid("call-status")
    expect(status).to_have_attribute("data-state", "waiting")
    call_id = status.get_attribute("data-call-id")
    accept = teller.page.locator(f'[data-testid="call-accept"][data-call-id="{call_id}"]')
    accept.click()
    for side in (customer, teller):
        expect(side.testid("call-status")).to_have_attribute(
            "data-state", "in-call", timeout=30_000
        )
    teller.media_flowing()
    return call_id


def test_teller_verifies_the_caller_from_the_live_video(
    participants, live_stack, citizen, tmp_path
):
    customer, teller = participants
    person = citizen
    step = lambda name: teller.testid(f"kyc-step-{name}")  # noqa: E731

    with diagnostics(live_stack, customer, teller):
        call_id = connect(customer, teller)
        panel = teller.testid("kyc-panel")
        expect(panel).to_be_visible()

        # Consent first, on the customer's own screen.
        teller.testid("kyc-start").click()
        expect(teller.testid("kyc-status")).to_have_attribute("data-status", "consent_pending")
        expect(teller.testid("kyc-capture-front")).to_be_disabled()
        expect(customer.testid("kyc-consent")).to_be_visible()
        customer.testid("kyc-consent-accept").click()
        expect(teller.testid("kyc-status")).to_have_attribute("data-status", "in_progress")
        expect(customer.testid("kyc-progress")).to_have_attribute("data-status", "in_progress")

        # The card, front then back, grabbed by the server from the video.
        wait_for_phase_start(teller, "front")
        teller.testid("kyc-capture-front").click()
        assert_step_passes(teller, "card_front")
        wait_for_phase_start(teller, "back")
        teller.testid("kyc-capture-back").click()
        assert_step_passes(teller, "card_back")

        # The live face against the card's photo, on frames the server samples at random, while
        # the customer is still in front of the camera (the camera shows the face after the
        # card's back); the national check below then runs on the same photo.
        wait_for_phase_start(teller, "face")
        teller.testid("kyc-face-match").click()
        assert_step_passes(teller, "face_match")
        expect(teller.testid("kyc-face-scores")).to_be_visible()
        expect(customer.testid("kyc-progress")).to_contain_text("人脸比对")

        # The OCR fields, for the teller to compare with the card (name and address by eye).
        fields = teller.testid("kyc-fields")
        expect(fields).to_be_visible()
        expect(teller.testid("kyc-field-id_number")).to_have_value(person.id_number)
        expect(teller.testid("kyc-field-name")).to_have_value(person.name)
        expect(teller.testid("kyc-field-birth")).to_have_value(person.birth.strftime("%Y%m%d"))
        expect(teller.testid("kyc-field-sex")).to_have_value(person.sex)
        teller.testid("kyc-field-address").fill(person.address)  # as on the card
        teller.testid("kyc-fields-confirm").click()  # refused until the eyes box is ticked
        expect(step("fields")).to_have_attribute("data-status", "pending")
        teller.testid("kyc-eyes-checked").check()
        teller.testid("kyc-fields-confirm").click()
        expect(step("fields")).to_have_attribute("data-status", "passed")

        # The national check (3 factors: the card's photo goes along) over HTTP to the stub.
        expect(step("national")).to_have_attribute("data-status", "passed", timeout=30_000)

        teller.page.screenshot(path="/tmp/e2e-kyc-teller.png", full_page=True)
        customer.page.screenshot(path="/tmp/e2e-kyc-customer.png", full_page=True)

        teller.testid("call-hangup").click()
        expect(customer.testid("call-status")).to_have_attribute("data-state", "ended")

    for side in (customer, teller):
        assert not [line for line in side.console if line.startswith("pageerror")], side.console
    off_loop(check_evidence_kept, call_id, person)
    off_loop(check_export_has_the_evidence, call_id, tmp_path / "export")


def check_export_has_the_evidence(call_id: str, out_dir) -> None:
    """QA gets the pictures with the recording: the export decrypts and lists them."""
    import json

    from tests.recording_checks import check_call_recording

    check_call_recording(call_id, out_dir)
    listing = json.loads((out_dir / "identity" / "evidence.json").read_text())
    kinds = [item["kind"] for item in listing]
    assert kinds.count("face_frame") >= 3
    assert {"card_front", "card_back", "portrait"} <= set(kinds)
    for item in listing:
        assert (out_dir / item["file"]).read_bytes()[:2] == b"\xff\xd8"


def check_evidence_kept(call_id: str, person) -> None:
    """What the server kept: card, portrait and face frames as sealed evidence; the timeline
    says what was done and never holds the ID number in clear."""
    import json

    from kyc.models import EvidenceKind, IdentityCheck
    from queueing.models import CallEvent

    check = IdentityCheck.objects.get(call_id=call_id)
    kinds = set(check.evidence.values_list("kind", flat=True))
    assert {EvidenceKind.CARD_FRONT, EvidenceKind.CARD_BACK, EvidenceKind.PORTRAIT} <= kinds
    assert check.evidence.filter(kind=EvidenceKind.FACE_FRAME).count() >= 3
    assert all(e.offset_ms is not None for e in check.evidence.filter(source="media_worker"))
    timeline = list(CallEvent.objects.filter(call_id=call_id).values("kind", "data"))
    kinds_seen = {e["kind"] for e in timeline}
    assert {"kyc_consent", "kyc_capture", "kyc_ocr", "kyc_fields", "kyc_national"} <= kinds_seen
    assert "kyc_face_match" in kinds_seen
    assert person.id_number not in json.dumps(timeline, ensure_ascii=False)
