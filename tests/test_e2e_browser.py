"""End to end in real browsers: a teller and a customer, five calls in a row through the server.

Two headless Chromium processes with fake cameras (the customer's is a real face photograph, the
teller's a test pattern) talk to the live daphne stack over the real pages, signaling and the
server's aiortc media worker. Each call must carry video and audio both ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect, sync_playwright

from queueing.models import Call, CallStatus
from tests.browser import Participant, diagnostics, launch, off_loop
from tests.factories import staff_user
from tests.media import face_y4m, pattern_y4m
from tests.recording_checks import check_call_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CALLS = 5
CALL_MS = 8_000  # how long each call stays up once media flows
MEDIA_TIMEOUT_MS = 30_000
TELLER = "teller-e2e"
PASSWORD = "pw-for-e2e-tests"
BUSINESS = "card_loss"


@dataclass(frozen=True)
class PlacedCall:
    call_id: str
    hung_up_by: str  # "customer" or "teller"


# Every call the browser test placed, in order. Checks on what the server kept of a call (the
# recording, its timeline) read this list; they run inside the test while its rows still exist
# (see ``check_calls_kept``; ORM code goes through ``off_loop`` while the browsers are open).
PLACED_CALLS: list[PlacedCall] = []


@pytest.fixture(scope="session")
def cameras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cameras")
    return {"customer": face_y4m(folder / "face.y4m"), "teller": pattern_y4m(folder / "bars.y4m")}


@pytest.fixture
def teller_account(catalogue):
    return staff_user(TELLER, "teller", password=PASSWORD)


@pytest.fixture
def participants(live_stack, cameras, teller_account):
    with sync_playwright() as playwright:
        customer = launch(playwright, "customer", cameras["customer"], base_url=live_stack.url)
        teller = launch(playwright, "teller", cameras["teller"], base_url=live_stack.url)
        try:
            yield customer, teller
        finally:
            customer.close()
            teller.close()


def teller_signs_in_and_goes_available(teller: Participant) -> None:
    page = teller.page
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login/"))
    teller.testid("login-username").fill(TELLER)
    teller.testid("login-password").fill(PASSWORD)
    teller.testid("login-submit").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    teller.testid("go-available").click()
    expect(teller.testid("presence")).to_have_attribute("data-presence", "available")


def place_call(customer: Participant, teller: Participant, *, hang_up_side: str) -> PlacedCall:
    status = customer.testid("call-status")
    customer.testid("business-select").select_option(BUSINESS)
    customer.testid("call-start").click()

    # Waiting: first in the queue, and on the teller's list.
    expect(status).to_have_attribute("data-state", "waiting")
    position = customer.testid("queue-position")
    expect(position).to_have_attribute("data-position", "1")
    expect(position).to_contain_text("1")
    call_id = status.get_attribute("data-call-id")
    assert call_id
    accept = teller.page.locator(f'[data-testid="call-accept"][data-call-id="{call_id}"]')
    expect(accept).to_be_enabled()
    accept.click()

    # In call on both sides: remote video decoding and audio arriving, then still advancing
    # after the call has run for a while.
    for side in (customer, teller):
        expect(side.testid("call-status")).to_have_attribute(
            "data-state", "in-call", timeout=MEDIA_TIMEOUT_MS
        )
    expect(teller.testid("call-status")).to_have_attribute("data-call-id", call_id)
    expect(accept).to_have_count(0)
    first = {side.name: side.media_flowing() for side in (customer, teller)}
    for side in (customer, teller):
        side.media_flowing(more_than_frames=first[side.name]["framesDecoded"])
    if not PLACED_CALLS:
        customer.page.screenshot(path="/tmp/e2e-customer.png")
        teller.page.screenshot(path="/tmp/e2e-teller.png")
    customer.wait_page_clock(customer.page.evaluate("performance.now()") + CALL_MS)
    for side in (customer, teller):
        before = side.page.evaluate("window.vbStats()")
        after = side.media_flowing(more_than_frames=before["framesDecoded"])
        assert after["audioPacketsReceived"] > first[side.name]["audioPacketsReceived"]

    # Hang up; both sides end, the teller is free, the customer can call again.
    (customer if hang_up_side == "customer" else teller).testid("call-hangup").click()
    for side in (customer, teller):
        expect(side.testid("call-status")).to_have_attribute("data-state", "ended")
    expect(teller.testid("presence")).to_have_attribute("data-presence", "available")
    expect(customer.testid("call-start")).to_be_enabled()
    placed = PlacedCall(call_id=call_id, hung_up_by=hang_up_side)
    PLACED_CALLS.append(placed)
    return placed


def check_calls_kept(placed: list[PlacedCall]) -> None:
    """What the server kept of each call: ended, by the side that hung up."""
    for call in placed:
        row = Call.objects.get(pk=call.call_id)
        assert row.status == CallStatus.ENDED
        assert row.end_reason == f"hangup_{call.hung_up_by}"


def check_recordings_kept(placed: list[PlacedCall], out_dir) -> list[dict]:
    """Each call's decrypted recording: video and audio of both sides, spanning the call."""
    return [check_call_recording(call.call_id, out_dir / call.call_id) for call in placed]


def test_five_calls_in_a_row_with_media_both_ways(participants, live_stack, tmp_path):
    customer, teller = participants
    PLACED_CALLS.clear()

    with diagnostics(live_stack, customer, teller):
        teller_signs_in_and_goes_available(teller)
        customer.page.goto("/")
        expect(customer.testid("call-status")).to_have_attribute("data-state", "idle")

        for n in range(CALLS):
            place_call(customer, teller, hang_up_side=("customer", "teller")[n % 2])

    assert len({call.call_id for call in PLACED_CALLS}) == CALLS
    for side in (customer, teller):
        assert not [line for line in side.console if line.startswith("pageerror")], side.console
        assert side.csp_violations == [], side.csp_violations  # the page's CSP blocked nothing
    off_loop(check_calls_kept, PLACED_CALLS)
    for figures in off_loop(check_recordings_kept, PLACED_CALLS, tmp_path):
        print("recording", figures)
