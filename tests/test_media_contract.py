"""The control plane ↔ media engine contract (videobank/media_contract.py): every message is
built and read there, a malformed one is refused in words, and the documentation is the module's.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.layers import InMemoryChannelLayer

from videobank import media_contract
from videobank.media_contract import ContractError

CALL, CHECK = str(uuid.uuid4()), str(uuid.uuid4())
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
REPLY = "specific.inmemory!abc123"


def test_every_message_built_here_is_one_the_other_side_reads():
    to_engine = [
        media_contract.offer(call_id=CALL, leg="customer", sdp=SDP, reply_to=REPLY),
        media_contract.hangup(call_id=CALL),
        media_contract.leg_drop(call_id=uuid.UUID(CALL), leg="teller"),
        media_contract.grab(call_id=CALL, check_id=CHECK, purpose="card_front", count=5,
                            spread_ms=1200),
        media_contract.grab(call_id=CALL, check_id=CHECK, purpose="liveness", at_ms=[0, 200]),
    ]  # fmt: skip
    from_engine = [
        media_contract.answer(call_id=CALL, sdp=SDP),
        media_contract.state(call_id=CALL, state="connected"),
        media_contract.error(detail="The call is not connected. / 通话未接通。"),
        media_contract.error(detail="bad offer / 协商信息无效", code="invalid"),
    ]
    assert [m["type"] for m in to_engine] == [
        "media.offer", "media.hangup", "media.leg_drop", "media.grab", "media.grab",
    ]  # fmt: skip
    for message in to_engine:
        assert media_contract.parse(message, expect="engine") == message
    for message in from_engine:
        assert media_contract.parse(message, expect="control") == message
    # The channel layer calls the handler named by the type: a socket's `media_answer`.
    assert {m["type"] for m in from_engine} == {"media.answer", "media.state", "media.error"}


def test_a_grab_says_its_moments_either_way():
    spread = media_contract.grab(
        call_id=CALL, check_id=CHECK, purpose="card_front", count=5, spread_ms=1200
    )
    assert media_contract.grab_moments(spread) == [0, 300, 600, 900, 1200]
    chosen = media_contract.grab(call_id=CALL, check_id=CHECK, purpose="face_match", at_ms=[70])
    assert media_contract.grab_moments(chosen) == [70]


OFFER = {"type": "media.offer", "call_id": CALL, "leg": "customer", "sdp": SDP, "reply_to": REPLY}
GRAB = {"type": "media.grab", "call_id": CALL, "check_id": CHECK, "purpose": "card_front"}


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("media.hangup", "must be an object"),
        ({"call_id": CALL}, "Unknown media message 'None'"),
        ({"type": "media.reboot", "call_id": CALL}, "Unknown media message 'media.reboot'"),
        ({"type": "media.answer", "call_id": CALL, "sdp": SDP}, "Unknown media message"),
        ({"type": "media.hangup"}, "'call_id' is a required property"),
        ({"type": "media.hangup", "call_id": "42"}, "call_id"),
        ({"type": "media.hangup", "call_id": CALL, "force": True}, "'force' was unexpected"),
        ({**OFFER, "leg": "supervisor"}, "leg"),
        ({**OFFER, "sdp": "v=0"}, "sdp"),
        ({**OFFER, "reply_to": "no spaces allowed"}, "reply_to"),
        (GRAB, "media.grab"),  # neither moments nor a count
        ({**GRAB, "at_ms": [0], "count": 2, "spread_ms": 10}, "media.grab"),  # both
        ({**GRAB, "at_ms": list(range(200))}, "at_ms"),
        ({**GRAB, "at_ms": [60_000]}, "at_ms/0"),
        ({**GRAB, "purpose": "selfie", "at_ms": [0]}, "purpose"),
    ],
)
def test_a_message_that_breaks_the_contract_is_refused_in_words(message, words):
    with pytest.raises(ContractError) as refused:
        media_contract.parse(message, expect="engine")
    assert words in refused.value.en
    assert refused.value.zh
    assert refused.value.zh != refused.value.en


def test_the_builders_refuse_what_the_contract_does_not_allow():
    with pytest.raises(ContractError, match="leg"):
        media_contract.leg_drop(call_id=CALL, leg="everyone")
    with pytest.raises(ContractError, match="state"):
        media_contract.state(call_id=CALL, state="great")


def test_the_documentation_is_in_step_with_the_contract(settings):
    doc = (settings.BASE_DIR / "docs" / "media-engine.md").read_text(encoding="utf-8")
    assert doc == media_contract.render_markdown(), "run: python manage.py protocol_doc"
    for name in media_contract.MESSAGES:
        assert f"### `{name}`" in doc


@pytest.mark.django_db(transaction=True)
async def test_the_media_worker_refuses_a_broken_message_in_words_and_keeps_serving():
    from signaling.media.worker import MediaWorker

    layer = InMemoryChannelLayer()
    worker = MediaWorker(layer, "media.contract-test")
    running = asyncio.ensure_future(worker.run())
    reply = await layer.new_channel()
    try:
        await layer.send(worker.channel_name, {**OFFER, "leg": "supervisor", "reply_to": reply})
        refused = await asyncio.wait_for(layer.receive(reply), 10)
        assert media_contract.parse(refused, expect="control")["code"] == "invalid"
        assert "leg" in refused["detail"]
        assert "不符合约定" in refused["detail"]
        # Still serving: a well-formed offer whose SDP is unusable gets the worker's own answer.
        await layer.send(
            worker.channel_name, {**OFFER, "sdp": "v=0 not an offer", "reply_to": reply}
        )
        answered = await asyncio.wait_for(layer.receive(reply), 10)
        assert answered["type"] == "media.error"
        assert "SDP" in answered["detail"]
        assert worker.sessions == {}
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)


class _NamedEngine:
    """Stands for another engine (Janus, say): MEDIA_ENGINE names the class a server starts."""

    instances: list[_NamedEngine] = []

    def __init__(self) -> None:
        from signaling.media.worker import MediaWorker

        self.inner = MediaWorker(InMemoryChannelLayer(), "media.named-engine")
        _NamedEngine.instances.append(self)

    async def register(self) -> None:
        await self.inner.register()

    async def run(self) -> None:
        await self.inner.run()

    def stop(self) -> None:
        self.inner.stop()


@pytest.mark.django_db(transaction=True)
async def test_the_embedded_server_starts_the_engine_media_engine_names(settings):
    from signaling.media.worker import _embedded, ensure_embedded_worker

    settings.MEDIA_ENGINE = "tests.test_media_contract._NamedEngine"
    engine = await ensure_embedded_worker()
    try:
        assert isinstance(engine, _NamedEngine)
        assert _NamedEngine.instances == [engine]
    finally:
        engine.stop()
        await asyncio.wait_for(_embedded.pop(id(asyncio.get_running_loop()))[1], 10)


@pytest.mark.parametrize(("beat", "stale"), [(2.0, 5.0), (0.0, 10.0)], ids=["two-beats", "no-beat"])
def test_a_worker_taken_for_dead_too_soon_stops_the_server_with_words(settings, beat, stale):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.MEDIA_WORKER_HEARTBEAT_S, settings.MEDIA_WORKER_STALE_S = beat, stale
    with pytest.raises(SystemCheckError, match="at least three heartbeats"):
        call_command("check")
