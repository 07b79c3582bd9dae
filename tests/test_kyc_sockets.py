"""The identity check over the real sockets: what the teller's panel and the customer's page are
sent, what reaches the media worker, and the kiosk's card reader (a peripheral event)."""

from __future__ import annotations

import base64
import io
import json
import uuid

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.utils import timezone
from PIL import Image

from kyc.services import CARD_GRAB
from queueing.models import CallEvent, MediaWorker
from tests.factories import catalogue_seed
from tests.sockets import Socket, kiosk_cookie, kiosk_registered, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture
async def media_channel():
    await sync_to_async(catalogue_seed)()
    name = f"media.kyctest{uuid.uuid4().hex}"
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=name, host="test", pid=1, heartbeat_at=timezone.now()
    )
    return name


async def connected(kiosk_credential: str | None = None) -> tuple[Socket, Socket, str]:
    """A connected call; from an enrolled kiosk when its credential is given, else a web page."""
    customer = Socket("/ws/customer/", kiosk_cookie(kiosk_credential) if kiosk_credential else None)
    await customer.open()
    teller = Socket("/ws/teller/", await sync_to_async(session_cookie)("kyc-sock-teller", "teller"))
    await teller.open()
    await customer.send("call.request", business="account_change")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    connected = await teller.expect("call.connected")
    assert connected["channel"] == ("vtm" if kiosk_credential else "web")
    await customer.expect("call.answered")
    return customer, teller, call_id


def chip_photo_b64() -> str:
    from kyc.testing import card_portrait
    from tests.media import face_photo

    photo = np.asarray(Image.open(face_photo()).convert("RGB"))
    out = io.BytesIO()
    Image.fromarray(card_portrait(photo, kind="chip")).save(out, format="JPEG", quality=85)
    return base64.b64encode(out.getvalue()).decode()


CHIP_FIELDS = {
    "name": "张伟",
    "sex": "男",
    "ethnicity": "汉",
    "birth": "19900307",
    "address": "北京市东城区东华门街道1号",
    "id_number": "110101199003071233",
    "authority": "北京市公安局东城分局",
    "validity": "2020.03.07-2040.03.07",
}


async def test_consent_then_capture_reaches_the_media_worker(media_channel):
    layer = get_channel_layer()
    customer, teller, call_id = await connected()

    await customer.send("kyc.consent", call_id=call_id, accepted=True)  # nothing asked yet
    refused = await customer.expect("error")
    assert refused["code"] == "conflict"

    await teller.send("kyc.start", call_id=call_id)
    state = await teller.expect("kyc.state")
    assert state["check"]["status"] == "consent_pending"
    request = await customer.expect("kyc.consent_request")
    assert request["text"]["zh"]
    await teller.send("kyc.capture", call_id=call_id, side="front")
    assert "consent" in (await teller.expect("error"))["detail"]

    await customer.send(
        "kyc.consent", call_id=call_id, accepted=True, geolocation={"lat": 22.5, "lon": 114.1}
    )
    state = await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")
    assert state["check"]["geolocation"] == {"lat": 22.5, "lon": 114.1}
    progress = await customer.expect("kyc.progress", where=lambda m: m["overall"] == "in_progress")
    assert progress["text"]["zh"]
    assert "id_number" not in json.dumps(progress)  # the customer's page gets no fields

    await teller.send("kyc.capture", call_id=call_id, side="front")
    grab = await layer.receive(media_channel)
    while grab["type"] != "media.grab":
        grab = await layer.receive(media_channel)
    assert (grab["call_id"], grab["purpose"]) == (call_id, "card_front")
    assert grab["count"] == CARD_GRAB["count"] > 1  # the sharpest of several is read
    state = await teller.expect(
        "kyc.state", where=lambda m: m["check"]["steps"][1]["status"] == "running"
    )
    assert state["check"]["steps"][1]["step"] == "card_front"
    for sock in (customer, teller):
        await sock.close()


async def test_bad_kyc_messages_are_refused_in_words(media_channel):
    customer, teller, call_id = await connected()
    await teller.send("kyc.capture", call_id=call_id, side="sideways")
    assert (await teller.expect("error"))["code"] == "invalid"
    await teller.send(
        "kyc.fields.confirm", call_id=call_id, fields={"id_number": "1101011990030712"}
    )
    bad = await teller.expect("error")
    assert bad["code"] == "invalid"
    assert "id_number" in bad["detail"]
    await customer.send("kyc.consent", call_id=str(uuid.uuid4()), accepted=True)
    assert (await customer.expect("error"))["code"] == "forbidden"
    await customer.send(
        "peripheral.event", call_id=call_id, device="coffee_machine", event="brewed"
    )
    assert (await customer.expect("error"))["code"] == "invalid"
    await customer.send(
        "peripheral.event",
        call_id=call_id,
        device="id_card_reader",
        event="card_read",
        data={"photo_jpeg_b64": "not base64!"},
    )
    assert (await customer.expect("error"))["code"] == "invalid"
    for sock in (customer, teller):
        await sock.alive()
        await sock.close()


async def test_the_kiosk_card_reader_reaches_the_teller_and_the_check(media_channel):
    kiosk_id, credential = await sync_to_async(kiosk_registered)()
    customer, teller, call_id = await connected(kiosk_credential=credential)
    await teller.send("kyc.start", call_id=call_id)
    await customer.expect("kyc.consent_request")
    await customer.send("kyc.consent", call_id=call_id, accepted=True)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")

    await customer.send(
        "peripheral.event",
        call_id=call_id,
        device="id_card_reader",
        event="card_read",
        data={"fields": CHIP_FIELDS, "photo_jpeg_b64": await sync_to_async(chip_photo_b64)()},
    )
    event = await teller.expect("peripheral")
    assert (event["device"], event["event"], event["name"]) == (
        "id_card_reader",
        "card_read",
        "张*",
    )
    assert event["id_number"] == "110101********1233"  # masked on the console's event list
    # (in full on the KYC panel, below)
    state = await teller.expect("kyc.state", where=lambda m: m["check"]["source"] == "chip")
    steps = {s["step"]: s for s in state["check"]["steps"]}
    assert steps["card_front"]["status"] == "passed"
    assert steps["card_back"]["status"] == "passed"
    assert state["check"]["fields_read"]["front"]["id_number"] == CHIP_FIELDS["id_number"]

    # Other peripherals are reported too, and land on the call's timeline.
    await customer.send(
        "peripheral.event",
        call_id=call_id,
        device="receipt_printer",
        event="paper_low",
        data={"detail": "about 20 receipts left"},
    )
    printer = await teller.expect("peripheral", where=lambda m: m["device"] == "receipt_printer")
    assert printer["detail"] == "about 20 receipts left"
    kinds = await sync_to_async(
        lambda: list(
            CallEvent.objects.filter(call_id=call_id, kind="peripheral").values_list(
                "data", flat=True
            )
        )
    )()
    assert [k["device"] for k in kinds] == ["id_card_reader", "receipt_printer"]
    actors = await sync_to_async(
        lambda: set(
            CallEvent.objects.filter(call_id=call_id, kind="peripheral").values_list(
                "actor", flat=True
            )
        )
    )()
    assert actors == {f"kiosk:{kiosk_id}"}  # the timeline names the kiosk that reported
    assert CHIP_FIELDS["id_number"] not in json.dumps(kinds, ensure_ascii=False)
    assert CHIP_FIELDS["name"] not in json.dumps(kinds, ensure_ascii=False)
    for sock in (customer, teller):
        await sock.close()


async def test_a_liveness_challenge_is_random_played_to_the_customer_and_sampled(media_channel):
    layer = get_channel_layer()
    customer, teller, call_id = await connected()
    await teller.send("kyc.start", call_id=call_id)
    await customer.expect("kyc.consent_request")
    await customer.send("kyc.consent", call_id=call_id, accepted=True)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")

    await teller.send("kyc.liveness", call_id=call_id)
    challenge = await customer.expect("kyc.liveness_challenge")
    kinds = [s["kind"] for s in challenge["steps"]]
    # Two different moves, each followed by "face the camera again", in words on the page.
    assert kinds[1::2] == ["neutral", "neutral"]
    moves = kinds[0::2]
    assert len(set(moves)) == 2
    assert {"turn_left", "turn_right"} & set(moves)
    assert all(s["prompt"]["zh"] and s["prompt"]["en"] for s in challenge["steps"])
    grab = await layer.receive(media_channel)
    while grab["type"] != "media.grab":
        grab = await layer.receive(media_channel)
    assert grab["purpose"] == "liveness"
    total = challenge["lead_in_ms"] + sum(s["duration_ms"] for s in challenge["steps"])
    total += django_settings.KYC_LIVENESS_TAIL_MS  # and past its end, for a video that comes late
    assert grab["at_ms"][0] == 0
    assert total - 250 <= grab["at_ms"][-1] < total  # sampled across the whole challenge
    assert len(grab["at_ms"]) >= total / 1000 * 4  # at least 4 frames a second
    for sock in (customer, teller):
        await sock.close()
