"""Who a customer socket is, over the real sockets: only an enrolled kiosk's peripherals count, and
a call's channel (and VIP) comes from what the socket proves — the kiosk credential on the
handshake, a claim the bank's app backend signed — never from what the client says. Every refusal
is in words and changes nothing: no call, no timeline row, no teller notice, no identity check
change."""

from __future__ import annotations

import base64
import io
import os
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from kyc.models import IdentityCheck, IdentityEvidence
from queueing.models import Call, CallEvent, MediaWorker, Priority
from signaling import access
from signaling.services import kiosk_revoke, kiosk_rotate
from tests.factories import catalogue_seed
from tests.sockets import Socket, kiosk_cookie, kiosk_registered, session_cookie
from tests.test_kyc_sockets import CHIP_FIELDS, chip_photo_b64

pytestmark = [pytest.mark.django_db(transaction=True)]

KEY_NEW = base64.b64encode(os.urandom(32)).decode()
KEY_OLD = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    # Two keys, newest first: the bank rotated its claim key and the old one still verifies.
    settings.APP_CLAIM_KEYS = f"k2:{KEY_NEW},k1:{KEY_OLD}"


@pytest.fixture
async def media_channel():
    await sync_to_async(catalogue_seed)()
    name = f"media.kiosktest{uuid.uuid4().hex}"
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=name, host="test", pid=1, heartbeat_at=timezone.now()
    )
    return name


async def customer_socket(credential: str | None = None) -> tuple[Socket, dict]:
    sock = Socket("/ws/customer/", kiosk_cookie(credential) if credential else None)
    hello = await sock.open()
    return sock, hello


async def teller_socket() -> Socket:
    teller = Socket("/ws/teller/", await sync_to_async(session_cookie)("kiosk-teller", "teller"))
    await teller.open()
    await teller.send("presence.set", status="available")
    await teller.expect("presence")
    return teller


async def connect(customer: Socket, teller: Socket, **request) -> tuple[str, dict, dict]:
    """Place a call, let the teller take it: (call id, the teller's offer, call.connected)."""
    await customer.send("call.request", business="account_change", **request)
    call_id = (await customer.expect("call.queued"))["call_id"]
    offer = await teller.expect("call.offer", where=lambda m: m["call_id"] == call_id)
    await teller.send("call.accept", call_id=call_id)
    connected = await teller.expect("call.connected")
    await customer.expect("call.answered")
    return call_id, offer, connected


async def identity_in_progress(customer: Socket, teller: Socket, call_id: str) -> None:
    await teller.send("kyc.start", call_id=call_id)
    await customer.expect("kyc.consent_request")
    await customer.send("kyc.consent", call_id=call_id, accepted=True)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")


@sync_to_async
def evidence_of(call_id: str) -> dict:
    """Everything a chip read or a peripheral report could change."""
    return {
        "checks": list(IdentityCheck.objects.filter(call_id=call_id).values()),
        "evidence": IdentityEvidence.objects.filter(identity_check__call_id=call_id).count(),
        "timeline": list(
            CallEvent.objects.filter(call_id=call_id).order_by("id").values("kind", "actor", "data")
        ),
    }


async def teller_frames_until_pong(teller: Socket) -> list[str]:
    """What reached the teller before a ping's answer (a refused report would be queued before
    the customer got its error, so before this ping)."""
    await teller.send("ping")
    seen = []
    while (message := await teller.recv())["type"] != "pong":
        seen.append(message["type"])
    return seen


@sync_to_async
def calls_count() -> int:
    return Call.objects.count()


def chip_read(call_id: str, photo: str) -> dict:
    return {
        "call_id": call_id,
        "device": "id_card_reader",
        "event": "card_read",
        "data": {"fields": CHIP_FIELDS, "photo_jpeg_b64": photo},
    }


async def assert_peripherals_refused(
    customer: Socket, teller: Socket, call_id: str, words: tuple[str, str]
) -> None:
    """The chip read and every other peripheral: refused in words, nothing changed."""
    before = await evidence_of(call_id)
    assert before["checks"]
    assert before["checks"][0]["status"] == "in_progress"
    photo = await sync_to_async(chip_photo_b64)()
    reports = [
        chip_read(call_id, photo),
        {"call_id": call_id, "device": "document_camera", "event": "page_captured"},
        {"call_id": call_id, "device": "receipt_printer", "event": "paper_low"},
        {"call_id": call_id, "device": "card_dispenser", "event": "card_issued"},
    ]
    for report in reports:
        await customer.send("peripheral.event", **report)
        refused = await customer.expect("error")
        assert refused["code"] == "forbidden", refused
        assert words[0] in refused["detail"], refused
        assert words[1] in refused["detail"], refused
        assert "nothing was changed" in refused["detail"]
    assert await evidence_of(call_id) == before
    assert not {"peripheral", "kyc.state"} & set(await teller_frames_until_pong(teller))
    await customer.alive()


async def test_a_web_page_cannot_pose_as_a_kiosk_card_reader(media_channel):
    customer, hello = await customer_socket()
    assert hello["channel"] == "web"
    teller = await teller_socket()
    call_id, offer, connected = await connect(customer, teller)
    assert offer["channel"] == connected["channel"] == "web"
    await identity_in_progress(customer, teller, call_id)

    await assert_peripherals_refused(
        customer, teller, call_id, ("not an enrolled kiosk", "不是已登记的自助柜员机")
    )
    for sock in (customer, teller):
        await sock.close()


async def test_an_app_cannot_pose_as_a_kiosk_card_reader(media_channel):
    customer, _ = await customer_socket()
    teller = await teller_socket()
    claim = access.app_claim_issue(device_id="phone-42")
    call_id, offer, connected = await connect(customer, teller, claim=claim)
    assert offer["channel"] == connected["channel"] == "app"
    await identity_in_progress(customer, teller, call_id)

    await assert_peripherals_refused(
        customer, teller, call_id, ("not an enrolled kiosk", "不是已登记的自助柜员机")
    )
    for sock in (customer, teller):
        await sock.close()


async def test_an_enrolled_kiosk_places_vtm_calls_and_its_card_reader_counts(media_channel):
    kiosk_id, credential = await sync_to_async(kiosk_registered)()
    customer, hello = await customer_socket(credential)
    assert hello["channel"] == "vtm"
    teller = await teller_socket()
    call_id, offer, connected = await connect(customer, teller, channel="vtm")
    assert offer["channel"] == connected["channel"] == "vtm"
    await identity_in_progress(customer, teller, call_id)

    await customer.send(
        "peripheral.event", **chip_read(call_id, await sync_to_async(chip_photo_b64)())
    )
    assert (await teller.expect("peripheral"))["name"] == "张*"  # masked: the panel has it whole
    state = await teller.expect("kyc.state", where=lambda m: m["check"]["source"] == "chip")
    assert state["check"]["fields_read"]["front"]["id_number"] == CHIP_FIELDS["id_number"]
    after = await evidence_of(call_id)
    assert {"kind": "peripheral", "actor": f"kiosk:{kiosk_id}"}.items() <= next(
        e for e in after["timeline"] if e["kind"] == "peripheral"
    ).items()
    for sock in (customer, teller):
        await sock.close()


@pytest.mark.parametrize("change", ["revoke", "rotate"])
async def test_a_revoked_or_rotated_credential_stops_working_at_once(media_channel, change):
    kiosk_id, credential = await sync_to_async(kiosk_registered)()
    customer, _ = await customer_socket(credential)
    teller = await teller_socket()
    call_id, _, _ = await connect(customer, teller)
    await identity_in_progress(customer, teller, call_id)

    # The admin revokes the kiosk, or rotates its credential, while its call is open.
    if change == "revoke":
        await sync_to_async(kiosk_revoke)(kiosk_id=kiosk_id, actor="admin1")
    else:
        _, new_credential = await sync_to_async(kiosk_rotate)(kiosk_id=kiosk_id, actor="admin1")

    # The open socket's peripherals are no longer believed ...
    await assert_peripherals_refused(
        customer, teller, call_id, ("rotated or revoked", "已更换或吊销")
    )
    # ... and a new socket with the old credential is a web page: a kiosk call is refused, in
    # words, with no call placed; without that expectation its call is a web call.
    again, hello = await customer_socket(credential)
    assert hello["channel"] == "web"
    calls = await calls_count()
    await again.send("call.request", business="card_loss", channel="vtm")
    refused = await again.expect("error")
    assert refused["code"] == "forbidden"
    assert "Only an enrolled kiosk places kiosk (VTM) calls" in refused["detail"]
    assert "/kiosk/enrol/" in refused["detail"]
    assert await calls_count() == calls
    await again.send("call.request", business="card_loss")
    web_call = (await again.expect("call.queued"))["call_id"]
    assert await sync_to_async(lambda: Call.objects.get(pk=web_call).channel)() == "web"

    if change == "rotate":  # the new credential is the kiosk again
        renewed, hello = await customer_socket(new_credential)
        assert hello["channel"] == "vtm"
        await renewed.close()
    for sock in (customer, teller, again):
        await sock.close()


@pytest.mark.parametrize(
    ("claimed", "words"),
    [
        ("vtm", ("Only an enrolled kiosk places kiosk (VTM) calls", "只有已登记的自助柜员机")),
        ("app", ("An app call needs the signed claim", "手机银行通话需要")),
    ],
)
async def test_a_web_page_claiming_another_channel_is_refused(media_channel, claimed, words):
    customer, _ = await customer_socket()
    teller = await teller_socket()
    await customer.send("call.request", business="card_loss", channel=claimed, id="r1")
    refused = await customer.expect("error")
    assert (refused["code"], refused["ref"]) == ("forbidden", "r1")
    assert words[0] in refused["detail"]
    assert words[1] in refused["detail"]
    assert await calls_count() == 0
    assert "call.offer" not in await teller_frames_until_pong(teller)
    # What the page may say about itself — web — it is.
    await customer.send("call.request", business="card_loss", channel="web")
    assert (await teller.expect("call.offer"))["channel"] == "web"
    for sock in (customer, teller):
        await sock.close()


def _forged() -> str:
    """Right form, signed with a key this bank does not hold."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            access.settings, "APP_CLAIM_KEYS", f"k2:{base64.b64encode(os.urandom(32)).decode()}"
        )
        return access.app_claim_issue(device_id="phone-1", vip=True)


def _tampered() -> str:
    """A genuine non-VIP claim whose payload was edited to say VIP."""
    import json

    key_id, payload, mac = access.app_claim_issue(device_id="phone-1", vip=False).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["vip"] = True
    edited = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{key_id}.{edited}.{mac}"


def _expired() -> str:
    return access.app_claim_issue(device_id="phone-1", vip=True, now=time.time() - 301)


def _too_long() -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(access.settings, "APP_CLAIM_MAX_TTL_S", 86400)
        return access.app_claim_issue(device_id="phone-1", vip=True, ttl_s=86400)


def _retired_key() -> str:
    """Signed under a key id the bank has since removed from APP_CLAIM_KEYS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            access.settings, "APP_CLAIM_KEYS", f"k0:{base64.b64encode(os.urandom(32)).decode()}"
        )
        return access.app_claim_issue(device_id="phone-1", vip=True)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_forged, ("not signed by this bank", "不是本行签发的")),
        (_tampered, ("not signed by this bank", "不是本行签发的")),
        (_retired_key, ("not signed by this bank", "不是本行签发的")),
        (_expired, ("has expired", "已过期")),
        (_too_long, ("validity is not one this server accepts", "有效期不符合要求")),
    ],
    ids=["forged", "tampered", "retired-key", "expired", "too-long"],
)
async def test_a_bad_app_claim_is_refused_and_no_call_is_placed(media_channel, make, words):
    claim = await sync_to_async(make)()
    customer, _ = await customer_socket()
    teller = await teller_socket()
    await customer.send("call.request", business="card_loss", claim=claim)
    refused = await customer.expect("error")
    assert refused["code"] == "forbidden"
    assert words[0] in refused["detail"]
    assert words[1] in refused["detail"]
    assert "the call was not placed" in refused["detail"].lower()
    assert await calls_count() == 0
    assert "call.offer" not in await teller_frames_until_pong(teller)
    await customer.alive()
    for sock in (customer, teller):
        await sock.close()


async def test_a_kiosk_call_carries_no_app_claim(media_channel):
    _, credential = await sync_to_async(kiosk_registered)()
    customer, _ = await customer_socket(credential)
    await customer.send(
        "call.request", business="card_loss", claim=access.app_claim_issue(device_id="x", vip=True)
    )
    refused = await customer.expect("error")
    assert refused["code"] == "forbidden"
    assert "carries no app claim" in refused["detail"]
    assert await calls_count() == 0
    await customer.close()


async def test_vip_comes_only_from_the_banks_signed_claim(media_channel, settings):
    # A claim signed under the older key still verifies (the bank rotates its keys).
    settings.APP_CLAIM_KEYS = f"k1:{KEY_OLD}"
    claim = await sync_to_async(access.app_claim_issue)(device_id="phone-vip", vip=True)
    settings.APP_CLAIM_KEYS = f"k2:{KEY_NEW},k1:{KEY_OLD}"
    customer, _ = await customer_socket()
    teller = await teller_socket()
    call_id, offer, _ = await connect(customer, teller, claim=claim, channel="app")
    assert (offer["channel"], offer["priority"]) == ("app", Priority.VIP)  # the console: VIP
    assert await sync_to_async(lambda: Call.objects.get(pk=call_id).priority)() == Priority.VIP

    # A page cannot ask for VIP itself: the schema has no such priority, and no call is placed.
    page, _ = await customer_socket()
    calls = await calls_count()
    await page.send("call.request", business="card_loss", priority="vip")
    refused = await page.expect("error")
    assert refused["code"] == "invalid"
    assert "priority" in refused["detail"]
    assert await calls_count() == calls
    for sock in (customer, teller, page):
        await sock.close()


async def test_the_claim_the_command_mints_makes_an_app_call(media_channel):
    out = io.StringIO()
    await sync_to_async(call_command)("app_claim", "--device", "phone-7", "--ttl", "60", stdout=out)
    customer, _ = await customer_socket()
    teller = await teller_socket()
    _, offer, _ = await connect(customer, teller, claim=out.getvalue().strip())
    assert (offer["channel"], offer["priority"]) == ("app", Priority.NORMAL)  # no --vip
    for sock in (customer, teller):
        await sock.close()
