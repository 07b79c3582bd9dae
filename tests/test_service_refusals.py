"""Schema-valid frames that a service must refuse in words: each was answered `internal` (with a
traceback in the logs) until the generated-input test (test_protocol_fuzz.py) found it. Over the
real ASGI router; the refusal is a code and words, nothing is logged as an error, nothing
changed, and the socket goes on."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from kyc.models import STEP_ORDER, CheckStatus, IdentityCheck, StepStatus
from queueing.models import CallEvent, MediaWorker
from tests.factories import catalogue_seed
from tests.sockets import Socket, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]

CARD = {
    "name": "张伟",
    "sex": "男",
    "ethnicity": "汉",
    "birth": "19900307",
    "address": "北京市东城区东华门街道1号",
    "id_number": "110101199003071233",
    "authority": "北京市公安局东城分局",
    "validity": "2020.03.07-2040.03.07",
}


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


@pytest.fixture
def errors_logged(monkeypatch) -> list[logging.LogRecord]:
    from tests.protocol_fuzz import errors_tapped

    return errors_tapped(monkeypatch)


async def connected() -> tuple[Socket, Socket, str]:
    await sync_to_async(catalogue_seed)()
    await sync_to_async(MediaWorker.objects.create)(
        channel_name="media.refusals", host="test", pid=1, heartbeat_at=timezone.now()
    )
    customer = Socket("/ws/customer/")
    await customer.open()
    teller = Socket("/ws/teller/", await sync_to_async(session_cookie)("refusal-teller", "teller"))
    await teller.open()
    await customer.send("call.request", business="account_change")
    call_id = (await customer.expect("call.queued"))["call_id"]
    await teller.send("presence.set", status="available")
    await teller.expect("call.offer")
    await teller.send("call.accept", call_id=call_id)
    await teller.expect("call.connected")
    await customer.expect("call.answered")
    return customer, teller, call_id


def card_read(call_id: str) -> IdentityCheck:
    """The call's identity check with consent given and both card sides read (as a chip read
    leaves it); the teller's confirmation is next."""
    steps: dict[str, dict[str, str]] = {s: {"status": StepStatus.PENDING} for s in STEP_ORDER}
    for step in ("consent", "card_front", "card_back"):
        steps[step] = {"status": StepStatus.PASSED, "detail": "", "detail_zh": ""}
    return IdentityCheck.objects.create(
        call_id=call_id,
        status=CheckStatus.IN_PROGRESS,
        steps=steps,
        consent_at=timezone.now(),
        fields_read={"front": CARD, "back": {}, "checks": [], "source": "chip"},
    )


async def test_card_fields_confirmed_without_a_name_are_refused_in_words(errors_logged):
    customer, teller, call_id = await connected()
    check = await sync_to_async(card_read)(call_id)
    events = await sync_to_async(CallEvent.objects.filter(call_id=call_id).count)()
    # Every rule of the card holds without the name (it has no checksum): the national check
    # used to be started with fields["name"] and fail with a KeyError.
    fields = {k: v for k, v in CARD.items() if k != "name"}
    await teller.send("kyc.fields.confirm", call_id=call_id, fields=fields)
    error = await teller.expect("error")
    assert error["code"] == "bad_name"
    assert "name is missing" in error["detail"]
    assert "缺少姓名" in error["detail"]
    after = await sync_to_async(IdentityCheck.objects.get)(pk=check.pk)
    assert (after.steps, after.fields, after.national_check_id) == (check.steps, {}, None)
    assert await sync_to_async(CallEvent.objects.filter(call_id=call_id).count)() == events
    assert errors_logged == []
    for sock in (customer, teller):
        await sock.alive()
        await sock.close()
