"""The supervisor wallboard: its figures on known calls, who may open it, its live socket with
the supervisor's actions, and the page itself in a browser against the live server."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from playwright.sync_api import expect, sync_playwright

from queueing import clock
from queueing.models import (
    Business,
    Call,
    CallStatus,
    Offer,
    OfferStatus,
    PresenceStatus,
    Priority,
    TellerPresence,
)
from queueing.stats import wallboard
from signaling.client import CustomerClient, TellerClient
from signaling.consumers import SupervisorConsumer
from tests.browser import CHROMIUM, CHROMIUM_ARGS, csp_watched, off_loop
from tests.factories import catalogue_seed, staff_user
from tests.sockets import HOST, ORIGIN, Socket, session_cookie
from videobank.asgi import application

BANK_TZ = ZoneInfo("Asia/Shanghai")
# A weekday afternoon in the bank's time zone; "today" starts at local midnight.
NOW = datetime(2025, 3, 10, 15, 30, tzinfo=BANK_TZ)


# --- (a) the figures ----------------------------------------------------------------------------


@pytest.fixture
def frozen_clock():
    clock.set_now(NOW)
    yield NOW
    clock.set_now(None)


def _call(business: str, *, enqueued_at: datetime, **fields) -> Call:
    """A call row with the times given (``enqueued_at`` is auto_now_add, so set it after)."""
    call = Call.objects.create(business=Business.objects.get(key=business), **fields)
    Call.objects.filter(pk=call.pk).update(enqueued_at=enqueued_at)
    call.refresh_from_db()
    return call


def _answered(business: str, *, at: datetime, wait_s: float) -> Call:
    return _call(
        business,
        enqueued_at=at,
        status=CallStatus.ENDED,
        answered_at=at + timedelta(seconds=wait_s),
        ended_at=at + timedelta(seconds=wait_s + 120),
    )


def _abandoned(business: str, *, at: datetime, wait_s: float) -> Call:
    return _call(
        business,
        enqueued_at=at,
        status=CallStatus.ABANDONED,
        ended_at=at + timedelta(seconds=wait_s),
        end_reason="customer_left",
    )


@pytest.fixture
def known_day(catalogue, frozen_clock):
    """Today: 3 calls answered within 20 s (one exactly at 20 s) at 10:xx, one answered at 40 s
    and two abandoned (10 s, 30 s) at 14:xx, and three waiting; plus yesterday's calls."""
    ten, two = NOW.replace(hour=10, minute=5), NOW.replace(hour=14, minute=10)
    for wait in (5, 15, 20):
        _answered("card_loss", at=ten, wait_s=wait)
    _answered("card_loss", at=two, wait_s=40)
    _abandoned("card_loss", at=two, wait_s=10)
    _abandoned("card_loss", at=two, wait_s=30)
    # Yesterday: not in today's figures; a call still waiting since then still counts as waiting.
    yesterday = NOW - timedelta(days=1)
    _answered("card_loss", at=yesterday, wait_s=300)
    _abandoned("card_loss", at=yesterday, wait_s=5)
    stale = _call("password_reset", enqueued_at=NOW - timedelta(hours=16))
    waiting_card = _call("card_loss", enqueued_at=NOW - timedelta(seconds=90))
    teller = staff_user("teller-pref", "teller")
    elderly = _call(
        "password_reset",
        enqueued_at=NOW - timedelta(seconds=30),
        priority=Priority.ELDERLY,
        preferred_teller=teller,
        preferred_until=NOW + timedelta(seconds=60),
    )
    on_break = staff_user("teller-break", "teller")
    TellerPresence.objects.create(
        teller=on_break, status=PresenceStatus.BREAK, break_reason="missed_offers"
    )
    TellerPresence.objects.filter(teller=on_break).update(since=NOW - timedelta(seconds=125))
    TellerPresence.objects.create(teller=teller, status=PresenceStatus.AVAILABLE)
    TellerPresence.objects.filter(teller=teller).update(since=NOW - timedelta(seconds=10))
    return {"stale": stale, "waiting_card": waiting_card, "elderly": elderly}


def test_overall_figures(known_day):
    board = wallboard()
    overall = board["overall"]
    assert board["threshold_s"] == 20
    assert (overall["answered"], overall["abandoned"]) == (4, 2)
    assert overall["service_level"] == 0.75  # 3 within 20 s of 4 answered
    assert overall["service_level_2"] == round(4 / 6, 4)  # (3 + 1 abandoned within) / (4 + 2)
    assert overall["asa_s"] == 20.0  # (5 + 15 + 20 + 40) / 4
    assert overall["abandon_rate"] == round(2 / 6, 4)
    assert overall["waiting"] == 3  # today's two and yesterday's one
    assert overall["longest_wait_s"] == 16 * 3600


def test_per_business_figures(known_day):
    rows = {row["business"]: row for row in wallboard()["businesses"]}
    card = rows["card_loss"]
    assert (card["waiting"], card["longest_wait_s"]) == (1, 90)
    assert (card["answered"], card["abandoned"], card["service_level"]) == (4, 2, 0.75)
    assert card["name"] == {"zh": "借记卡挂失", "en": "Debit card loss report"}
    reset = rows["password_reset"]
    assert (reset["waiting"], reset["longest_wait_s"]) == (2, 16 * 3600)
    assert (reset["answered"], reset["service_level"], reset["service_level_2"]) == (0, None, None)
    idle = rows["consultation"]
    assert (idle["waiting"], idle["longest_wait_s"], idle["asa_s"]) == (0, 0, None)


def test_service_level_by_hour(known_day):
    hours = {row["hour"]: row for row in wallboard()["service_level_by_hour"]}
    assert sorted(hours) == [10, 14, 15]  # local hours; yesterday's calls are not here
    assert (hours[10]["answered"], hours[10]["service_level"]) == (3, 1.0)
    assert (hours[14]["answered"], hours[14]["abandoned"]) == (1, 2)
    assert hours[14]["service_level"] == 0.0
    assert hours[14]["service_level_2"] == round(1 / 3, 4)
    assert hours[14]["asa_s"] == 40.0
    assert hours[15]["service_level"] is None  # only waiting calls so far


def test_waiting_calls_and_tellers(known_day):
    board = wallboard()
    calls = board["waiting_calls"]
    # Service order: the elderly customer first, then by waiting time.
    assert [c["call_id"] for c in calls] == [
        str(known_day["elderly"].id),
        str(known_day["stale"].id),
        str(known_day["waiting_card"].id),
    ]
    first = calls[0]
    assert first["business"] == "password_reset"
    assert (first["priority"], first["waited_s"], first["status"]) == (1, 30, "waiting")
    assert first["preferred_teller"] == "teller-pref"
    assert calls[2]["preferred_teller"] is None
    assert calls[2]["waited_s"] == 90

    assert board["tellers_by_state"] == {"break": 1, "available": 1}
    tellers = {t["teller"]: t for t in board["tellers"]}
    assert tellers["teller-break"] == {
        "teller": "teller-break",
        "status": "break",
        "reason": "missed_offers",
        "since_s": 125,
    }
    assert tellers["teller-pref"]["since_s"] == 10
    json.dumps(board)  # it goes over the socket as is


def test_a_preference_that_ran_out_is_not_shown(known_day):
    Call.objects.filter(pk=known_day["elderly"].pk).update(preferred_until=NOW)
    assert wallboard()["waiting_calls"][0]["preferred_teller"] is None


# --- (b) the page -------------------------------------------------------------------------------


def _client_for(username: str, *groups: str) -> Client:
    client = Client()
    client.force_login(staff_user(username, *groups))
    return client


@pytest.mark.django_db
def test_wallboard_page_needs_the_supervisor_group():
    anonymous = Client().get("/console/wallboard/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/console/login/")
    assert _client_for("teller-w", "teller").get("/console/wallboard/").status_code == 403
    assert _client_for("qa-w", "qa").get("/console/wallboard/").status_code == 403
    page = _client_for("super-w", "supervisor").get("/console/wallboard/")
    assert page.status_code == 200
    html = page.content.decode()
    for testid in (
        "wallboard-waiting",
        "wallboard-sl",
        "wallboard-sl2",
        "wallboard-asa",
        "wallboard-abandon",
        "wallboard-businesses",
        "wallboard-tellers",
        "wallboard-chart",
        "wallboard-alerts",
        "move-call",
        "set-presence",
    ):
        assert f'data-testid="{testid}"' in html, testid
    assert "实时监控大屏" in html
    english = _client_for("super-w", "supervisor")
    english.cookies["lang"] = "en"
    assert "Wallboard" in english.get("/console/wallboard/").content.decode()


# --- (c) the socket -----------------------------------------------------------------------------


@pytest.fixture
def sockets_settings(settings, monkeypatch):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    # Fresh figures quickly, so a test sees the effect of an action without a 2 s wait.
    monkeypatch.setattr(SupervisorConsumer, "push_every_s", 0.2)


async def _staff_socket(path: str, username: str, *groups: str) -> Socket:
    sock = Socket(path, await sync_to_async(session_cookie)(username, *groups))
    await sock.open()
    return sock


def _pending_offers(call_id: str) -> list[str]:
    return [
        o.teller.get_username()
        for o in Offer.objects.filter(call_id=call_id, status=OfferStatus.PENDING).select_related(
            "teller"
        )
    ]


def _preferred(call_id: str) -> str | None:
    call = Call.objects.select_related("preferred_teller").get(pk=call_id)
    return call.preferred_teller.get_username() if call.preferred_teller else None


@pytest.mark.django_db(transaction=True)
async def test_supervisor_moves_a_waiting_call_to_a_named_teller(sockets_settings):
    await sync_to_async(catalogue_seed)()
    teller1 = await _staff_socket("/ws/teller/", "teller1", "teller")
    teller2 = await _staff_socket("/ws/teller/", "teller2", "teller")
    supervisor = await _staff_socket("/ws/supervisor/", "super1", "supervisor")
    customer = Socket("/ws/customer/")
    await customer.open()
    try:
        await teller1.send("presence.set", status="available")
        await teller1.expect("presence")
        await customer.send("call.request", business="card_loss")
        call_id = (await customer.expect("call.queued"))["call_id"]
        assert (await teller1.expect("call.offer"))["call_id"] == call_id

        # The wallboard lists the call (ringing teller1) with its id.
        frame = await supervisor.expect(
            "wallboard", where=lambda m: any(c["call_id"] == call_id for c in m["waiting_calls"])
        )
        assert frame["overall"]["waiting"] == 0  # ringing, not waiting
        listed = next(c for c in frame["waiting_calls"] if c["call_id"] == call_id)
        assert (listed["business"], listed["status"]) == ("card_loss", "offered")

        # Moved to teller2, who is offline: teller1's offer is withdrawn and the call waits for
        # teller2 (teller1, though free, is not offered it again).
        await supervisor.send("call.move", call_id=call_id, teller="teller2")
        assert (await teller1.expect("offer.withdrawn"))["call_id"] == call_id
        frame = await supervisor.expect(
            "wallboard",
            where=lambda m: any(c.get("preferred_teller") == "teller2" for c in m["waiting_calls"]),
        )
        assert frame["waiting_calls"][0]["call_id"] == call_id
        assert frame["waiting_calls"][0]["status"] == "waiting"
        assert await sync_to_async(_preferred)(call_id) == "teller2"
        assert await sync_to_async(_pending_offers)(call_id) == []

        # teller2 comes in: the call rings for teller2.
        await teller2.send("presence.set", status="available")
        assert (await teller2.expect("call.offer"))["call_id"] == call_id
        assert await sync_to_async(_pending_offers)(call_id) == ["teller2"]

        # Moved back to teller1, who is available: an offer to teller1 at once.
        await supervisor.send("call.move", call_id=call_id, teller="teller1")
        assert (await teller2.expect("offer.withdrawn"))["call_id"] == call_id
        assert (await teller1.expect("call.offer"))["call_id"] == call_id
        assert await sync_to_async(_preferred)(call_id) == "teller1"
        assert await sync_to_async(_pending_offers)(call_id) == ["teller1"]
    finally:
        for sock in (customer, supervisor, teller2, teller1):
            await sock.close()


@pytest.mark.django_db(transaction=True)
async def test_a_call_cannot_be_moved_to_a_non_teller(sockets_settings):
    await sync_to_async(catalogue_seed)()
    await sync_to_async(staff_user)("qa-x", "qa")
    supervisor = await _staff_socket("/ws/supervisor/", "super1", "supervisor")
    customer = Socket("/ws/customer/")
    await customer.open()
    try:
        await customer.send("call.request", business="card_loss")
        call_id = (await customer.expect("call.queued"))["call_id"]
        await supervisor.send("call.move", id="m1", call_id=call_id, teller="qa-x")
        error = await supervisor.expect("error")
        assert (error["ref"], error["code"]) == ("m1", "conflict"), error
        assert await sync_to_async(_preferred)(call_id) is None
        await supervisor.send("presence.set_for", id="m2", teller="nobody", status="break")
        assert (await supervisor.expect("error"))["ref"] == "m2"
    finally:
        await customer.close()
        await supervisor.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("groups", [None, ("teller",), ("qa",)])
async def test_supervisor_socket_refuses_others(sockets_settings, groups):
    await sync_to_async(catalogue_seed)()
    cookie = None if groups is None else await sync_to_async(session_cookie)("user-x", *groups)
    comm = WebsocketCommunicator(
        application,
        "/ws/supervisor/",
        headers=[ORIGIN, HOST] + ([(b"cookie", cookie)] if cookie else []),
    )
    connected, code = await comm.connect()
    assert (connected, code) == (False, 4403)
    await comm.disconnect()


# --- (d) the page in a browser ------------------------------------------------------------------

SUPERVISOR = "super-browser"
TELLER = "teller-browser"
PASSWORD = "pw-for-wallboard-tests"


async def _answered_call(base_url: str) -> str:
    """A customer calls, a teller answers at once and hangs up: one call answered in time."""
    teller = await TellerClient.signed_in(base_url, TELLER, PASSWORD)
    try:
        await teller.go_available()
        async with CustomerClient(base_url) as customer:
            call_id = await customer.call("card_loss")
            offer = await teller.wait_for("call.offer")
            assert offer["call_id"] == call_id
            await teller.accept(call_id)
            await customer.wait_for("call.answered")
            await customer.hangup()
            await teller.wait_for("call.ended")
        return call_id
    finally:
        await teller.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_wallboard_page_shows_live_figures(live_stack):
    staff_user(SUPERVISOR, "supervisor", password=PASSWORD)
    staff_user(TELLER, "teller", password=PASSWORD)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        console: list[str] = []
        violations: list[str] = []
        try:
            context = browser.new_context(
                base_url=live_stack.url, viewport={"width": 1440, "height": 1000}, locale="en-US"
            )
            context.set_default_timeout(20_000)
            csp_watched(context, violations)
            page = context.new_page()
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.goto("/console/wallboard/")
            expect(page).to_have_url(re.compile(r"/console/login/"))
            page.get_by_test_id("login-username").fill(SUPERVISOR)
            page.get_by_test_id("login-password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page).to_have_url(re.compile(r"/console/wallboard/$"))
            expect(page.get_by_test_id("wallboard-updated")).to_have_attribute("data-state", "live")

            off_loop(asyncio.run, _answered_call(live_stack.url))

            expect(page.get_by_test_id("wallboard-sl")).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
            expect(page.get_by_test_id("wallboard-asa")).to_have_text(re.compile(r"^\d+ s$"))
            expect(page.get_by_test_id("wallboard-abandon")).to_have_text(re.compile(r"%$"))
            expect(page.get_by_test_id("wallboard-waiting")).to_have_text(re.compile(r"^\d+$"))
            card_loss = page.get_by_test_id("wallboard-businesses").locator(
                'tr[data-business="card_loss"]'
            )
            expect(card_loss).to_contain_text("Debit card loss report")
            chart = page.get_by_test_id("wallboard-chart")
            expect(chart.locator("svg[role='img'] rect").first).to_be_visible()
            tellers = page.get_by_test_id("wallboard-tellers")
            expect(tellers.locator(f'tr[data-teller="{TELLER}"]')).to_have_count(1)
            errors = [line for line in console if line.startswith(("pageerror", "error"))]
            assert not errors, console
            assert violations == []  # the chart and live figures break no CSP rule
        except BaseException:
            print("\n".join(console[-40:]))
            print(live_stack.logs())
            raise
        finally:
            browser.close()
