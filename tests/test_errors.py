"""One error shape (videobank/errors.py): a refusal reads the same over a socket and over HTTP —
the same code, the same words in English and Chinese, the same fields, its HTTP status — and a
fault of the server is ``internal`` (a socket) or the 500 page (HTTP), logged with its traceback,
its text never sent. Everything goes through the real ASGI router and Django's test client."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path
from django.utils import timezone

from kyc.models import IdentityCheck, IdentityEvidence
from kyc.national_stub.models import Citizen
from queueing import limits
from queueing.access import customer_token_issue
from queueing.models import Business, Call, CallEvent, CallStatus, MediaWorker
from signaling import access
from tests.factories import catalogue_seed, done_transfer, staff_user
from tests.sockets import Socket, kiosk_registered, session_cookie
from tests.test_kyc_sockets import CHIP_FIELDS, connected
from videobank.urls import urlpatterns as bank_urlpatterns

pytestmark = [pytest.mark.django_db(transaction=True)]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture(autouse=True)
def _fresh_limits():
    limits.limits_reset()
    yield
    limits.limits_reset()


@pytest.fixture
async def seeded():
    await sync_to_async(catalogue_seed)()


@pytest.fixture
async def media_channel(seeded):
    name = f"media.errors{uuid.uuid4().hex}"
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=name, host="test", pid=1, heartbeat_at=timezone.now()
    )
    return name


def same_refusal(frame: dict, answer, status: int, code: str) -> dict[str, str]:
    """The socket's ``error`` frame and the HTTP answer say the same thing; returns the words."""
    body = answer.json()
    assert (answer.status_code, body["code"]) == (status, code), body
    assert frame["code"] == code, frame
    words = body["detail"]
    assert set(words) == {"en", "zh"}
    assert HAN.search(words["zh"]), words
    assert not HAN.search(words["en"]), words
    assert frame["detail"] == f"{words['en']} / {words['zh']}"
    return words


def snapshot_b64() -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 130, 140)).save(out, format="JPEG")
    return base64.b64encode(out.getvalue()).decode()


# --- the same refusal, two transports -------------------------------------------------------------


async def test_a_forbidden_reads_the_same_over_a_socket_and_over_http(seeded, settings):
    """A web page is not a kiosk: its card reader is refused on the socket (``peripheral.event``)
    and over HTTP (the simulated card reader) with the same code, status and words."""
    settings.KIOSK_SIMULATOR = True
    page = Socket("/ws/customer/")
    await page.open()
    await page.send("call.request", business="card_loss")
    call_id = (await page.expect("call.queued"))["call_id"]
    await page.send(
        "peripheral.event",
        id="p1",
        call_id=call_id,
        device="id_card_reader",
        event="card_read",
        data={"fields": CHIP_FIELDS},
    )
    frame = await page.expect("error")
    assert frame["ref"] == "p1"

    def over_http():
        body = {
            "token": customer_token_issue(call_id=uuid.UUID(call_id)),
            "photo_jpeg_b64": snapshot_b64(),
        }
        return Client().post("/kyc/simulated-card/", json.dumps(body), "application/json")

    citizens = await sync_to_async(Citizen.objects.count)()
    answer = await sync_to_async(over_http)()
    words = same_refusal(frame, answer, 403, "forbidden")
    assert (words["en"], words["zh"]) == access.NOT_A_KIOSK
    # Nothing changed: no card holder registered, nothing on the call's timeline.
    assert await sync_to_async(Citizen.objects.count)() == citizens
    peripheral = CallEvent.objects.filter(call_id=call_id, kind="peripheral")
    assert not await sync_to_async(peripheral.exists)()
    await page.alive()
    await page.close()


async def test_a_conflict_reads_the_same_over_a_socket_and_over_http(media_channel):
    """The kiosk's chip read and the phone's card upload, while the teller has not asked for the
    card: refused with the same code (``not_waiting``), status 409 and words; nothing taken."""
    _, credential = await sync_to_async(kiosk_registered)()
    kiosk, teller, call_id = await connected(credential)
    await kiosk.send(
        "peripheral.event",
        call_id=call_id,
        device="id_card_reader",
        event="card_read",
        data={"fields": CHIP_FIELDS},
    )
    frame = await kiosk.expect("error")

    def over_http():
        from django.core.files.uploadedfile import SimpleUploadedFile

        token = customer_token_issue(call_id=uuid.UUID(call_id))
        image = SimpleUploadedFile("card.jpg", b"\xff\xd8 a card", content_type="image/jpeg")
        return Client().post("/kyc/upload/", {"token": token, "side": "front", "image": image})

    answer = await sync_to_async(over_http)()
    words = same_refusal(frame, answer, 409, "not_waiting")
    assert "has not asked for your ID card" in words["en"]
    assert not await sync_to_async(IdentityCheck.objects.filter(call_id=call_id).exists)()
    assert not await sync_to_async(IdentityEvidence.objects.exists)()
    await kiosk.alive()
    await teller.alive()
    for sock in (kiosk, teller):
        await sock.close()


def _call_request_admit(request: HttpRequest) -> JsonResponse:
    """No page of the product sits behind the call-request limiter; this test view asks it over
    HTTP, so the rate limit's HTTP answer is the real middleware's answer to the real error."""
    limits.call_request_admit(ip=request.META["REMOTE_ADDR"], device_id=None, claims_priority=False)
    return JsonResponse({"admitted": True})


urlpatterns = [path("test/call-request-admit/", _call_request_admit), *bank_urlpatterns]


@pytest.mark.urls(__name__)
async def test_a_rate_limit_reads_the_same_over_a_socket_and_over_http(seeded, settings):
    """The same limiter refusing the same address: ``rate_limited`` with ``limit`` and
    ``retry_after_s`` in both, 429 and ``Retry-After`` over HTTP, the same words."""
    settings.QUEUE_CALL_REQUESTS_PER_IP = 1
    settings.QUEUE_OPEN_CALLS_PER_IP = 0
    address = "203.0.113.41"
    first = Socket("/ws/customer/", client=address)
    await first.open()
    await first.send("call.request", business="card_loss")
    await first.expect("call.queued")
    second = Socket("/ws/customer/", client=address)
    await second.open()
    await second.send("call.request", business="card_loss")
    frame = await second.expect("error")

    answer = await sync_to_async(Client(REMOTE_ADDR=address).get)("/test/call-request-admit/")
    body = answer.json()
    assert (answer.status_code, body["code"], body["limit"]) == (429, "rate_limited", "ip_rate")
    assert (frame["code"], frame["limit"]) == ("rate_limited", "ip_rate")
    assert 0 < body["retry_after_s"] <= 60
    assert 0 < frame["retry_after_s"] <= 60
    assert answer["Retry-After"] == str(body["retry_after_s"])

    def numbers_out(text: str) -> str:  # a second may pass between the two refusals
        return re.sub(r"\d+", "N", text)

    words = body["detail"]
    assert "Too many calls from your network" in words["en"]
    assert HAN.search(words["zh"])
    assert numbers_out(frame["detail"]) == numbers_out(f"{words['en']} / {words['zh']}")
    # Neither refusal placed a call.
    assert await sync_to_async(Call.objects.count)() == 1
    for sock in (first, second):
        await sock.alive()
        await sock.close()


# --- every refusal in both languages -------------------------------------------------------------


async def test_every_refusal_a_socket_sends_is_in_english_and_chinese(media_channel):
    """Refusals that used to reach the customer or teller in English only (the queue's, the
    socket's own, a bad frame's) carry both languages now, each under its own code."""
    customer = Socket("/ws/customer/")
    await customer.open()
    teller = Socket("/ws/teller/", await sync_to_async(session_cookie)("errors-teller", "teller"))
    await teller.open()
    await teller.expect("queue.snapshot")
    other_call = str(uuid.uuid4())

    asked = [
        (
            customer,
            {"type": "call.request", "business": "no_such"},
            "not_found",
            "Unknown business",
        ),
        (customer, {"type": "callback.request"}, "conflict", "No callback was offered"),
        (customer, {"type": "call.hangup", "call_id": other_call}, "forbidden", "not bound"),
        (customer, {"type": "call.resume", "token": "forged"}, "bad_token", "invalid or expired"),
        (customer, {"type": "call.hangup"}, "invalid", "call_id"),
        (teller, {"type": "call.accept", "call_id": other_call}, "conflict", "no offer of this"),
        (teller, {"type": "call.hangup", "call_id": other_call}, "forbidden", "not assigned"),
    ]
    for sock, message, code, english in asked:
        await sock.send_raw(json.dumps({"v": 1, **message}))
        frame = await sock.expect("error")
        en, _, zh = frame["detail"].partition(" / ")
        assert frame["code"] == code, (message, frame)
        assert english in en, frame
        assert not HAN.search(en), frame
        assert HAN.search(zh), frame  # and in Chinese
    for sock in (customer, teller):
        await sock.alive()
        await sock.close()


# --- a fault is not a refusal --------------------------------------------------------------------


async def test_a_fault_is_internal_and_its_text_stays_on_the_server(seeded, monkeypatch, caplog):
    secret = "password=hunter2 host=db.internal:5432"

    def broken(**kwargs):
        raise RuntimeError(secret)

    from kyc import services as kyc_services
    from queueing import services as queue_services

    monkeypatch.setattr(queue_services, "call_enqueue", broken)
    monkeypatch.setattr(kyc_services, "identity_upload_admit", broken)
    caplog.set_level(logging.ERROR)

    sock = Socket("/ws/customer/")
    await sock.open()
    await sock.send("call.request", id="m1", business="card_loss")
    frame = await sock.expect("error")
    assert (frame["code"], frame["ref"]) == ("internal", "m1")
    en, _, zh = frame["detail"].partition(" / ")
    assert en
    assert HAN.search(zh)
    assert "hunter2" not in json.dumps(frame, ensure_ascii=False)
    await sock.alive()
    await sock.close()

    def over_http():
        call = Call.objects.create(
            business=Business.objects.get(key="card_loss"),
            status=CallStatus.CONNECTED,
            enqueued_at=timezone.now() - timedelta(seconds=5),
            answered_at=timezone.now(),
        )
        token = customer_token_issue(call_id=call.id)
        return Client(raise_request_exception=False).post(
            "/kyc/upload/", {"token": token, "side": "front"}
        )

    answer = await sync_to_async(over_http)()
    assert answer.status_code == 500
    page = answer.content.decode()
    assert "Something went wrong" in page
    assert "服务暂时出错" in page
    for leak in ("hunter2", "db.internal", "RuntimeError", "Traceback"):
        assert leak not in page

    # Both faults are in the log with their traceback (the refusals above are not).
    faults = [r for r in caplog.records if r.exc_info and secret in str(r.exc_info[1])]
    assert len(faults) == 2, [r.getMessage() for r in caplog.records]


# --- a refusal opened as a page ------------------------------------------------------------------


def _receipt_of_a_done_case():
    from workflows import receipts

    teller = staff_user("errors-receipt-teller", "teller")
    case = done_transfer(teller, idempotency_key="case-errors-test")
    return receipts.receipt_issue(case=case)


def test_a_refusal_opened_as_a_page_is_the_error_page_in_both_languages(catalogue):
    """A browser opening a receipt without its link gets the error page (403) with the words in
    both languages; a script asking the same address gets them as JSON. No receipt content."""
    receipt = _receipt_of_a_done_case()
    url = f"/receipts/{receipt.code}/"

    page = Client().get(url, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")
    html = unescape(page.content.decode())
    assert 'data-testid="error-page"' in html
    assert 'data-code="forbidden"' in html

    script = Client().get(url)
    assert script.status_code == 403
    body = script.json()
    assert body["code"] == "forbidden"
    assert "link shown on the customer's screen" in body["detail"]["en"]
    for words in body["detail"].values():
        assert words in html
    for content in ("刘洋", "1,200.00", "T0000000042"):
        assert content not in html
        assert content not in script.content.decode()
    assert Client().get(url, {"token": "forged"}, HTTP_ACCEPT=BROWSER_ACCEPT).status_code == 403
