"""Card evidence over the real sockets: once the teller confirmed the fields read from a card, the
kiosk's card reader cannot swap the card; the teller asking for the card again resets, in words,
everything that rested on it, and only then is a new read taken."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from kyc.models import IdentityCheck, IdentityEvidence
from queueing.models import CallEvent, MediaWorker
from tests.factories import catalogue_seed
from tests.sockets import kiosk_registered
from tests.test_kyc_sockets import CHIP_FIELDS, chip_photo_b64, connected

pytestmark = [pytest.mark.django_db(transaction=True)]

OTHER_CARD = {
    **CHIP_FIELDS,
    "name": "李娜",
    "sex": "女",
    "id_number": "110101199003071241",
}


@pytest.fixture(autouse=True)
def _quiet(settings, live_server):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    # The national check goes over HTTP to the stub the test server mounts.
    settings.ROOT_URLCONF = "tests.stub_urls"  # the test server mounts the stubs on every profile
    base = f"{live_server.url}/ext/national-id/v1"
    settings.KYC_NATIONAL_CHANNELS = [f"{base}/primary", f"{base}/secondary"]
    settings.KYC_NATIONAL_RETRY_BACKOFF_S = 0.1
    settings.NATIONAL_STUB_LATENCY_MS = 20
    settings.NATIONAL_STUB_JITTER_MS = 0


@pytest.fixture
async def media_channel():
    await sync_to_async(catalogue_seed)()
    name = f"media.kycevidence{uuid.uuid4().hex}"
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=name, host="test", pid=1, heartbeat_at=timezone.now()
    )
    return name


def _kyc_state(call_id: str) -> dict:
    check = IdentityCheck.objects.get(call_id=call_id)
    return {
        "steps": check.steps,
        "status": check.status,
        "fields": check.fields,
        "fields_read": check.fields_read,
        "evidence": sorted(
            str(i)
            for i in IdentityEvidence.objects.filter(identity_check=check).values_list(
                "id", flat=True
            )
        ),
        "kyc_timeline": list(
            CallEvent.objects.filter(call_id=call_id, kind__startswith="kyc_").values_list(
                "id", flat=True
            )
        ),
    }


def _settle() -> None:
    from kyc.national.tasks import national_check_threads_join

    assert national_check_threads_join(timeout=60)


async def read_card(customer, call_id: str, fields: dict, photo: str) -> None:
    await customer.send(
        "peripheral.event",
        call_id=call_id,
        device="id_card_reader",
        event="card_read",
        data={"fields": fields, "photo_jpeg_b64": photo},
    )


def steps_of(state: dict) -> dict:
    return {s["step"]: s for s in state["check"]["steps"]}


async def test_the_card_reader_cannot_swap_a_card_the_teller_confirmed(media_channel):
    _, credential = await sync_to_async(kiosk_registered)()
    customer, teller, call_id = await connected(kiosk_credential=credential)
    photo = await sync_to_async(chip_photo_b64)()
    await teller.send("kyc.start", call_id=call_id)
    await customer.expect("kyc.consent_request")
    await customer.send("kyc.consent", call_id=call_id, accepted=True)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")
    await read_card(customer, call_id, CHIP_FIELDS, photo)
    await teller.expect("kyc.state", where=lambda m: m["check"]["source"] == "chip")
    await teller.send("kyc.fields.confirm", call_id=call_id, fields=CHIP_FIELDS)
    await teller.expect("kyc.state", where=lambda m: steps_of(m)["fields"]["status"] == "passed")
    await sync_to_async(_settle)()  # the national check's answer (embedded profile) is in
    before = await sync_to_async(_kyc_state)(call_id)

    # Another card on the reader: refused in words, and the check is as it was.
    await read_card(customer, call_id, OTHER_CARD, photo)
    refused = await customer.expect("error")
    assert refused["code"] == "already_received"  # the same code the upload gets over HTTP
    assert "already read" in refused["detail"]
    assert "证件已读取" in refused["detail"]
    await customer.alive()
    assert await sync_to_async(_kyc_state)(call_id) == before

    # The teller asks for the card again: everything that rested on it is reset, in words.
    await teller.send("kyc.capture", call_id=call_id, side="front")
    state = await teller.expect(
        "kyc.state", where=lambda m: steps_of(m)["fields"]["status"] == "pending"
    )
    for name in ("fields", "national"):
        step = steps_of(state)[name]
        assert step["status"] == "pending"
        assert step["detail"].startswith("Reset: ID card, front was replaced")
        assert "已重置" in step["detail_zh"]
    # ...and the reader's next card is taken.
    await read_card(customer, call_id, OTHER_CARD, photo)
    state = await teller.expect(
        "kyc.state", where=lambda m: m["check"]["fields_read"]["front"].get("name") == "李娜"
    )
    assert steps_of(state)["card_front"]["status"] == "passed"
    assert steps_of(state)["fields"]["status"] == "pending"
    resets = await sync_to_async(
        lambda: list(
            CallEvent.objects.filter(call_id=call_id, kind="kyc_reset").values_list(
                "data", flat=True
            )
        )
    )()
    assert [r["by"] for r in resets] == ["capture", "chip"]
    assert OTHER_CARD["id_number"] not in json.dumps(resets, ensure_ascii=False)
    for sock in (customer, teller):
        await sock.close()
    await sync_to_async(_settle)()
