"""End to end in real browsers: skill-based routing rings the teller who can serve the call.

Two teller consoles and one customer page, each its own headless Chromium, against the live
stack. The teller who has been idle longest has no corporate skill; a customer asking for a
corporate account must wait for the teller who has it (seeing position and estimated wait), and
the call must never ring the idle teller. Relaxation for ``corporate_account`` only reaches tellers
without the skill at its 180 s "generalist" step, and the idle teller is not a generalist, so a
few seconds of waiting here prove the router skipped it rather than that it was slow.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from queueing.models import Call, CallStatus
from tests.browser import Participant, diagnostics, launch, off_loop
from tests.factories import staff_user
from tests.media import face_y4m, pattern_y4m

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUSINESS = "corporate_account"
PASSWORD = "pw-for-routing-tests"
IDLE, CORP = "teller-idle", "teller-corp"
NOT_OFFERED_FOR_MS = 3_000  # page-clock time the waiting call must not ring the idle teller
MEDIA_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def routing_cameras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("routing-cameras")
    return {"customer": face_y4m(folder / "face.y4m"), "teller": pattern_y4m(folder / "bars.y4m")}


@pytest.fixture
def tellers(catalogue):
    # Idle: everything but corporate banking. Corp: corporate banking at level 4.
    staff_user(IDLE, "teller", password=PASSWORD, skills={"general": 3, "cards": 3, "deposits": 3})
    staff_user(CORP, "teller", password=PASSWORD, skills={"corporate": 4})


@pytest.fixture
def browsers(live_stack, routing_cameras, tellers):
    with sync_playwright() as playwright:
        people = {
            "customer": launch(
                playwright, "customer", routing_cameras["customer"], base_url=live_stack.url
            ),
            IDLE: launch(playwright, IDLE, routing_cameras["teller"], base_url=live_stack.url),
            CORP: launch(playwright, CORP, routing_cameras["teller"], base_url=live_stack.url),
        }
        try:
            yield people
        finally:
            for person in people.values():
                person.close()


def sign_in(teller: Participant) -> None:
    page = teller.page
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login/"))
    teller.testid("login-username").fill(teller.name)
    teller.testid("login-password").fill(PASSWORD)
    teller.testid("login-submit").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(teller.testid("go-available")).to_be_enabled()  # the console's socket is up


def go_available(teller: Participant) -> None:
    teller.testid("go-available").click()
    expect(teller.testid("presence")).to_have_attribute("data-presence", "available")


def offer_buttons(teller: Participant, call_id: str | None = None):
    selector = '[data-testid="call-accept"]'
    if call_id:
        selector += f'[data-call-id="{call_id}"]'
    return teller.page.locator(selector)


def call_row(call_id: str) -> tuple[str, str]:
    call = Call.objects.select_related("teller").get(pk=call_id)
    return call.status, call.teller.get_username() if call.teller else ""


def test_corporate_call_rings_the_skilled_teller_not_the_idle_one(browsers, live_stack):
    customer, idle, corp = browsers["customer"], browsers[IDLE], browsers[CORP]

    with diagnostics(live_stack, customer, idle, corp):
        # The unskilled teller has been free longest; the corporate teller is signed in but
        # offline, so nobody who may take the call is free.
        sign_in(idle)
        go_available(idle)
        sign_in(corp)
        expect(corp.testid("presence")).to_have_attribute("data-presence", "offline")

        customer.page.goto("/")
        customer.testid("business-select").select_option(BUSINESS)
        customer.testid("call-start").click()
        status = customer.testid("call-status")
        expect(status).to_have_attribute("data-state", "waiting")
        call_id = status.get_attribute("data-call-id")
        assert call_id

        # Waiting: first in line, with an estimated wait in words and in seconds.
        position = customer.testid("queue-position")
        expect(position).to_have_attribute("data-position", "1")
        eta = customer.testid("queue-eta")
        expect(eta).to_have_attribute("data-seconds", re.compile(r"^[1-9]\d*$"))
        expect(eta).not_to_be_empty()
        customer.page.screenshot(path="/tmp/routing-customer-waiting.png")

        # The idle teller sees the call listed (information only) but is never rung for it.
        expect(
            idle.page.locator(f'[data-testid="waiting-call"][data-call-id="{call_id}"]')
        ).to_be_visible()
        idle.wait_page_clock(idle.page.evaluate("performance.now()") + NOT_OFFERED_FOR_MS)
        expect(offer_buttons(idle)).to_have_count(0)
        expect(idle.testid("call-offer")).to_have_count(0)
        expect(idle.testid("presence")).to_have_attribute("data-presence", "available")
        expect(status).to_have_attribute("data-state", "waiting")
        assert off_loop(call_row, call_id) == (CallStatus.WAITING, "")

        # The corporate teller goes available and is rung at once, with a countdown.
        corp.testid("go-available").click()
        accept = offer_buttons(corp, call_id)
        expect(accept).to_be_visible()
        offer = corp.testid("call-offer")
        expect(offer).to_contain_text("对公")  # the business, in the console's language
        expect(corp.testid("call-reject")).to_have_attribute("data-call-id", call_id)
        expect(corp.testid("offer-countdown")).to_have_attribute(
            "data-seconds", re.compile(r"^[1-9]\d*$")
        )
        expect(corp.testid("presence")).to_have_attribute("data-presence", "offered")
        corp.page.screenshot(path="/tmp/routing-teller-offer.png")
        expect(offer_buttons(idle)).to_have_count(0)
        accept.click()

        # In call: media both ways between the customer and the corporate teller.
        for side in (customer, corp):
            expect(side.testid("call-status")).to_have_attribute(
                "data-state", "in-call", timeout=MEDIA_TIMEOUT_MS
            )
        expect(corp.testid("call-status")).to_have_attribute("data-call-id", call_id)
        expect(offer).to_have_count(0)
        for side in (customer, corp):
            side.media_flowing()
        assert off_loop(call_row, call_id) == (CallStatus.CONNECTED, CORP)
        expect(idle.testid("presence")).to_have_attribute("data-presence", "available")
        expect(idle.testid("call-status")).to_have_attribute("data-state", "idle")

        # Hang up: both ends see it; the teller goes through wrap-up back to available.
        corp.testid("call-hangup").click()
        for side in (customer, corp):
            expect(side.testid("call-status")).to_have_attribute("data-state", "ended")
        expect(corp.testid("presence")).to_have_attribute(
            "data-presence", re.compile(r"^(wrap_up|available)$")
        )
        expect(customer.testid("call-start")).to_be_enabled()

    for side in (customer, idle, corp):
        assert not [line for line in side.console if line.startswith("pageerror")], side.console
    assert off_loop(call_row, call_id) == (CallStatus.ENDED, CORP)
