"""End to end in real browsers: a branch technician enrols a kiosk with the credential the admin
showed, its customer calls from the kiosk page, the teller's console sees a VTM call, and the
kiosk's (simulated) card reader reads the chip into the identity check. The same page without the
enrolment says so and offers no peripherals."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import diagnostics, launch
from tests.factories import staff_user
from tests.media import pattern_y4m
from tests.sockets import kiosk_registered

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TELLER = "teller-kiosk"
PASSWORD = "pw-for-kiosk-tests"
STEP_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _simulated_peripherals(monkeypatch):
    """The kiosk page's simulated card reader (a demo's; production's default is off), for the
    servers this module starts (before they start: autouse fixtures come first)."""
    monkeypatch.setenv("KIOSK_SIMULATOR", "true")


@pytest.fixture
def participants(live_stack, catalogue, tmp_path):
    staff_user(TELLER, "teller", password=PASSWORD)
    _, credential = kiosk_registered(name="Branch 7 kiosk A")  # as the admin registers it
    camera = pattern_y4m(tmp_path / "bars.y4m")
    with sync_playwright() as playwright:
        kiosk = launch(playwright, "kiosk", camera, base_url=live_stack.url)
        teller = launch(playwright, "teller", camera, base_url=live_stack.url)
        try:
            yield kiosk, teller, credential
        finally:
            kiosk.close()
            teller.close()


def test_an_enrolled_kiosk_calls_on_the_vtm_channel_and_its_card_reader_counts(
    participants, live_stack
):
    kiosk, teller, credential = participants
    with diagnostics(live_stack, kiosk, teller):
        # Not enrolled yet: the page says so and has no peripherals.
        kiosk.page.goto("/kiosk/")
        expect(kiosk.testid("kiosk-enrolment")).to_have_attribute("data-enrolled", "false")
        expect(kiosk.testid("sim-peripherals")).to_have_count(0)

        # The technician pastes the credential once.
        kiosk.testid("kiosk-enrol-link").click()
        kiosk.testid("kiosk-credential-input").fill("vtm_0123456789abcdef_" + "A" * 43)
        kiosk.testid("kiosk-enrol-submit").click()
        expect(kiosk.testid("kiosk-enrol-error")).to_contain_text("凭证")
        kiosk.testid("kiosk-credential-input").fill(credential)
        kiosk.testid("kiosk-enrol-submit").click()
        expect(kiosk.page).to_have_url(re.compile(r"/kiosk/$"))
        expect(kiosk.testid("kiosk-enrolment")).to_have_attribute("data-enrolled", "true")
        expect(kiosk.testid("kiosk-enrolment")).to_contain_text("Branch 7 kiosk A")
        # The page's scripts cannot read the credential.
        assert credential not in kiosk.page.evaluate("document.cookie")

        page = teller.page
        page.goto("/console/")
        teller.testid("login-username").fill(TELLER)
        teller.testid("login-password").fill(PASSWORD)
        teller.testid("login-submit").click()
        teller.testid("go-available").click()
        expect(teller.testid("presence")).to_have_attribute("data-presence", "available")

        kiosk.testid("business-select").select_option("account_change")
        kiosk.testid("call-start").click()
        status = kiosk.testid("call-status")
        expect(status).to_have_attribute("data-state", "waiting")
        call_id = status.get_attribute("data-call-id")
        expect(page.locator(f'[data-call-id="{call_id}"] [data-offer-channel]')).to_have_text("VTM")
        page.locator(f'[data-testid="call-accept"][data-call-id="{call_id}"]').click()
        for side in (kiosk, teller):
            expect(side.testid("call-status")).to_have_attribute(
                "data-state", "in-call", timeout=30_000
            )

        teller.testid("kyc-start").click()
        kiosk.testid("kyc-consent-accept").click()
        expect(teller.testid("kyc-status")).to_have_attribute("data-status", "in_progress")

        # The simulated reader puts a card holder with the kiosk camera's face on the national
        # registry (a face detection: seconds on a busy machine), then the chip is read.
        kiosk.testid("sim-id-card").click()
        expect(kiosk.testid("sim-status")).to_have_text("已读取证件芯片", timeout=STEP_TIMEOUT_MS)
        expect(teller.testid("kyc-peripheral-event").first).to_contain_text("id_card_reader")
        expect(teller.testid("kyc-step-card_front")).to_have_attribute(
            "data-status", "passed", timeout=STEP_TIMEOUT_MS
        )
