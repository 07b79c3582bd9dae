"""The protocol's schemas bound what a frame may hold, so that a bad frame is refused in words
before any service sees it: over the real ASGI router, each frame below gets `invalid` or
`bad_json` (never `internal`), nothing is logged as an error, the socket keeps answering and
nothing changed. Regressions of what the generated-input test (test_protocol_fuzz.py) found."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from asgiref.sync import sync_to_async

from queueing.models import Call, CallEvent
from tests.factories import catalogue_seed
from tests.sockets import Socket, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]

ID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture
def errors_logged(monkeypatch) -> list[logging.LogRecord]:
    """Every record logged at ERROR or above, or with a traceback, by any logger of any thread."""
    from tests.protocol_fuzz import errors_tapped

    return errors_tapped(monkeypatch)


async def sockets() -> tuple[Socket, Socket]:
    await sync_to_async(catalogue_seed)()
    customer = Socket("/ws/customer/")
    await customer.open()
    teller = Socket("/ws/teller/", await sync_to_async(session_cookie)("bounds-teller", "teller"))
    await teller.open()
    await teller.expect("queue.snapshot")
    return customer, teller


async def refused(sock: Socket, frame: str, code: str) -> dict:
    await sock.send_raw(frame)
    error = await sock.expect("error")
    assert (error["code"], bool(error["detail"])) == (code, True), (frame[:120], error)
    return error


async def nothing_changed(errors_logged, *socks: Socket) -> None:
    for sock in socks:
        await sock.alive()
    assert await sync_to_async(Call.objects.count)() == 0
    assert await sync_to_async(CallEvent.objects.count)() == 0
    assert errors_logged == []
    for sock in socks:
        await sock.close()


@pytest.mark.parametrize(
    "bad_id",
    [
        "-" * 36,  # passed the old pattern, then failed uuid.UUID(): `internal`
        ID.replace("-", ""),
        "{" + ID[1:-1] + "}",
        "urn:uuid:" + ID,
        ID + "\n",  # Python's `$` matches before a final newline
        ID[:-1] + "g",
        " " + ID[1:],
    ],
)
async def test_an_id_that_is_not_a_uuid_is_invalid_in_words(errors_logged, bad_id):
    customer, teller = await sockets()
    frame = {"v": 1, "call_id": bad_id}
    error = await refused(customer, json.dumps({**frame, "type": "call.hangup"}), "invalid")
    assert "call_id" in error["detail"]
    assert "UUID" in error["detail"]
    for type_ in ("kyc.start", "call.accept", "call.hangup"):
        await refused(teller, json.dumps({**frame, "type": type_}), "invalid")
    case = {"type": "case.cancel", "v": 1, "call_id": ID, "case_id": bad_id}
    assert "case_id" in (await refused(teller, json.dumps(case), "invalid"))["detail"]
    await nothing_changed(errors_logged, customer, teller)


async def test_a_pattern_is_the_whole_value_without_a_trailing_newline(errors_logged):
    customer, teller = await sockets()
    await refused(
        customer, json.dumps({"type": "call.request", "v": 1, "business": "card_loss\n"}), "invalid"
    )
    start = {"type": "case.start", "v": 1, "call_id": ID, "business": "transfer\n"}
    await refused(teller, json.dumps(start), "invalid")
    await nothing_changed(errors_logged, customer, teller)
    # A valid id still gets through to the service (refused there: not this teller's call).
    customer, teller = await sockets()
    await teller.send("kyc.start", call_id=ID.upper())
    assert (await teller.expect("error"))["code"] == "forbidden"
    await nothing_changed(errors_logged, customer, teller)


DEEP = 5000  # far past Python's recursion limit: the decoder used to raise RecursionError
CONSENT = '{"type":"kyc.consent","v":1,"call_id":"%s","accepted":true,"geolocation":%s}'


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ('{"type":"ping","v":1,"id":' + "[" * DEEP + "]" * DEEP + "}", "bad_json", "nested"),
        ("[" * DEEP, "bad_json", "nested"),
        ('{"type":"ping","v":1,"id":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}", "bad_json", ""),
        (CONSENT % (ID, '{"lat":NaN,"lon":1}'), "bad_json", "NaN"),
        (CONSENT % (ID, '{"lat":1,"lon":-Infinity}'), "bad_json", "Infinity"),
        (CONSENT % (ID, '{"lat":1e400,"lon":1}'), "bad_json", "range"),
        ('{"type":"ping","v":1,"id":' + "9" * 5000 + "}", "bad_json", "digits"),  # was internal
        (f'{{"type":"call.hangup","v":1,"call_id":"{ID}","call_id":"{ID}"}}', "bad_json", "twice"),
        ('{"type":"ping","v":1,"id":"\\ud800"}', "bad_json", "surrogate"),
        ('{"type":"ping","v":1,"id":"a\\u0000b"}', "bad_json", "NUL"),
        ('{"type":"ping","v":1,"id\\udfff":1}', "bad_json", "surrogate"),
        ('{"type":["ping"],"v":1}', "unknown_type", ""),  # was internal: unhashable type
        ('{"type":{"a":1},"v":1}', "unknown_type", ""),
        ('{"type":"ping","v":1,"id":"%s"}' % ("r" * 5000), "invalid", "too long"),
        ("é" * 40000, "frame_too_large", "65536"),  # 40,000 characters, 80,000 bytes
    ],
    ids=[
        "deep-array",
        "deep-unclosed",
        "deep-object",
        "nan",
        "infinity",
        "1e400",
        "5000-digits",
        "duplicate-key",
        "lone-surrogate",
        "nul",
        "surrogate-key",
        "type-list",
        "type-object",
        "long-id",
        "multibyte-oversize",
    ],
)
async def test_a_frame_past_the_bounds_is_refused_in_words(errors_logged, frame, code, words):
    customer, teller = await sockets()
    for sock in (customer, teller):
        error = await refused(sock, frame, code)
        assert words in error["detail"]
        assert len(error["detail"]) <= 300  # the refusal does not echo the frame back
        assert "ref" not in error
    await nothing_changed(errors_logged, customer, teller)


async def test_a_message_id_is_echoed_only_when_it_is_a_short_string(errors_logged):
    customer, teller = await sockets()
    ok = await refused(customer, '{"type":"call.hangup","v":1,"id":"m-1"}', "invalid")
    assert ok["ref"] == "m-1"
    long_id = await refused(
        customer, '{"type":"call.hangup","v":1,"id":"%s"}' % ("m" * 129), "invalid"
    )
    assert "ref" not in long_id
    await nothing_changed(errors_logged, customer, teller)


async def test_a_form_field_name_and_number_are_bounded(errors_logged):
    customer, teller = await sockets()
    forms: list[dict[str, float]] = [
        {name: 1} for name in ("x" * 5000, "Amount", "a b", "", "amount\n")
    ]
    forms += [{"amount": 1e300}, {"amount": -(10**16)}]
    for params in forms:
        fill = {"type": "case.fill", "v": 1, "call_id": ID, "case_id": ID, "params": params}
        error = await refused(teller, json.dumps(fill), "invalid")
        assert error["detail"].startswith("params")
    await nothing_changed(errors_logged, customer, teller)


async def offer_sdp() -> str:
    """An SDP offer as a browser makes one (audio and video, ICE gathered)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    pc.addTransceiver("video")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_an_sdp_offer_the_media_worker_cannot_use_is_invalid_in_words(errors_logged):
    """It used to reach aiortc's parser in the media worker: a traceback in the logs and
    `media_unavailable` for what was the client's own bad offer."""
    from recordings.models import Recording
    from signaling.media.worker import MediaWorker

    worker = MediaWorker()
    await worker.register()
    running = asyncio.ensure_future(worker.run())
    customer, teller = await sockets()
    await customer.send("call.request", business="card_loss")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    await teller.expect("call.connected")
    await customer.expect("call.answered")
    recording = await sync_to_async(Recording.objects.get)(call_id=call_id)
    good = await offer_sdp()
    unusable = [
        "v=0 fake offer sdp",
        "x" * 20,
        "v=0\r\nm=audio x y z\r\na=rtpmap:abc\r\n",
        "v=0\r\ns=-\r\nt=0 0\r\n",  # reads, but offers no media
        good.replace("a=ice-ufrag", "a=ice-ufrag-gone"),  # reads, but no ICE credentials
        good.replace("a=ice-pwd", "a=ice-pwd-gone"),
        good.replace("a=setup", "a=setup-gone"),  # found by the fuzz test: aiortc's None.role
        good.replace("a=fingerprint", "a=fingerprint-gone"),
        good.replace("a=rtcp-mux", "a=rtcp-mux-gone"),
        # Found by the fuzz test too: aiortc failed on these with None.index / None.transport.
        good.replace("a=sendrecv", "a=sendrecv-gone"),
        good.replace("a=mid:0", "a=mid-gone:0"),
        good.replace("m=audio", "m=gone"),  # the BUNDLE group names a section not there
    ]
    for sock in (customer, teller):
        for sdp in unusable:
            await sock.send("webrtc.offer", call_id=call_id, sdp=sdp)
            error = await sock.expect("error", timeout=20)
            assert error["code"] == "invalid", (sdp[:40], error)
            assert "SDP" in error["detail"]
            assert "协商" in error["detail"]  # in Chinese too
    assert worker.sessions.get(call_id) is None or not worker.sessions[call_id].legs
    # No media session began for an unusable offer (it would have restarted the recording).
    after = await sync_to_async(Recording.objects.get)(call_id=call_id)
    assert after.started_at == recording.started_at
    for sock in (customer, teller):
        await sock.alive()
    assert errors_logged == []
    worker.stop()
    await running
    for sock in (customer, teller):
        await sock.close()
