"""The signaling sockets through the real ASGI router: every bad input gets an error frame, the
socket survives, and nothing leaks into another call."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from queueing.access import customer_token_issue
from queueing.models import Call, CallStatus, MediaWorker, PresenceStatus, TellerPresence
from tests.factories import catalogue_seed
from tests.sockets import HOST, ORIGIN, Socket, session_cookie
from videobank.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_embedded_media(settings):
    # The media worker is replaced by a channel the test reads, to check what reaches it; time
    # does not pass for the queue (no ticker) unless a test says so.
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture
async def media_channel():
    # A plain channel name, like a real media worker's.
    name = f"media.test{uuid.uuid4().hex}"
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=name, host="test", pid=1, heartbeat_at=timezone.now()
    )
    return name


@pytest.fixture
async def seeded():
    await sync_to_async(catalogue_seed)()


async def customer_socket() -> Socket:
    sock = Socket("/ws/customer/")
    await sock.open()
    return sock


async def teller_socket(username: str = "teller1", *groups: str) -> Socket:
    cookie = await sync_to_async(session_cookie)(username, *(groups or ("teller",)))
    sock = Socket("/ws/teller/", cookie)
    await sock.open()
    return sock


async def test_bad_frames_get_errors_and_the_socket_survives(seeded):
    sock = await customer_socket()
    cases = [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (json.dumps({"type": "call.request", "business": "card_loss"}), "unsupported_version"),
        (
            json.dumps({"type": "call.request", "v": 99, "business": "card_loss"}),
            "unsupported_version",
        ),
        (json.dumps({"type": "teleport", "v": 1}), "unknown_type"),
        (json.dumps({"type": "presence.set", "v": 1, "status": "available"}), "unknown_type"),
        (json.dumps({"type": "call.request", "v": 1}), "invalid"),
        (json.dumps({"type": "call.request", "v": 1, "business": "x", "extra": 1}), "invalid"),
        (json.dumps({"type": "call.request", "v": 1, "business": "DROP TABLE"}), "invalid"),
        (json.dumps({"type": "call.hangup", "v": 1, "call_id": "not-a-uuid"}), "invalid"),
        (json.dumps({"type": "call.request", "v": 1, "business": "no_such"}), "not_found"),
        ("x" * (64 * 1024 + 1), "frame_too_large"),
    ]
    for text, code in cases:
        await sock.send_raw(text)
        error = await sock.recv()
        assert (error["type"], error["code"]) == ("error", code), text[:80]
        assert error["detail"]
    await sock.send_raw(binary=b"\x00\x01")
    assert (await sock.recv())["code"] == "bad_json"
    await sock.alive()
    assert await sync_to_async(Call.objects.count)() == 0
    await sock.close()


async def test_error_echoes_the_message_id(seeded):
    sock = await customer_socket()
    await sock.send_raw(json.dumps({"type": "call.request", "v": 1, "id": "m-7"}))
    error = await sock.recv()
    assert error["ref"] == "m-7"
    await sock.close()


async def test_an_unexpected_failure_is_an_error_frame_not_a_crash(seeded, monkeypatch):
    from queueing import services

    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "call_enqueue", broken)
    sock = await customer_socket()
    await sock.send("call.request", business="card_loss")
    error = await sock.recv()
    assert error["code"] == "internal"
    assert "fire" not in error["detail"]  # internals stay on the server
    await sock.alive()
    await sock.close()


async def test_customer_cannot_touch_another_call(seeded):
    alice, bob = await customer_socket(), await customer_socket()
    await alice.send("call.request", business="card_loss")
    alice_call = (await alice.expect("call.queued"))["call_id"]
    await bob.send("call.request", business="card_loss")
    bob_queued = await bob.expect("call.queued")
    assert bob_queued["position"] == 2

    # Alice names Bob's call: refused, and Bob's call is untouched.
    await alice.send("call.hangup", call_id=bob_queued["call_id"])
    assert (await alice.expect("error"))["code"] == "forbidden"
    await alice.send("webrtc.offer", call_id=bob_queued["call_id"], sdp="v=0 " * 10)
    assert (await alice.expect("error"))["code"] == "forbidden"
    bob_call = await sync_to_async(Call.objects.get)(pk=bob_queued["call_id"])
    assert bob_call.status == CallStatus.WAITING

    # Alice's token cannot bind her socket to Bob's call, nor Bob's token to hers.
    await bob.send("call.resume", token=customer_token_issue(call_id=uuid.UUID(alice_call)))
    assert (await bob.expect("error"))["code"] == "forbidden"
    await alice.send("call.resume", token=bob_queued["token"] + "tampered")
    assert (await alice.expect("error"))["code"] == "bad_token"
    # Nothing of Alice's reached Bob: at most his own position updates.
    assert {m["type"] for m in await bob.pending()} <= {"queue.position"}
    await alice.alive()
    await bob.alive()
    await alice.close()
    await bob.close()


async def test_token_resumes_only_its_own_call(seeded):
    first = await customer_socket()
    await first.send("call.request", business="password_reset")
    queued = await first.expect("call.queued")
    # A second socket (e.g. the page reloaded) re-attaches with the token.
    second = await customer_socket()
    await second.send("call.resume", token=queued["token"])
    position = await second.expect("queue.position")
    assert (position["call_id"], position["position"]) == (queued["call_id"], 1)
    await second.close()
    await first.close()


async def test_full_call_through_the_sockets(seeded, media_channel):
    layer = get_channel_layer()
    customer, second = await customer_socket(), await customer_socket()
    await customer.send("call.request", business="card_loss", channel="web")
    queued = await customer.expect("call.queued")
    assert queued["position"] == 1
    assert queued["estimated_wait_s"] > 0  # nobody is logged in yet
    await second.send("call.request", business="card_loss")
    assert (await second.expect("call.queued"))["position"] == 2

    # A teller goes available: the router rings it for the first call.
    teller = await teller_socket("teller1")
    await teller.send("presence.set", status="available")
    offer = await teller.expect("call.offer")
    assert (offer["call_id"], offer["business"]) == (queued["call_id"], "card_loss")
    assert offer["expires_in_s"] > 0
    await second.expect("queue.position", where=lambda m: m["position"] == 1)

    await teller.send("call.accept", call_id=queued["call_id"])
    connected = await teller.expect("call.connected")
    assert connected["business"] == "card_loss"
    await customer.expect("call.answered")

    # The customer's offer reaches the call's media worker, and its answer comes back.
    await customer.send("webrtc.offer", call_id=queued["call_id"], sdp="v=0 fake offer sdp")
    media_offer = await layer.receive(media_channel)
    assert (media_offer["type"], media_offer["leg"], media_offer["call_id"]) == (
        "media.offer",
        "customer",
        queued["call_id"],
    )
    await layer.send(
        media_offer["reply_to"],
        {"type": "media.answer", "call_id": queued["call_id"], "sdp": "v=0 ans"},
    )
    assert (await customer.expect("webrtc.answer"))["sdp"] == "v=0 ans"

    await teller.send("call.hangup", call_id=queued["call_id"])
    assert (await customer.expect("call.ended"))["reason"] == "hangup_teller"
    assert (await teller.expect("call.ended"))["call_id"] == queued["call_id"]
    hangup = await layer.receive(media_channel)
    assert hangup == {"type": "media.hangup", "call_id": queued["call_id"]}
    presence = await sync_to_async(TellerPresence.objects.get)(teller__username="teller1")
    assert presence.status == PresenceStatus.WRAP_UP
    call = await sync_to_async(Call.objects.get)(pk=queued["call_id"])
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "hangup_teller")
    for sock in (teller, customer, second):
        await sock.close()


async def test_decline_rings_the_next_teller(seeded):
    teller1, teller2 = await teller_socket("teller1"), await teller_socket("teller2")
    for sock in (teller1, teller2):
        await sock.send("presence.set", status="available")
        await sock.expect("presence")
    customer = await customer_socket()
    await customer.send("call.request", business="card_loss")
    call_id = (await customer.expect("call.queued"))["call_id"]
    assert (await teller1.expect("call.offer"))["call_id"] == call_id  # idle longest
    await teller1.send("call.reject", call_id=call_id)
    assert (await teller1.expect("offer.withdrawn"))["call_id"] == call_id
    assert (await teller2.expect("call.offer"))["call_id"] == call_id
    for sock in (teller1, teller2, customer):
        await sock.close()


async def test_teller_cannot_act_on_a_call_it_does_not_hold(seeded, media_channel):
    teller1, teller2 = await teller_socket("teller1"), await teller_socket("teller2")
    for sock in (teller1, teller2):
        await sock.send("presence.set", status="available")
        await sock.expect("presence")
    customer = await customer_socket()
    await customer.send("call.request", business="time_deposit")
    call_id = (await customer.expect("call.queued"))["call_id"]
    assert (await teller1.expect("call.offer"))["call_id"] == call_id

    await teller2.send("call.accept", call_id=call_id)
    assert (await teller2.expect("error"))["code"] == "forbidden"
    await teller1.send("call.accept", call_id=call_id)
    await teller1.expect("call.connected")
    await teller2.send("webrtc.offer", call_id=call_id, sdp="v=0 sneaky offer")
    assert (await teller2.expect("error"))["code"] == "forbidden"
    await teller2.send("call.hangup", call_id=call_id)
    assert (await teller2.expect("error"))["code"] == "forbidden"
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert call.status == CallStatus.CONNECTED
    await teller2.alive()
    for sock in (teller1, teller2, customer):
        await sock.close()


async def test_accept_without_a_media_worker_keeps_the_call_ringing(seeded):
    teller = await teller_socket("teller1")
    await teller.send("presence.set", status="available")
    await teller.expect("presence")
    customer = await customer_socket()
    await customer.send("call.request", business="card_loss")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    assert (await teller.expect("error"))["code"] == "media_unavailable"
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert call.status == CallStatus.OFFERED
    await teller.close()
    await customer.close()


async def test_teller_dropping_mid_call_requeues_the_customer(seeded, media_channel):
    layer = get_channel_layer()
    teller = await teller_socket("teller1")
    await teller.send("presence.set", status="available")
    await teller.expect("presence")
    customer = await customer_socket()
    await customer.send("call.request", business="card_loss")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    await customer.expect("call.answered")
    await teller.close()  # the teller's connection drops
    assert (await customer.expect("call.requeued"))["call_id"] == call_id
    drop = await layer.receive(media_channel)
    assert drop == {"type": "media.leg_drop", "call_id": call_id, "leg": "teller"}
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert (call.status, call.head) == (CallStatus.WAITING, True)
    await customer.close()


@pytest.mark.parametrize("groups", [(), ("qa",)])
async def test_teller_socket_needs_the_teller_group(seeded, groups):
    cookie = None
    if groups:
        cookie = await sync_to_async(session_cookie)("qa-user", *groups)
    comm = WebsocketCommunicator(
        application,
        "/ws/teller/",
        headers=[ORIGIN, HOST] + ([(b"cookie", cookie)] if cookie else []),
    )
    connected, code = await comm.connect()
    assert not connected
    assert code == 4403
    await comm.disconnect()


async def test_foreign_origin_is_refused(seeded):
    comm = WebsocketCommunicator(
        application, "/ws/customer/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()


async def test_customer_leaving_the_page_abandons_the_call(seeded):
    customer = await customer_socket()
    await customer.send("call.request", business="card_loss")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await customer.close()
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert (call.status, call.end_reason) == (CallStatus.ABANDONED, "customer_left")
