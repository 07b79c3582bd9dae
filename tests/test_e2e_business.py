"""End to end in real browsers: one call, one identity check, three businesses.

The customer's camera is driven by the test: a canvas whose picture the test chooses (the ID
card front, its back, the face) and which, during the liveness challenge, follows the prompts the
customer's page shows — like a person doing what the screen asks. Its frames still travel as
WebRTC video to the server's media worker, which grabs and checks them; the microphone is
Chromium's fake device.

Then the teller does three businesses in the same call — personal details update, debit card
loss report, transfer — each with the agreement read to its end, the summary confirmed and the
PIN typed on the randomized keypad on the customer's page. Each ends with a receipt.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from tests.browser import Participant, diagnostics, launch, off_loop
from tests.factories import staff_user
from tests.kyc_media import BACK_BACKDROP, FRONT_BACKDROP, PHASE_IS
from tests.media import face_photo, pattern_y4m

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TELLER = "teller-business"
PASSWORD = "pw-for-business-tests"
PIN = "802417"
STEP_MS = 60_000
POSES = ("turn_left", "turn_right", "look_up", "look_down")

# A camera the test controls. `window.__cam.show(name)` puts a picture up; while a liveness
# prompt is on screen, the camera follows its `data-kind` (a MutationObserver: no polling).
CAMERA_SCRIPT = """
(() => {
  const sources = window.__CAM_SOURCES;
  const images = {};
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 480;
  const g = canvas.getContext("2d");
  let current = "face";
  const image = (name) => {
    if (!images[name]) { images[name] = new Image(); images[name].src = sources[name]; }
    return images[name];
  };
  Object.keys(sources).forEach(image);
  window.__cam = { show(name) { current = name; return name; }, get showing() { return current; } };
  setInterval(() => {
    const im = image(current);
    if (im.complete) g.drawImage(im, 0, 0, 640, 480);
  }, 1000 / 15);
  const follow = () => {
    const move = document.querySelector("[data-kyc-move]");
    if (!move) return setTimeout(follow, 50);
    new MutationObserver(() => {
      const kind = move.dataset.kind;
      current = sources[kind] ? kind : "face";
    }).observe(move, { attributes: true, attributeFilter: ["data-kind"] });
  };
  document.addEventListener("DOMContentLoaded", follow);
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const microphone = await original({ audio: Boolean(constraints?.audio), video: false });
    const video = canvas.captureStream(15).getVideoTracks()[0];
    return new MediaStream([...microphone.getAudioTracks(), video]);
  };
})();
"""


def _data_url(image) -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.convert("RGB").resize((640, 480)).save(out, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.fixture(scope="module")
def camera_pictures():
    """The card (front, back) held up to the camera, the face, and the face doing each move."""
    from kyc.idcard.generator import card_back, card_front, card_in_frame, person_random
    from kyc.testing import liveness_clip_frames

    photo = np.asarray(Image.open(face_photo()).convert("RGB"))
    person = person_random(random.Random(23))
    pictures = {
        "front": _data_url(
            card_in_frame(
                card_front(person, portrait=Image.fromarray(photo)),
                scale=0.95,
                background=FRONT_BACKDROP,
            )
        ),
        "back": _data_url(card_in_frame(card_back(person), scale=0.95, background=BACK_BACKDROP)),
    }
    fps, per_step = 10, 1.0
    for kind in POSES:
        frames = liveness_clip_frames(photo, [kind], fps=fps, seconds_per_step=per_step)
        step = int(fps * per_step)
        pictures["face"] = _data_url(frames[0])  # neutral, same framing as the moves
        pictures[kind] = _data_url(frames[step + step // 2])  # the move, held
    return person, pictures


@pytest.fixture
def customer_on_file(catalogue, camera_pictures):
    """The card's holder: on the national registry with the card's photo, and a customer of the
    bank with an account, a debit card and a PIN."""
    from kyc.national_stub.services import citizen_register
    from workflows.corebank_stub.seed import corebank_customer_register, corebank_seed

    person, _ = camera_pictures
    photo = np.asarray(Image.open(face_photo()).convert("RGB"))
    citizen_register(name=person.name, id_number=person.id_number, portrait=photo)
    corebank_seed()  # the payee of the transfer (刘洋) is a seeded customer
    account = corebank_customer_register(
        id_number=person.id_number, name=person.name, pin=PIN, balance="20000.00"
    )
    staff_user(TELLER, "teller", password=PASSWORD)
    return person, account


@pytest.fixture
def participants(live_stack, camera_pictures, customer_on_file, tmp_path):
    _, pictures = camera_pictures
    bars = pattern_y4m(tmp_path / "bars.y4m")
    with sync_playwright() as playwright:
        customer = launch(playwright, "customer", bars, base_url=live_stack.url)
        customer.page.context.add_init_script(
            f"window.__CAM_SOURCES = {json.dumps(pictures)};\n{CAMERA_SCRIPT}"
        )
        teller = launch(playwright, "teller", bars, base_url=live_stack.url)
        try:
            yield customer, teller
        finally:
            customer.close()
            teller.close()


def passes(side: Participant, testid: str, timeout: int = STEP_MS) -> None:
    """Wait for a step to end; if it failed, say why (the panel's words)."""
    step = side.testid(testid)
    expect(step).to_have_attribute("data-status", re.compile("passed|failed"), timeout=timeout)
    if step.get_attribute("data-status") != "passed":
        pytest.fail(f"{testid} failed: {step.inner_text()} ({off_loop(_step_record, testid)})")


def _step_record(testid: str) -> dict:
    """What the latest identity check kept about a step: its code and words, for the failure
    message (the panel shows the words only)."""
    from kyc.models import IdentityCheck

    check = IdentityCheck.objects.order_by("-created_at").first()
    step = (check.steps if check else {}).get(testid.removeprefix("kyc-step-"), {})
    kept = {key: step[key] for key in ("status", "code", "detail") if key in step}
    return {**kept, "frames": len(step.get("evidence") or [])}


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
    customer.testid("business-select").select_option("account_change")
    customer.testid("call-start").click()
    status = customer.testid("call-status")
    expect(status).to_have_attribute("data-state", "waiting")
    call_id = status.get_attribute("data-call-id")
    teller.page.locator(f'[data-testid="call-accept"][data-call-id="{call_id}"]').click()
    for side in (customer, teller):
        expect(side.testid("call-status")).to_have_attribute(
            "data-state", "in-call", timeout=30_000
        )
    teller.media_flowing()
    return call_id


def show(customer: Participant, picture: str, teller: Participant) -> None:
    """Put a picture on the customer's camera and wait until the teller's video shows it (it
    has crossed the server; the backdrop colour tells the card's sides from the face)."""
    customer.page.evaluate("(name) => window.__cam.show(name)", picture)
    teller.page.wait_for_function(PHASE_IS, arg=picture, polling=100, timeout=20_000)


def verify_identity(customer: Participant, teller: Participant, person) -> None:
    teller.testid("kyc-start").click()
    customer.testid("kyc-consent-accept").click()
    expect(teller.testid("kyc-status")).to_have_attribute("data-status", "in_progress")
    show(customer, "front", teller)
    teller.testid("kyc-capture-front").click()
    passes(teller, "kyc-step-card_front")
    show(customer, "back", teller)
    teller.testid("kyc-capture-back").click()
    passes(teller, "kyc-step-card_back")
    expect(teller.testid("kyc-field-id_number")).to_have_value(person.id_number)
    teller.testid("kyc-field-address").fill(person.address)
    teller.testid("kyc-eyes-checked").check()
    teller.testid("kyc-fields-confirm").click()
    passes(teller, "kyc-step-national", timeout=30_000)
    show(customer, "face", teller)
    teller.testid("kyc-face-match").click()
    passes(teller, "kyc-step-face_match")
    teller.testid("kyc-liveness").click()
    expect(customer.testid("kyc-liveness-prompt")).to_be_visible()
    passes(teller, "kyc-step-liveness")
    expect(teller.testid("kyc-status")).to_have_attribute("data-status", "passed")
    expect(customer.testid("kyc-progress")).to_have_attribute("data-status", "passed")


def do_business(customer: Participant, teller: Participant, business: str, fill) -> str:
    """Teller: start, fill, push the agreement. Customer: read it to the end, confirm, PIN.
    Returns the receipt code both screens show."""
    teller.testid("case-business").select_option(business)
    teller.testid("case-start").click()
    card = teller.testid(f"case-{business}")
    expect(card).to_be_visible()
    fill(card)
    card.get_by_test_id("case-fill").click()
    send = card.get_by_test_id("case-agreement-send")
    expect(send).to_be_enabled()
    send.click()

    # The customer must reach the end of the agreement before "I have read and agree".
    accept = customer.testid("agreement-accept")
    expect(customer.testid("case-agreement")).to_be_visible()
    expect(accept).to_be_disabled()
    customer.testid("agreement-text").evaluate("(box) => { box.scrollTop = box.scrollHeight; }")
    expect(accept).to_be_enabled(timeout=10_000)
    accept.click()
    expect(card).to_have_attribute("data-status", re.compile("agreement_read|confirm"))

    expect(customer.testid("case-confirm")).to_be_visible()
    expect(customer.testid("confirm-summary")).not_to_be_empty()
    customer.testid("confirm-accept").click()

    # The PIN on the randomized keypad (its layout changes every time).
    expect(customer.testid("pin-entry")).to_be_visible()
    for digit in PIN:
        customer.page.locator(f'[data-testid="pin-key"][data-digit="{digit}"]').click()
    expect(card).to_have_attribute("data-status", "done", timeout=30_000)
    link = card.get_by_test_id("case-receipt-link")
    expect(link).to_be_visible()
    code = link.get_attribute("data-code")
    expect(
        customer.page.locator(f'[data-testid="case-receipt"][data-code="{code}"]')
    ).to_be_visible()
    return code


def test_one_call_one_identity_check_three_businesses(participants, live_stack, customer_on_file):
    customer, teller = participants
    person, account = customer_on_file

    def details(card):
        card.get_by_test_id("case-field-address").fill("上海市浦东新区世纪大道100号")

    def card_loss(card):
        card.get_by_test_id("case-field-card").select_option(index=1)
        card.get_by_test_id("case-field-kind").select_option("temporary")
        card.get_by_test_id("case-field-reason").select_option("lost")

    def transfer(card):
        card.get_by_test_id("case-field-from_account").select_option(index=1)
        card.get_by_test_id("case-field-to_account").fill("6230021000000004012")
        card.get_by_test_id("case-field-payee_name").fill("刘洋")
        card.get_by_test_id("case-field-amount").fill("1200.00")

    with diagnostics(live_stack, customer, teller):
        call_id = connect(customer, teller)
        verify_identity(customer, teller, person)
        codes = {
            business: do_business(customer, teller, business, fill)
            for business, fill in (
                ("details_update", details),
                ("card_loss_report", card_loss),
                ("transfer", transfer),
            )
        }
        # The receipts open for the customer: each link carries that receipt's own token.
        tokens = set()
        for code in codes.values():
            receipt = customer.page.locator(f'[data-testid="case-receipt"][data-code="{code}"]')
            html_href = receipt.locator("a").nth(0).get_attribute("href")
            pdf_href = receipt.locator("a").nth(1).get_attribute("href")
            tokens.add(parse_qs(urlsplit(html_href).query)["token"][0])
            page = customer.page.request.get(html_href)
            assert page.ok
            assert code.replace("-", "")[:4] in page.text().replace("-", "")
            pdf = customer.page.request.get(pdf_href)
            assert pdf.ok
            assert pdf.body()[:4] == b"%PDF"
        assert len(tokens) == len(codes)  # one token per receipt (a call token is one for all)
        teller.page.screenshot(path="/tmp/e2e-business-teller.png", full_page=True)
        customer.page.screenshot(path="/tmp/e2e-business-customer.png", full_page=True)

        teller.testid("call-hangup").click()
        summary = teller.testid("call-summary")
        expect(summary).to_be_visible()
        done = summary.locator('[data-testid="call-summary-case"][data-status="done"]')
        expect(done).to_have_count(3)

    for side in (customer, teller):
        assert not [line for line in side.console if line.startswith("pageerror")], side.console
        assert side.csp_violations == [], side.csp_violations  # the page's CSP blocked nothing
    off_loop(check_kept, call_id, codes, account)


def check_kept(call_id: str, codes: dict, account: dict) -> None:
    """One identity check served three businesses; three receipts; the money moved once."""
    from kyc.models import IdentityCheck
    from workflows.corebank_stub.models import LedgerEntry
    from workflows.models import BusinessCase, Receipt

    assert IdentityCheck.objects.filter(call_id=call_id).count() == 1
    cases = BusinessCase.objects.filter(call_id=call_id)
    assert sorted(cases.values_list("business", flat=True)) == sorted(codes)
    assert set(cases.values_list("status", flat=True)) == {"done"}
    assert Receipt.objects.filter(case__call_id=call_id).count() == 3
    moves = LedgerEntry.objects.filter(account__number=account["account_number"])
    assert list(moves.exclude(kind="seed").values_list("kind", "amount")) == [
        ("transfer_out", Decimal("-1200.00"))
    ]
    # What a QA reviewer is shown: every business's steps in the required order.
    from recordings.review import process_checks
    from recordings.selectors import recording_for_call, recording_timeline

    findings = process_checks(recording_timeline(recording_for_call(call_id)))
    assert {f["business"] for f in findings} == set(codes)
    assert [f for f in findings if not f["ok"]] == []
    keys = {f["key"] for f in findings}
    assert {"identity_before_business", "agreement_read_before_confirm"} <= keys
    assert {"confirm_before_pin", "pin_before_submission", "pin_span_closed"} <= keys
