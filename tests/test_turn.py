"""TURN credentials are short-lived, per call, and handed only to a call being connected.

Through the real sockets (the project's ASGI router, in process): an anonymous socket, a customer
who places a call, a teller who answers it, the customer's page reloaded (``call.resume``), a
second customer still waiting. Only the two sides of the connected call get a TURN credential
(``call.connected``, ``call.answered``, and ``call.answered`` again on resume), each one the TURN
REST API's (``<expiry>:<call id>``, HMAC-SHA1 under the TURN server's secret), expiring within
``TURN_TTL_S``; ``hello`` carries STUN URLs only.

And the TURN secret itself is nowhere (the pattern of ``tests/test_pin_nowhere.py``): every frame
every socket sent and received, every channel-layer message, every log record of every logger at
DEBUG, every SQL statement and, at the end, every row of every table are searched for it in clear
and in common encodings. So that the search cannot pass by finding nothing, each capture is
shown to hold the call's id (the sentinel: it travels the same paths), the frames to hold the
credentials derived from the secret, and the search to find the secret where it is put.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections
from django.utils import timezone

from queueing.models import MediaWorker
from signaling.client import CustomerClient, TellerClient
from signaling.media.worker import ice_configuration
from tests import pin_capture
from tests.calls import teller_cookie
from tests.factories import catalogue_seed, staff_user
from tests.livestack import LiveStack
from tests.pin_capture import Captures
from tests.sockets import Socket, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]

SECRET = "coturn-static-auth-secret-9Vq2xLr7Tz"
STUN = "stun:stun.bank.test:3478"
TURN = ["turn:turn.bank.test:3478?transport=udp", "turns:turn.bank.test:5349?transport=tcp"]
TTL_S = 300


@pytest.fixture
def turn(settings, monkeypatch):
    # The consumers' worker threads close their connections after each call (the production
    # profile keeps them 60 s: open sessions keep the test database from being dropped).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"
    settings.STUN_URLS = [STUN]
    settings.TURN_URLS = TURN
    settings.TURN_SECRET = SECRET
    settings.TURN_TTL_S = TTL_S
    catalogue_seed()
    MediaWorker.objects.create(
        channel_name=f"media.turn.{uuid.uuid4().hex}",
        host="test",
        pid=1,
        heartbeat_at=timezone.now(),
    )


@pytest.fixture
def captures(monkeypatch) -> Captures:
    captured = Captures()
    pin_capture.logs_tapped(monkeypatch, captured)
    pin_capture.sql_tapped(monkeypatch, captured)
    return captured


def public_only(hello: dict) -> None:
    """``hello`` holds STUN URLs and nothing a TURN server would accept."""
    assert hello["ice_servers"] == [{"urls": [STUN]}], hello
    assert "turn" not in json.dumps(hello["ice_servers"]).lower()
    assert "credential" not in json.dumps(hello)


def turn_entry(message: dict, call_id: str) -> dict:
    """The TURN entry of a message's ``ice_servers``, checked as coturn would check it."""
    servers = message["ice_servers"]
    assert servers[0] == {"urls": [STUN]}
    (entry,) = [s for s in servers if "credential" in s]
    assert entry["urls"] == TURN
    expiry, name = entry["username"].split(":", 1)
    assert name == call_id  # the TURN server's logs name the call
    assert 0 < int(expiry) - time.time() <= TTL_S  # short-lived: TURN_TTL_S from now at most
    expected = hmac.new(SECRET.encode(), entry["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(entry["credential"]) == expected  # coturn's use-auth-secret check
    return entry


async def test_turn_credentials_go_only_to_a_connected_call_and_the_secret_nowhere(
    turn, captures, monkeypatch
):
    pin_capture.channel_layer_tapped(monkeypatch, captures, get_channel_layer())
    sockets = []

    async def opened(name: str, path: str, cookie: bytes | None = None) -> tuple[Socket, dict]:
        sock = pin_capture.frames_recorded(Socket(path, cookie), name, captures)
        sockets.append(sock)
        return sock, await sock.open()

    # Anyone: STUN only.
    _, hello = await opened("anonymous", "/ws/customer/")
    public_only(hello)
    customer, hello = await opened("customer", "/ws/customer/")
    public_only(hello)
    cookie = await database_sync_to_async(session_cookie)("teller-t", "teller")
    teller, hello = await opened("teller", "/ws/teller/", cookie)
    public_only(hello)

    # The call being connected: each side gets its own credential for this call.
    await customer.send("call.request", business="card_loss", channel="web")
    queued = await customer.expect("call.queued")
    call_id = queued["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer", where=lambda m: m["call_id"] == call_id)
    await teller.send("call.accept", call_id=call_id)
    teller_turn = turn_entry(await teller.expect("call.connected"), call_id)
    customer_turn = turn_entry(await customer.expect("call.answered"), call_id)

    # A call waiting in the queue (the only teller is busy) gets none, on its socket or on a
    # resumed one.
    waiting, _ = await opened("waiting customer", "/ws/customer/")
    await waiting.send("call.request", business="card_loss", channel="web")
    waiting_call = await waiting.expect("call.queued")
    assert "ice_servers" not in waiting_call
    waiting_again, _ = await opened("waiting customer, reloaded", "/ws/customer/")
    await waiting_again.send("call.resume", token=waiting_call["token"])
    assert "ice_servers" not in await waiting_again.expect("queue.position")

    # The customer's page reloaded: a new socket resumes the connected call with a fresh one.
    reloaded, hello = await opened("customer, reloaded", "/ws/customer/")
    public_only(hello)
    await reloaded.send("call.resume", token=queued["token"])
    turn_entry(await reloaded.expect("call.answered"), call_id)

    await teller.send("call.hangup", call_id=call_id)
    await customer.expect("call.ended")
    for sock in sockets:
        await sock.pending()
        await sock.close()
    captures.sql_on = False
    await database_sync_to_async(pin_capture.database_dumped)(captures)
    print("\ncaptured:", json.dumps(captures.sizes(), ensure_ascii=False, indent=1))

    # Nobody but the call's two sides got a credential.
    for name in (
        "frames: anonymous received",
        "frames: waiting customer received",
        "frames: waiting customer, reloaded received",
    ):
        assert "credential" not in captures.joined(name), name
    # Minted on the socket that hands them out: the channel layer (Redis) never carries them.
    assert teller_turn["credential"] in captures.joined("frames: teller received")
    assert customer_turn["credential"] in captures.joined("frames: customer received")
    for entry in (teller_turn, customer_turn):
        assert entry["credential"] not in captures.joined("channel layer")

    # The captures hold what the secret could have leaked into: the call passed through each.
    for name in ("logs", "channel layer", "SQL", "database") + tuple(
        f"frames: {side} received" for side in ("customer", "teller", "customer, reloaded")
    ):
        text = captures.joined(name)
        assert call_id in text or call_id.replace("-", "") in text, name  # SQLite: hex
    # ... and the search finds the secret, in clear and encoded, where it is put.
    probe = Captures()
    probe.text("probe", f"static-auth-secret={SECRET}")
    probe.text("probe", base64.b64encode(SECRET.encode()).decode())
    probe.text("probe", json.dumps({"secret": SECRET.encode().hex()}))
    assert len(probe.hits(SECRET)) == 3

    # The secret: in no frame, channel-layer message, log record, SQL statement or table.
    assert captures.hits(SECRET) == []


def test_the_media_worker_uses_stun_from_settings_and_never_a_public_default(settings):
    settings.TURN_URLS = TURN
    settings.TURN_SECRET = SECRET
    settings.STUN_URLS = []
    assert ice_configuration().iceServers == []  # an empty list: aiortc adds no public STUN
    settings.STUN_URLS = [STUN]
    (server,) = ice_configuration().iceServers
    assert (server.urls, server.username, server.credential) == ([STUN], None, None)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"TURN_TTL_S": 3600}, "TURN_TTL_S is 3600: a TURN credential must live between 60"),
        ({"TURN_SECRET": ""}, "TURN_URLS is set but TURN_SECRET is empty"),
    ],
)
def test_bad_turn_settings_stop_the_server_with_words(settings, changes, words):
    settings.TURN_URLS = TURN
    settings.TURN_SECRET = SECRET
    for name, value in changes.items():
        setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=words):
        call_command("check")


def test_a_static_ice_servers_setting_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(
        "ICE_SERVERS", '[{"urls": ["turn:t:3478"], "username": "u", "credential": "p"}]'
    )
    with pytest.raises(SystemCheckError, match="ICE_SERVERS is no longer read"):
        call_command("check")


@pytest.fixture
def turn_stack(monkeypatch, no_shared_stack, tmp_path):
    """The server processes with a TURN server configured in their environment."""
    monkeypatch.setenv("STUN_URLS", STUN)
    monkeypatch.setenv("TURN_URLS", ",".join(TURN))
    monkeypatch.setenv("TURN_SECRET", SECRET)
    monkeypatch.setenv("TURN_TTL_S", str(TTL_S))
    catalogue_seed()
    stack = LiveStack(tmp_path / "stack-logs", celery=False).start()
    yield stack
    print(stack.logs())  # shown if the test failed
    stack.stop()


async def test_the_python_client_takes_the_calls_ice_servers(turn_stack):
    """The app SDK (signaling/client.py) against real server processes: STUN from ``hello``,
    then the call's TURN credential from ``call.answered`` / ``call.connected``."""

    def cookie() -> str:
        try:
            return teller_cookie(staff_user("teller-sdk", "teller"))
        finally:
            connections.close_all()

    cookies = await asyncio.to_thread(cookie)
    async with (
        CustomerClient(turn_stack.url) as customer,
        TellerClient(turn_stack.url, cookies=cookies) as teller,
    ):
        for side in (customer, teller):
            public_only(side.hello)
            assert side.ice_servers == [{"urls": [STUN]}]
        await teller.go_available()
        call_id = await customer.call("card_loss")
        await teller.next_offer(call_id)
        connected = await teller.accept(call_id)
        answered = await customer.wait_for("call.answered")
        assert teller.ice_servers == connected["ice_servers"]
        assert customer.ice_servers == answered["ice_servers"]
        for side in (customer, teller):
            turn_entry({"ice_servers": side.ice_servers}, call_id)
        await teller.hangup(call_id)
        await customer.wait_for("call.ended")
