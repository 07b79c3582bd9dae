"""In real browsers: a long queue on the teller console, a full one on the customer page.

A teller console with 60 calls waiting lists the first 20 and says how many more wait, and shows
an elderly priority as the customer's claim; the customer who calls when the queue is full (the
cap is 50 here) is told so in words and can book the callback offered instead; no place in the
queue is taken.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from queueing.models import Call, CallbackRequest, CallStatus
from tests.browser import diagnostics, launch, off_loop
from tests.factories import staff_user
from tests.livestack import LiveStack
from tests.media import face_y4m, pattern_y4m
from tests.test_queue_limits import many_waiting
from videobank.i18n import TEXT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TELLER, PASSWORD = "teller-long-queue", "pw-for-queue-tests"


def zh(key: str, **params) -> str:
    text = TEXT[key]["zh"]  # the browsers ask for Chinese (locale zh-CN)
    for name, value in params.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


@pytest.fixture
def stack(catalogue, no_shared_stack, tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUE_MAX_WAITING", "50")
    monkeypatch.setenv("QUEUE_SNAPSHOT_CALLS", "20")
    live = LiveStack(tmp_path / "stack-logs").start()
    try:
        yield live
    finally:
        live.stop()


def test_a_long_queue_on_the_console_and_a_full_one_on_the_customer_page(stack, tmp_path):
    many_waiting(60)  # a tenth of them elderly claims, served first
    staff_user(TELLER, "teller", password=PASSWORD)
    with sync_playwright() as playwright:
        teller = launch(playwright, TELLER, pattern_y4m(tmp_path / "bars.y4m"), base_url=stack.url)
        customer = launch(
            playwright, "customer", face_y4m(tmp_path / "face.y4m"), base_url=stack.url
        )
        try:
            with diagnostics(stack, teller, customer):
                page = teller.page
                page.goto("/console/")
                teller.testid("login-username").fill(TELLER)
                teller.testid("login-password").fill(PASSWORD)
                teller.testid("login-submit").click()
                expect(page).to_have_url(re.compile(r"/console/$"))

                # The first 20, in service order, and how many more: never the whole queue.
                expect(page.locator('[data-testid="waiting-call"]')).to_have_count(20)
                more = teller.testid("waiting-more")
                expect(more).to_have_attribute("data-more", "40")
                expect(more).to_have_text(zh("console.more_waiting", n=40))
                badge = page.locator('[data-testid="waiting-call"] .badge').first
                expect(badge).to_have_attribute("data-claim", "claimed")
                expect(badge).to_contain_text(zh("priority.claimed"))

                # The queue is over its cap: the customer is told, and offered a callback.
                customer.page.goto("/")
                customer.testid("business-select").select_option("card_loss")
                customer.testid("call-start").click()
                status = customer.testid("call-status")
                expect(status).to_contain_text(zh("error.queue_full"))
                callback = customer.testid("callback-request")
                expect(callback).to_be_enabled()
                expect(customer.page.locator("[data-callback-offer] p")).to_have_text(
                    zh("customer.callback_full")
                )
                callback.click()
                expect(status).to_contain_text(zh("status.callback_booked"))
                expect(callback).to_be_hidden()
        finally:
            teller.close()
            customer.close()

    assert off_loop(CallbackRequest.objects.count) == 1
    assert off_loop(Call.objects.filter(status=CallStatus.WAITING).count) == 60
