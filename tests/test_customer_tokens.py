"""The customer's call token ends with the call, and the agreement's reading time is the server's.

Over the real sockets (the project's ASGI router, in process) and HTTP (Django's test client):

- A call token keeps working for ``CUSTOMER_TOKEN_AFTER_END_S`` after its call ended (a page
  reloading as the call ends hears how it ended), then never again: resuming, uploading a card
  picture, the kiosk's simulated card reader and "continue with the same teller" are refused in
  words, and nothing is stored or queued.
- "I have read and agree" sent with ``reading_ms`` claiming ten minutes, 100 ms after the
  agreement was sent, is refused by the minimum-reading rule on the server's own measure; where
  no minimum applies it is recorded with the server's figure, on the teller's card and the
  timeline.

(The receipt-only link tokens have their tests with the receipts: workflows/tests/test_receipts.py.)
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from kyc.models import STEP_ORDER, IdentityCheck, IdentityEvidence
from queueing import clock
from queueing.models import Call, CallEvent, CallStatus, MediaWorker
from tests.factories import catalogue_seed
from tests.sockets import Socket, session_cookie
from workflows.corebank_stub.seed import BY_NAME, corebank_seed
from workflows.models import BusinessCase, CaseStatus

pytestmark = [pytest.mark.django_db(transaction=True)]

ZHANG = BY_NAME["张伟"]


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    settings.CUSTOMER_TOKEN_AFTER_END_S = 120
    yield
    clock.set_now(None)


@pytest.fixture
async def answered():
    """A customer and a teller on the sockets, the call answered (a media worker registered)."""
    await sync_to_async(catalogue_seed)()
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=f"media.tokens.{uuid.uuid4().hex}",
        host="test",
        pid=1,
        heartbeat_at=timezone.now(),
    )
    customer = Socket("/ws/customer/")
    await customer.open()
    teller = Socket("/ws/teller/", await sync_to_async(session_cookie)("tok-teller", "teller"))
    await teller.open()
    await customer.send("call.request", business="account_change", channel="web")
    queued = await customer.expect("call.queued")
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=queued["call_id"])
    await teller.expect("call.connected")
    await customer.expect("call.answered")
    yield customer, teller, queued
    for sock in (customer, teller):
        await sock.close()


def upload(token: str):
    picture = SimpleUploadedFile("card.jpg", b"\xff\xd8\xff not looked at", "image/jpeg")
    return Client().post("/kyc/upload/", {"token": token, "side": "front", "image": picture})


def simulated_card(token: str):
    return Client().post(
        "/kyc/simulated-card/",
        data={"token": token, "photo_jpeg_b64": "AAAA"},
        content_type="application/json",
    )


async def test_a_call_token_stops_working_shortly_after_its_call_ended(answered, settings):
    customer, teller, queued = answered
    call_id, token = queued["call_id"], queued["token"]
    await teller.send("kyc.start", call_id=call_id)
    await customer.expect("kyc.consent_request")
    await customer.send("kyc.consent", call_id=call_id, accepted=True)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")
    await teller.send("call.hangup", call_id=call_id)
    await customer.expect("call.ended")
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert call.status == CallStatus.ENDED

    # Within the grace time: a reloaded page still hears how its call ended.
    reloaded = Socket("/ws/customer/")
    await reloaded.open()
    await reloaded.send("call.resume", token=token)
    ended = await reloaded.expect("call.ended")
    assert (ended["call_id"], ended["reason"]) == (call_id, "already_ended")

    # Past it: the token opens nothing, and says so in words.
    clock.set_now(call.ended_at + timedelta(seconds=settings.CUSTOMER_TOKEN_AFTER_END_S + 1))
    await reloaded.send("call.resume", token=token)
    refused = await reloaded.expect("error")
    assert refused["code"] == "call_ended"
    assert "This call has ended; its link no longer works" in refused["detail"]
    assert "通话已结束" in refused["detail"]
    await reloaded.alive()

    # "Continue with the same teller" with it: refused, and no call is placed.
    calls = await sync_to_async(Call.objects.count)()
    await reloaded.send("call.request", business="account_change", previous_token=token)
    refused = await reloaded.expect("error")
    assert refused["code"] == "call_ended"
    assert await sync_to_async(Call.objects.count)() == calls
    await reloaded.close()

    # An upload of a card picture and the kiosk's simulated card reader: refused in words,
    # nothing stored.
    answer = await sync_to_async(upload)(token)
    assert answer.status_code == 403
    assert answer.json()["code"] == "call_ended"
    assert "no longer works" in answer.json()["detail"]["en"]
    assert "链接已失效" in answer.json()["detail"]["zh"]
    check = await sync_to_async(IdentityCheck.objects.get)(call_id=call_id)
    assert await sync_to_async(IdentityEvidence.objects.filter(identity_check=check).count)() == 0
    assert check.source == "camera"
    settings.KIOSK_SIMULATOR = True
    card = await sync_to_async(simulated_card)(token)
    assert card.status_code == 403
    assert card.json()["code"] == "call_ended"

    # One second before the end of the grace time the same token still got through the door:
    # the refusal comes from the upload's own rule (no picture for an ended call: 409), not
    # from the token (403).
    clock.set_now(call.ended_at + timedelta(seconds=settings.CUSTOMER_TOKEN_AFTER_END_S - 1))
    answer = await sync_to_async(upload)(token)
    assert answer.status_code == 409
    assert answer.json()["detail"]["en"] == "The call has ended; nothing was taken."


async def test_a_token_of_an_open_call_works_however_long_the_call(answered, settings):
    customer, _, queued = answered
    settings.CUSTOMER_TOKEN_AFTER_END_S = 0
    clock.set_now(timezone.now() + timedelta(hours=1))  # a long call, not ended
    reloaded = Socket("/ws/customer/")
    await reloaded.open()
    await reloaded.send("call.resume", token=queued["token"])
    assert (await reloaded.expect("call.answered"))["call_id"] == queued["call_id"]
    await reloaded.close()


# --- the agreement's reading time ----------------------------------------------------------------


@pytest.fixture
def core(settings, live_server):
    settings.ROOT_URLCONF = "tests.stub_urls"  # the test server mounts the stubs on every profile
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 0
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    corebank_seed()
    return live_server


def identity_passed(call_id: str) -> None:
    """The call's identity check as it stands once passed (its own tests: kyc/tests)."""
    now = timezone.now()
    IdentityCheck.objects.create(
        call_id=call_id,
        status="passed",
        level="three_factor_face",
        steps={s: {"status": "passed"} for s in STEP_ORDER},
        fields={"name": ZHANG.name, "id_number": ZHANG.id_number},
        passed_at=now,
        face_matched_at=now,
        expires_at=now + timedelta(minutes=30),
    )


async def agreement_sent(customer: Socket, teller: Socket, call_id: str) -> str:
    await sync_to_async(identity_passed)(call_id)
    await teller.send("case.start", call_id=call_id, business="details_update")
    case_id = (await teller.expect("case.state", timeout=20))["case"]["case_id"]
    await teller.send(
        "case.fill", call_id=call_id, case_id=case_id, params={"occupation": "employee"}
    )
    await teller.expect("case.state", timeout=20, where=lambda m: m["case"]["status"] == "filled")
    await teller.send("case.agreement.send", call_id=call_id, case_id=case_id)
    await customer.expect("case.agreement", where=lambda m: m["case_id"] == case_id)
    return case_id


async def test_a_claimed_reading_time_does_not_count_the_servers_does(answered, core, settings):
    customer, teller, queued = answered
    call_id = queued["call_id"]
    settings.WORKFLOW_AGREEMENT_MIN_READ_MS = 2000
    case_id = await agreement_sent(customer, teller, call_id)

    # Straight away, claiming ten minutes on it: refused on the server's measure, in words.
    await customer.send(
        "case.agreement.read",
        call_id=call_id,
        case_id=case_id,
        reached_end=True,
        reading_ms=600_000,
    )
    refused = await customer.expect("error")
    assert refused["code"] == "agreement_too_fast"
    assert "at least 2 s" in refused["detail"]
    assert "请至少用 2 秒阅读协议" in refused["detail"]
    case = await sync_to_async(BusinessCase.objects.get)(pk=case_id)
    assert case.status == CaseStatus.AGREEMENT_SENT
    assert case.agreement_reading_ms is None

    # Without a minimum the same claim is accepted, and recorded with the server's figure.
    settings.WORKFLOW_AGREEMENT_MIN_READ_MS = 0
    await customer.send(
        "case.agreement.read",
        call_id=call_id,
        case_id=case_id,
        reached_end=True,
        reading_ms=600_000,
    )
    await customer.expect("case.confirm_request", where=lambda m: m["case_id"] == case_id)
    card = await teller.expect(
        "case.state", where=lambda m: m["case"]["status"] == "agreement_read"
    )
    case = await sync_to_async(BusinessCase.objects.get)(pk=case_id)
    measured = (case.agreement_read_at - case.agreement_sent_at).total_seconds() * 1000
    assert case.agreement_reading_ms == int(measured)
    assert case.agreement_reading_ms < 60_000  # seconds of a test, not the claimed ten minutes
    assert card["case"]["agreement"]["reading_ms"] == case.agreement_reading_ms
    event = await sync_to_async(
        lambda: (
            CallEvent.objects.filter(call_id=call_id, kind="business")
            .filter(data__step="agreement_read")
            .get()
        )
    )()
    assert event.data["reading_ms"] == case.agreement_reading_ms
    assert event.data["reading_measured_by"] == "server"
