"""The anonymous side cannot flood the queue: tried through the customer socket (the real ASGI
router), as a script would, and checked in what the customer is told and what the database holds.

- `call.request`s per client address and per device are limited (sliding window), and so are the
  calls open at once per address and per device; a refusal says why in words (en + zh) and when
  to try again, and no call is created. The address limit holds across two server processes on
  the production profile (the count is in Redis).
- Beyond the global cap on waiting calls a customer is told so and offered a callback, not queued.
- Elderly/accessibility priority is the customer's claim: the teller sees it as claimed, a network
  may claim it only so often, and the identity check's birth date confirms or withdraws it.
- A teller's waiting list is the first N calls and the count per business, whatever the queue's
  length; an arriving call is routed without reading the queue.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import uuid
from datetime import timedelta

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.utils import timezone
from PIL import Image

from queueing import limits, selectors
from queueing.models import (
    Business,
    Call,
    CallbackRequest,
    CallEvent,
    CallStatus,
    MediaWorker,
    Priority,
    PriorityClaim,
)
from signaling.access import DEVICE_COOKIE
from tests.calls import orm
from tests.factories import catalogue_seed
from tests.sockets import Socket, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture(autouse=True)
def _fresh_limits():
    """Every test starts with empty windows (on the production profile they live in Redis)."""
    limits.limits_reset()
    yield
    limits.limits_reset()


@pytest.fixture
async def seeded():
    await sync_to_async(catalogue_seed)()


def device_cookie(name: str) -> bytes:
    """The page's device id, as the customer page's cookie carries it on the handshake."""
    return f"{DEVICE_COOKIE}={name:0>24}".encode()


async def customer(*, client: str | None = None, device: str | None = None) -> Socket:
    sock = Socket("/ws/customer/", device_cookie(device) if device else None, client=client)
    await sock.open()
    return sock


async def answer(sock: Socket) -> dict:
    """The server's answer to a `call.request`: `call.queued` or an `error`."""
    while True:
        message = await sock.recv()
        if message["type"] in ("call.queued", "error"):
            return message


def calls_in_db() -> list[Call]:
    return list(Call.objects.order_by("enqueued_at"))


def assert_in_words(error: dict, *english: str) -> None:
    for words in english:
        assert words in error["detail"], error
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["detail"]), error  # and in Chinese


# --- call requests per address and per device ----------------------------------------------------


async def test_fifty_requests_from_one_address_only_the_limit_is_queued(seeded, settings):
    settings.QUEUE_CALL_REQUESTS_PER_IP = 3
    settings.QUEUE_OPEN_CALLS_PER_IP = 0  # this test is about the rate (open calls: below)
    address = "203.0.113.7"
    queued: list[dict] = []
    refused: list[dict] = []
    sockets: list[Socket] = []
    for n in range(50):  # a script: a fresh socket and a fresh device id every time
        sock = await customer(client=address, device=f"script{n}")
        sockets.append(sock)
        await sock.send("call.request", business="card_loss", priority="elderly")
        reply = await answer(sock)
        (queued if reply["type"] == "call.queued" else refused).append(reply)

    assert len(queued) == 3
    assert len(refused) == 47
    for error in refused:
        assert (error["code"], error["limit"]) == ("rate_limited", "ip_rate"), error
        assert 0 < error["retry_after_s"] <= 60
        assert_in_words(error, "Too many calls from your network", "try again in")
    in_db = await sync_to_async(calls_in_db)()
    assert sorted(str(c.id) for c in in_db) == sorted(q["call_id"] for q in queued)
    enqueued = await sync_to_async(CallEvent.objects.filter(kind="enqueued").count)()
    assert enqueued == 3

    # Another network is served as before, and the refused sockets still answer.
    other = await customer(client="198.51.100.20")
    await other.send("call.request", business="card_loss")
    assert (await answer(other))["type"] == "call.queued"
    await sockets[-1].alive()
    # The script hangs up all at once (one by one, a socket whose channel-layer read is being
    # torn down takes the communicator's one-second wait: 50 of them made this test 27 s).
    await asyncio.gather(*(sock.close() for sock in [*sockets, other]))


async def test_one_open_call_per_device(seeded, settings):
    settings.QUEUE_OPEN_CALLS_PER_DEVICE = 1
    first = await customer(device="my-phone")
    await first.send("call.request", business="card_loss")
    call_id = (await answer(first))["call_id"]

    # The same device on another network (another tab, mobile data): refused in words.
    second = await customer(device="my-phone")
    await second.send("call.request", business="card_loss")
    refused = await answer(second)
    assert (refused["code"], refused["limit"]) == ("rate_limited", "device_open")
    assert "retry_after_s" not in refused
    assert_in_words(refused, "This device already has a call waiting")
    assert [str(c.id) for c in await sync_to_async(calls_in_db)()] == [call_id]

    # Once the first call is over, the device may call again.
    await first.send("call.hangup", call_id=call_id)
    await first.expect("call.ended")
    await second.send("call.request", business="card_loss")
    assert (await answer(second))["type"] == "call.queued"
    assert len(await sync_to_async(calls_in_db)()) == 2
    for sock in (first, second):
        await sock.close()


async def test_one_open_call_per_address(seeded, settings):
    settings.QUEUE_OPEN_CALLS_PER_IP = 1
    first = await customer(client="192.0.2.10", device="phone-a")
    await first.send("call.request", business="card_loss")
    assert (await answer(first))["type"] == "call.queued"
    second = await customer(client="192.0.2.10", device="phone-b")
    await second.send("call.request", business="time_deposit")
    refused = await answer(second)
    assert (refused["code"], refused["limit"]) == ("rate_limited", "ip_open")
    assert_in_words(refused, "A call from your network is already waiting")
    assert len(await sync_to_async(calls_in_db)()) == 1
    for sock in (first, second):
        await sock.close()


async def test_a_device_is_limited_whatever_its_address(seeded, settings):
    settings.QUEUE_CALL_REQUESTS_PER_DEVICE = 2
    settings.QUEUE_OPEN_CALLS_PER_DEVICE = 0
    answers = []
    for _ in range(4):  # a new address each time (the device hops networks)
        sock = await customer(device="hopper")
        await sock.send("call.request", business="card_loss")
        answers.append(await answer(sock))
        await sock.close()
    assert [a["type"] for a in answers] == ["call.queued", "call.queued", "error", "error"]
    assert {a.get("limit") for a in answers[2:]} == {"device_rate"}
    assert_in_words(answers[2], "Too many calls from this device")


def test_the_customer_page_gives_a_browser_one_device_id(catalogue):
    from django.test import Client

    browser = Client()
    first = browser.get("/")
    cookie = first.cookies[DEVICE_COOKIE]
    assert len(cookie.value) >= 22
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert browser.get("/kiosk/").cookies.get(DEVICE_COOKIE) is None  # kept, not renewed
    assert Client().get("/").cookies[DEVICE_COOKIE].value != cookie.value


def test_ipv6_addresses_count_per_64_and_unknown_ones_share_one_key():
    assert limits.network_of("2001:db8:1:2:aaaa::1") == limits.network_of("2001:db8:1:2:bbbb::9")
    assert limits.network_of("2001:db8:1:3::1") != limits.network_of("2001:db8:1:2::1")
    assert limits.network_of("::ffff:203.0.113.7") == "203.0.113.7"
    assert limits.network_of(None) == limits.network_of("not an address") == "unknown"


# --- the global cap -----------------------------------------------------------------------------


async def test_a_full_queue_offers_a_callback_instead_of_a_place(seeded, settings):
    settings.QUEUE_MAX_WAITING = 2
    waiting = [await customer(), await customer()]
    for sock in waiting:
        await sock.send("call.request", business="card_loss")
        assert (await answer(sock))["type"] == "call.queued"

    late = await customer()
    await late.send("call.request", business="card_loss", id="req-1")
    refused = await answer(late)
    assert (refused["code"], refused["ref"]) == ("queue_full", "req-1")
    assert_in_words(refused, "the queue is full", "call you back")
    offer = await late.expect("queue.callback_offer")
    assert offer["reason"] == "queue_full"
    assert "call_id" not in offer
    assert "call you back" in offer["text"]["en"]
    assert "回电" in offer["text"]["zh"]
    in_db = await sync_to_async(calls_in_db)()
    assert [c.status for c in in_db] == [CallStatus.WAITING, CallStatus.WAITING]

    # Taking the offer books a callback; the queue is no longer for it.
    await late.send("callback.request")
    ended = await late.expect("call.ended")
    assert ended["reason"] == "callback"
    booked = await sync_to_async(Call.objects.get)(pk=ended["call_id"])
    assert (booked.status, booked.end_reason) == (CallStatus.CALLBACK, "callback_requested")
    assert await sync_to_async(CallbackRequest.objects.filter(call=booked).exists)()
    waiting_now = await sync_to_async(Call.objects.filter(status=CallStatus.WAITING).count)()
    assert waiting_now == 2

    # One callback per refusal: asking again books nothing.
    await late.send("callback.request")
    again = await late.expect("error")
    assert again["code"] == "conflict"
    assert await sync_to_async(CallbackRequest.objects.count)() == 1
    for sock in [*waiting, late]:
        await sock.close()


# --- priority is a claim --------------------------------------------------------------------------


@pytest.fixture
async def media_channel(seeded):
    name = f"media.limits{uuid.uuid4().hex}"
    await sync_to_async(MediaWorker.objects.create)(
        channel_name=name, host="test", pid=1, heartbeat_at=timezone.now()
    )
    return name


async def teller_socket(username: str) -> Socket:
    sock = Socket("/ws/teller/", await sync_to_async(session_cookie)(username, "teller"))
    await sock.open()
    return sock


async def test_claims_are_shown_as_claimed_and_limited_per_address(seeded, settings):
    settings.QUEUE_PRIORITY_CLAIMS_PER_IP = 1
    settings.QUEUE_OPEN_CALLS_PER_IP = 0
    first = await customer(client="192.0.2.50")
    await first.send("call.request", business="card_loss", priority="elderly")
    honoured = await answer(first)
    assert (honoured["priority"], honoured["priority_claim"]) == ("elderly", "claimed")
    second = await customer(client="192.0.2.50")
    await second.send("call.request", business="card_loss", priority="elderly")
    downgraded = await answer(second)
    assert (downgraded["priority"], downgraded["priority_claim"]) == ("normal", "over_limit")

    calls = {str(c.id): c for c in await sync_to_async(calls_in_db)()}
    assert calls[honoured["call_id"]].priority == Priority.ELDERLY
    assert calls[downgraded["call_id"]].priority == Priority.NORMAL

    # The teller's list says the elderly priority is the customer's word, not a fact.
    teller = await teller_socket("claims-teller")
    snapshot = await teller.expect("queue.snapshot")
    listed = {c["call_id"]: c for c in snapshot["calls"]}
    assert (
        listed[honoured["call_id"]]["priority"],
        listed[honoured["call_id"]]["priority_claim"],
    ) == (
        Priority.ELDERLY,
        "claimed",
    )
    assert listed[downgraded["call_id"]]["priority"] == Priority.NORMAL
    for sock in (first, second, teller):
        await sock.close()


@pytest.fixture
def national_stub(settings, live_server):
    """Analysis on this process's background threads; the national check goes to the stub the
    test server mounts (it runs after the teller confirms the fields)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.ROOT_URLCONF = "tests.stub_urls"  # the test server mounts the stubs on every profile
    base = f"{live_server.url}/ext/national-id/v1"
    settings.KYC_NATIONAL_CHANNELS = [f"{base}/primary", f"{base}/secondary"]
    settings.KYC_NATIONAL_RETRY_BACKOFF_S = 0.1
    settings.NATIONAL_STUB_LATENCY_MS = 0
    settings.NATIONAL_STUB_JITTER_MS = 0
    yield
    from kyc.national.tasks import national_check_threads_join

    assert national_check_threads_join(timeout=60)


def card_frames(age_range: tuple[int, int], seed: int):
    """A card holder of that age, their card's two sides held up to a camera (JPEGs), and the
    fields the teller confirms (the card's own)."""
    from kyc.idcard.generator import card_back, card_front, card_in_frame, person_random
    from tests.media import face_photos

    person = person_random(random.Random(seed), min_age=age_range[0], max_age=age_range[1])
    holder = Image.open(face_photos()["obama"]).convert("RGB")
    sides = {
        "card_front": card_in_frame(
            card_front(person, portrait=holder, rng=random.Random(seed)), scale=0.95
        ),
        "card_back": card_in_frame(card_back(person, rng=random.Random(seed)), scale=0.95),
    }
    jpegs = {}
    for purpose, image in sides.items():
        out = io.BytesIO()
        Image.fromarray(np.asarray(image)).convert("RGB").save(out, format="JPEG", quality=90)
        jpegs[purpose] = out.getvalue()
    return jpegs, {**person.back_fields(), **person.front_fields()}


@pytest.mark.parametrize(
    ("ages", "claim", "priority", "words"),
    [
        ((25, 40), PriorityClaim.WITHDRAWN, Priority.NORMAL, "Elderly priority withdrawn"),
        ((66, 80), PriorityClaim.CONFIRMED, Priority.ELDERLY, "Elderly priority confirmed"),
    ],
)
async def test_the_identity_checks_birth_date_settles_the_claim(
    media_channel, national_stub, ages, claim, priority, words
):
    jpegs, fields = await asyncio.to_thread(card_frames, ages, 7)
    layer = get_channel_layer()
    cust = await customer()
    teller = await teller_socket("claim-teller")
    await cust.send("call.request", business="account_change", priority="elderly")
    call_id = (await answer(cust))["call_id"]
    await teller.send("presence.set", status="available")
    offer = await teller.expect("call.offer")
    assert (offer["priority"], offer["priority_claim"]) == (Priority.ELDERLY, "claimed")
    await teller.send("call.accept", call_id=call_id)
    connected = await teller.expect("call.connected")
    assert connected["priority_claim"] == "claimed"

    await teller.send("kyc.start", call_id=call_id)
    await cust.expect("kyc.consent_request")
    await cust.send("kyc.consent", call_id=call_id, accepted=True)
    await teller.expect("kyc.state", where=lambda m: m["check"]["status"] == "in_progress")
    for side, purpose in (("front", "card_front"), ("back", "card_back")):
        await teller.send("kyc.capture", call_id=call_id, side=side)
        grab = await layer.receive(media_channel)
        while grab["type"] != "media.grab":
            grab = await layer.receive(media_channel)
        # What the media worker does with the customer's video: hand over the frames.
        from kyc.services import identity_frames_received

        await sync_to_async(identity_frames_received)(
            check_id=uuid.UUID(grab["check_id"]),
            purpose=purpose,
            frames=[(1000, 0, jpegs[purpose])],
            source="test",
        )
        await teller.expect(
            "kyc.state",
            timeout=60,
            where=lambda m, p=purpose: (
                {s["step"]: s for s in m["check"]["steps"]}[p]["status"] == "passed"
            ),
        )

    await teller.send("kyc.fields.confirm", call_id=call_id, fields=fields)
    told = await teller.expect("call.priority", timeout=20)
    assert (told["call_id"], told["priority_claim"], told["priority"]) == (call_id, claim, priority)
    assert words in told["text"]["en"]
    assert "老年优先" in told["text"]["zh"]
    call = await sync_to_async(Call.objects.get)(pk=call_id)
    assert (call.priority_claim, call.priority) == (claim, priority)
    event = await sync_to_async(CallEvent.objects.get)(call_id=call_id, kind="priority_claim")
    assert event.data["claim"] == claim
    assert fields["birth"] not in json.dumps(event.data)  # the timeline keeps no birth date
    for sock in (cust, teller):
        await sock.close()


# --- what an arrival costs and what a teller is sent ---------------------------------------------


def many_waiting(n: int) -> None:
    """``n`` calls already waiting (straight into the database: the queue's length, not how it
    got there, is what these tests are about), a tenth of them elderly."""
    businesses = list(
        Business.objects.filter(key__in=["card_loss", "time_deposit", "account_change"])
    )
    start = timezone.now() - timedelta(minutes=10)
    Call.objects.bulk_create(
        Call(
            business=businesses[i % len(businesses)],
            priority=Priority.ELDERLY if i % 10 == 0 else Priority.NORMAL,
            priority_claim=PriorityClaim.CLAIMED if i % 10 == 0 else PriorityClaim.NONE,
            language="yue",
            enqueued_at=start + timedelta(milliseconds=i),
        )
        for i in range(n)
    )


async def test_a_teller_gets_the_first_calls_and_the_counts_not_the_whole_queue(seeded, settings):
    settings.QUEUE_SNAPSHOT_CALLS = 20
    await sync_to_async(many_waiting)(3000)
    teller = await teller_socket("snapshot-teller")
    snapshot = await teller.expect("queue.snapshot")
    size = len(json.dumps(snapshot, ensure_ascii=False).encode())
    assert size < 20 * 1024, size
    assert len(snapshot["calls"]) == 20
    assert (snapshot["waiting"], snapshot["more"]) == (3000, 2980)
    assert sum(b["waiting"] for b in snapshot["businesses"]) == 3000
    assert {b["business"] for b in snapshot["businesses"]} == {
        "card_loss",
        "time_deposit",
        "account_change",
    }
    # The first N in service order: the elderly claims (a tenth: 300) come first, oldest first.
    first = await sync_to_async(
        lambda: [
            str(pk)
            for pk in Call.objects.filter(status=CallStatus.WAITING)
            .order_by("-priority", "-head", "enqueued_at", "id")
            .values_list("pk", flat=True)[:20]
        ]
    )()
    assert [c["call_id"] for c in snapshot["calls"]] == first
    assert all(c["priority_claim"] == "claimed" for c in snapshot["calls"])
    await teller.close()


async def test_an_arrival_is_routed_without_reading_the_queue(seeded, settings, monkeypatch):
    """With many calls waiting that the free teller cannot take (Cantonese), a new Mandarin
    call is offered to that teller at once, and neither the routing snapshot nor the waiting list
    is read on the way; its place is counted, not computed from the whole queue."""
    await sync_to_async(many_waiting)(500)
    teller = await teller_socket("arrival-teller")  # speaks zh and en, not yue
    await teller.expect("queue.snapshot")
    await teller.send("presence.set", status="available")
    await teller.expect("presence", where=lambda m: m["status"] == "available")

    def whole_queue_read(*args, **kwargs):
        raise AssertionError("an arrival read the whole queue")

    cust = await customer()
    with monkeypatch.context() as patched:  # the arrival only (a hang-up routes the whole queue)
        patched.setattr(selectors, "routing_snapshot", whole_queue_read)
        patched.setattr(selectors, "waiting_calls", whole_queue_read)
        await cust.send("call.request", business="time_deposit", language="zh")
        queued = await answer(cust)
        assert queued["type"] == "call.queued", queued
        offer = await teller.expect("call.offer")
        assert offer["call_id"] == queued["call_id"]
    for sock in (cust, teller):
        await sock.close()


async def test_a_place_is_counted_as_the_full_pass_computes_it(seeded, settings):
    """On arrival (counted as the call is admitted) and on resume (counted for that one call),
    a caller's place is what the ticker's full pass over the queue says."""
    await sync_to_async(many_waiting)(300)
    socks, tokens = [], []
    for priority in ("normal", "elderly", "normal"):
        sock = await customer()
        await sock.send("call.request", business="time_deposit", language="yue", priority=priority)
        queued = await answer(sock)
        socks.append(sock)
        tokens.append((queued["call_id"], queued["token"]))
        places = await sync_to_async(selectors.queue_places)()
        full = {str(p.call_id): p for p in places}[queued["call_id"]]
        assert (queued["position"], queued["waiting"]) == (full.position, full.waiting)
        assert queued["estimated_wait_s"] == full.estimated_wait_s
    place_of = {str(p.call_id): p for p in await sync_to_async(selectors.queue_places)()}
    for call_id, token in tokens:
        again = await customer()
        await again.send("call.resume", token=token)
        position = await again.expect("queue.position")
        assert (position["position"], position["waiting"]) == (
            place_of[call_id].position,
            place_of[call_id].waiting,
        )
        socks.append(again)
    for sock in socks:
        await sock.close()


# --- across server processes (production profile) ------------------------------------------------


@pytest.mark.production
@pytest.mark.skipif(
    django_settings.PROFILE != "production",
    reason="needs the production profile (DATABASE_URL + REDIS_URL); CI runs it",
)
async def test_the_address_limit_holds_across_two_server_processes(
    no_shared_stack, tmp_path, monkeypatch
):
    from signaling.client import CustomerClient
    from tests.livestack import LiveStack

    monkeypatch.setenv("QUEUE_CALL_REQUESTS_PER_IP", "3")
    monkeypatch.setenv("QUEUE_OPEN_CALLS_PER_IP", "0")
    await orm(catalogue_seed)
    stack = LiveStack(tmp_path / "stack-logs", servers=2, media_workers=0, celery=False)
    await asyncio.to_thread(stack.start)
    try:
        replies = []
        for n in range(50):  # alternating between the two daphne processes, from 127.0.0.1
            server = n % 2
            cookie = f"{DEVICE_COOKIE}=script{n:024d}"
            async with CustomerClient(stack.urls[server], cookies=cookie) as client:
                await client.send("call.request", business="card_loss")
                replies.append((server, await client.wait_for("call.queued", "error", timeout=10)))
                if replies[-1][1]["type"] == "call.queued":
                    client.call_id = replies[-1][1]["call_id"]
    except BaseException:
        print(stack.logs())
        raise
    finally:
        await asyncio.to_thread(stack.stop)

    accepted = [(server, r) for server, r in replies if r["type"] == "call.queued"]
    refused = [(server, r) for server, r in replies if r["type"] == "error"]
    assert len(accepted) == 3, replies[:6]
    # Each server refused once the two together had let three through: one shared count.
    assert {server for server, _ in accepted} == {0, 1}
    assert {server for server, _ in refused} == {0, 1}
    for _, error in refused:
        assert (error["code"], error["limit"]) == ("rate_limited", "ip_rate")
        assert "try again in" in error["detail"]
    ids = await orm(lambda: sorted(str(pk) for pk in Call.objects.values_list("pk", flat=True)))
    assert ids == sorted(r["call_id"] for _, r in accepted)
