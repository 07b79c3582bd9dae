"""Businesses in a call, service by service, against the core-banking stub over real HTTP (the
test's own server mounts it at /ext/core-bank/: tests.stub_urls), with submissions sent on
background threads as the embedded profile does.

What a teller and a customer would notice: a business goes forward only in its order (agreement
read before confirming, confirmed before the PIN, one authorisation per business); the customer
is asked on their own screen; money moves once whatever is repeated; a wrong PIN is answered with
the tries left and a locked PIN ends the business in words; a large transfer asks for a fresh face
match by itself when the last one is too old, and not otherwise; nothing of the PIN reaches our
rows, the timeline, the messages or the logs.

The shared fixtures of the workflow tests live here (``test_workflows_businesses`` imports them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.urls import include, path
from django.utils import timezone

from kyc.models import (
    STEP_ORDER,
    CheckStatus,
    EvidenceKind,
    IdentityCheck,
    IdentityEvidence,
    Level,
)
from queueing import notify
from queueing.errors import Forbidden, NotFound
from queueing.models import Business, Call, CallEvent, CallStatus
from queueing.services import call_end
from recordings.crypto import seal
from recordings.selectors import recording_for_call
from recordings.services import recording_data_key, recording_start
from tests.factories import staff_user
from workflows import services
from workflows.corebank.models import Submission
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.models import LedgerEntry, LedgerKind
from workflows.corebank_stub.seed import BY_NAME, corebank_seed
from workflows.errors import IdentityRequired, Invalid, StateConflict
from workflows.models import BusinessCase, CaseStatus

pytestmark = [pytest.mark.django_db(transaction=True)]

MEDIA_CHANNEL = "media.wf-test"

# The receipts' pages under /receipts/, as the project's URLconf mounts them; the core stub at
# /ext/core-bank/ whatever the profile (tests.stub_urls: production servers mount no stub).
urlpatterns = [
    path("receipts/", include("workflows.urls")),
    path("", include("tests.stub_urls")),
]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stub_key_row():
    """The core stub's RSA-3072 key pair, made once for the session (flushed tables would
    otherwise make a new one for every test, a second or so each)."""
    from workflows.corebank_stub import crypto

    public_b64, pkcs8, _ = crypto.keypair_generate()
    return {"kid": "wftests" + uuid.uuid4().hex[:12], "public": public_b64, "pkcs8": pkcs8}


@pytest.fixture
def wf_settings(settings, live_server, stub_key_row):
    """The core stub on the test server, fast; submissions on background threads; their results
    back into the workflow (the hook the project's settings name)."""
    from workflows.corebank_stub import crypto
    from workflows.corebank_stub.models import StubKey

    settings.ROOT_URLCONF = __name__
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 0
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000  # the stub's PIN hashes: cheap in tests
    settings.COREBANK_RETRY_BACKOFF_S = 0.05
    settings.COREBANK_MAX_RETRIES = 3
    settings.KYC_FACE_FRESH_S = 300
    settings.WORKFLOW_TRANSFER_FACE_LIMIT = "50000.00"
    settings.WORKFLOW_AGREEMENT_MIN_READ_MS = 2000
    StubKey.objects.create(
        kid=stub_key_row["kid"],
        public_spki_b64=stub_key_row["public"],
        private_sealed=crypto.seal(stub_key_row["pkcs8"], context=stub_key_row["kid"].encode()),
    )
    corebank_seed()
    return settings


@pytest.fixture
def sent(monkeypatch):
    """Every message flushed to the channel layer after a commit: ``[(group or channel,
    message)]``, in order (including those sent from the submission threads)."""
    out: list[tuple[str, dict]] = []
    original = notify._send_all

    async def recording(group_messages, channel_messages):
        out.extend(group_messages)
        out.extend(channel_messages)
        await original(group_messages, channel_messages)

    monkeypatch.setattr(notify, "_send_all", recording)
    return out


@pytest.fixture
def call(catalogue, wf_settings):
    teller = staff_user("wf-teller", "teller")
    now = timezone.now()
    call = Call.objects.create(
        business=Business.objects.get(key="account_change"),
        status=CallStatus.CONNECTED,
        teller=teller,
        media_channel=MEDIA_CHANNEL,
        enqueued_at=now,
        answered_at=now,
    )
    recording_start(call_id=call.id)
    return call


def identity_passed(
    call: Call,
    *,
    person: str = "张伟",
    level: str = Level.THREE_FACTOR_FACE,
    face_age_s: float = 10,
) -> IdentityCheck:
    """The call's identity check as it stands once it has passed: every step passed, the
    confirmed card fields, the level, when the face was last matched, the card portrait kept as
    evidence. Built directly in the database: the workflow's unit boundary is the passed check
    (how a check gets there has its own tests in kyc/tests/test_identity_check.py)."""
    spec = BY_NAME[person]
    now = timezone.now()
    portrait_jpeg = b"portrait"
    portrait_id, front_id, back_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # What the steps rest on, as kyc.services records it: each card side's evidence, the card's
    # photo (bound by hash) that the national check and the face match were run with.
    portrait = {
        "evidence": str(portrait_id),
        "sha256": hashlib.sha256(portrait_jpeg).hexdigest(),
        "source": "card",
    }
    basis = {"front": str(front_id), "back": str(back_id)}
    steps: dict[str, dict[str, Any]] = {
        s: {"status": "passed", "detail": "", "detail_zh": ""} for s in STEP_ORDER
    }
    steps["card_front"].update(evidence=str(front_id), portrait=portrait)
    steps["card_back"].update(evidence=str(back_id))
    steps["fields"].update(basis=basis)
    steps["national"].update(basis=basis, portrait=portrait)
    steps["face_match"].update(portrait=portrait)
    check = IdentityCheck.objects.create(
        call=call,
        status=CheckStatus.PASSED,
        level=level,
        steps=steps,
        consent_at=now - timedelta(minutes=5),
        fields={
            "name": spec.name,
            "id_number": spec.id_number,
            "sex": "男",
            "birth": spec.id_number[6:14],
        },
        passed_at=now - timedelta(seconds=face_age_s),
        face_matched_at=now - timedelta(seconds=face_age_s),
        expires_at=now + timedelta(minutes=30),
    )
    key = recording_data_key(recording=recording_for_call(call.id))
    IdentityEvidence.objects.create(
        id=portrait_id,
        identity_check=check,
        kind=EvidenceKind.PORTRAIT,
        source="card",
        captured_at=now,
        sha256=portrait["sha256"],
        sealed=seal(key, portrait_jpeg, f"videobank-kyc-evidence:{portrait_id}".encode()),
    )
    return check


def settle() -> None:
    """Wait for the submissions this test queued (sent on threads of their own)."""
    from workflows.corebank.tasks import submission_threads_join

    assert submission_threads_join(timeout=30)


def customer_messages(sent, call, type_: str, case=None) -> list[dict]:
    group = notify.call_group(call.id)
    return [
        m["message"]
        for g, m in sent
        if g == group
        and m.get("type") == "signal.forward"
        and m["message"]["type"] == type_
        and (case is None or m["message"].get("case_id") == str(case.id))
    ]


def teller_states(sent, call, case) -> list[dict]:
    group = notify.teller_group(call.teller_id)
    return [
        m["message"]["case"]
        for g, m in sent
        if g == group
        and m.get("type") == "signal.forward"
        and m["message"]["type"] == "case.state"
        and m["message"]["case"]["case_id"] == str(case.id)
    ]


def start_and_fill(call, business: str, params: dict) -> BusinessCase:
    case = services.case_start(call_id=call.id, teller=call.teller, business=business)
    return services.case_fill(call_id=call.id, case_id=case.id, teller=call.teller, params=params)


def reading_takes(case: BusinessCase, ms: int) -> None:
    """The customer spends ``ms`` on the agreement (the server measures from when it sent it:
    the sending is moved back instead of the test waiting)."""
    sent_at = BusinessCase.objects.get(pk=case.id).agreement_sent_at
    BusinessCase.objects.filter(pk=case.id).update(
        agreement_sent_at=sent_at - timedelta(milliseconds=ms)
    )


def to_confirmation(call, case: BusinessCase) -> BusinessCase:
    services.case_agreement_send(call_id=call.id, case_id=case.id, teller=call.teller)
    reading_takes(case, 4200)
    services.case_agreement_read(call_id=call.id, case_id=case.id, reached_end=True)
    return services.case_confirm(call_id=call.id, case_id=case.id, accepted=True)


def authorise(call, case: BusinessCase, secret: str) -> BusinessCase:
    """What the customer's page does with the keypad: encrypt for the challenge it was sent."""
    case.refresh_from_db()
    challenge = case.challenge
    ciphertext = pin_encrypt(
        public_key_spki_b64=challenge["public_key_spki_b64"], nonce=challenge["nonce"], pin=secret
    )
    return services.case_authorise(
        call_id=call.id,
        case_id=case.id,
        challenge_id=challenge["challenge_id"],
        ciphertext_b64=ciphertext,
    )


def finished(case: BusinessCase) -> BusinessCase:
    settle()
    case.refresh_from_db()
    return case


ZHANG = BY_NAME["张伟"]
LIU = BY_NAME["刘洋"]
ZHANG_CURRENT = ZHANG.accounts[0].number
LIU_CURRENT = LIU.accounts[0].number


def transfer_params(amount: str = "1200.00", **extra) -> dict:
    return {
        "from_account": ZHANG_CURRENT,
        "to_account": LIU_CURRENT,
        "payee_name": LIU.name,
        "amount": amount,
        "memo": "房租",
        **extra,
    }


# --- a whole business -------------------------------------------------------------------------


def test_a_transfer_goes_through_once_with_the_customer_asked_on_their_screen(call, sent, caplog):
    caplog.set_level(logging.DEBUG)
    identity_passed(call)
    case = start_and_fill(call, "transfer", transfer_params())
    assert case.status == CaseStatus.FILLED, case.form_errors
    services.case_agreement_send(call_id=call.id, case_id=case.id, teller=call.teller)

    # The customer's screen gets the agreement (long enough to scroll) ...
    (agreement,) = customer_messages(sent, call, "case.agreement", case)
    assert agreement["title"]["zh"] == "转账汇款协议"
    assert len(agreement["paragraphs"]) >= 8
    assert agreement["min_read_ms"] == 2000
    reading_takes(case, 4200)
    services.case_agreement_read(call_id=call.id, case_id=case.id, reached_end=True)
    # ... the teller sees it read at once ...
    panel = teller_states(sent, call, case)[-1]
    assert panel["status"] == "agreement_read"
    assert panel["can"]["cancel"] is True
    assert panel["can"]["fill"] is False
    assert 4200 <= panel["agreement"]["reading_ms"] < 4200 + 5000  # the server's measure
    assert panel["agreement"]["reached_end"] is True
    # ... and the customer the summary, with the payee's account masked.
    (confirm,) = customer_messages(sent, call, "case.confirm_request", case)
    shown = {line["label"]["en"]: line["value"]["en"] for line in confirm["summary"]}
    assert shown["Payee"] == "刘洋"
    assert shown["Payee account"] == "6230 **** **** 4012"
    assert shown["Amount"] == "CNY 1,200.00"

    services.case_confirm(call_id=call.id, case_id=case.id, accepted=True)
    (pin_request,) = customer_messages(sent, call, "case.pin_request", case)
    assert pin_request["method"] == "pin"
    assert pin_request["public_key_spki_b64"]
    case = authorise(call, case, ZHANG.pin)
    assert case.status in (CaseStatus.SUBMITTED, CaseStatus.DONE)
    case = finished(case)

    assert case.status == CaseStatus.DONE, case.error
    out = LedgerEntry.objects.filter(kind=LedgerKind.TRANSFER_OUT, account__number=ZHANG_CURRENT)
    assert [e.amount for e in out] == [Decimal("-1200.00")]
    assert out[0].balance_after == Decimal("50800.00")
    receipt = customer_messages(sent, call, "case.receipt", case)[-1]
    assert receipt["url"].startswith("/receipts/")
    assert receipt["pdf_url"].split("?")[0].endswith(".pdf")
    assert "?token=" in receipt["pdf_url"]  # the receipt's own link token
    assert case.receipt.code.replace("-", "") in receipt["code"].replace("-", "")
    # The teller's card went through every step, live.
    seen = [p["status"] for p in teller_states(sent, call, case)]
    for status in ("filled", "agreement_sent", "agreement_read", "confirmed", "submitted", "done"):
        assert status in seen
    card = teller_states(sent, call, case)[-1]
    assert card["receipt"]["code"].replace("-", "") == case.receipt.code
    assert card["can"] == {
        "fill": False,
        "send_agreement": False,
        "cancel": False,
        "pin_resend": False,
        "submission_retry": False,
    }

    # A repeated authorisation (double click, message sent again) is refused: no second effect.
    with pytest.raises(StateConflict):
        authorise(call, case, ZHANG.pin)
    settle()
    assert Submission.objects.filter(business_case_id=case.id).count() == 1
    assert out.count() == 1

    # The PIN is nowhere in clear: not in our rows, the timeline, the messages or the logs.
    rows = json.dumps(
        [
            list(BusinessCase.objects.values()),
            list(CallEvent.objects.values("kind", "actor", "data")),
            list(Submission.objects.values()),
        ],
        default=str,
    )
    assert ZHANG.pin not in rows
    assert ZHANG.pin not in json.dumps([m for _, m in sent], default=str)
    assert ZHANG.pin not in caplog.text
    steps = [
        e.data["step"] for e in CallEvent.objects.filter(call=call, kind="business").order_by("id")
    ]
    assert steps[:7] == [
        "start",
        "form",
        "agreement_sent",
        "agreement_read",
        "confirm",
        "pin_requested",
        "authorise",
    ]
    assert "done" in steps


def test_the_same_authorisation_sent_twice_at_once_moves_money_once(call):
    identity_passed(call)
    case = to_confirmation(call, start_and_fill(call, "transfer", transfer_params("300.00")))
    case.refresh_from_db()
    ciphertext = pin_encrypt(
        public_key_spki_b64=case.challenge["public_key_spki_b64"],
        nonce=case.challenge["nonce"],
        pin=ZHANG.pin,
    )
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        from django.db import connection

        barrier.wait()
        try:
            outcomes.append(
                services.case_authorise(
                    call_id=call.id,
                    case_id=case.id,
                    challenge_id=case.challenge_id,
                    ciphertext_b64=ciphertext,
                ).status
            )
        except StateConflict as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    case = finished(case)
    assert case.status == CaseStatus.DONE
    assert sum(isinstance(o, StateConflict) for o in outcomes) == 1, outcomes
    assert Submission.objects.filter(business_case_id=case.id).count() == 1
    assert (
        LedgerEntry.objects.filter(
            kind=LedgerKind.TRANSFER_OUT, account__number=ZHANG_CURRENT
        ).count()
        == 1
    )


# --- the state machine ------------------------------------------------------------------------


def test_moves_out_of_order_are_refused_in_words_and_change_nothing(call):
    identity_passed(call)
    teller = call.teller
    case = services.case_start(call_id=call.id, teller=teller, business="details_update")
    # Nothing to send before the form is filled.
    with pytest.raises(StateConflict, match="Cannot send the agreement"):
        services.case_agreement_send(call_id=call.id, case_id=case.id, teller=teller)
    case = services.case_fill(
        call_id=call.id, case_id=case.id, teller=teller, params={"email": "zw@example.cn"}
    )
    assert case.status == CaseStatus.FILLED
    # The customer cannot agree to an agreement not yet sent, nor confirm before agreeing.
    with pytest.raises(StateConflict):
        services.case_agreement_read(call_id=call.id, case_id=case.id, reached_end=True)
    with pytest.raises(StateConflict) as refused:
        services.case_confirm(call_id=call.id, case_id=case.id, accepted=True)
    assert refused.value.detail_zh.startswith("当前无法确认业务")
    services.case_agreement_send(call_id=call.id, case_id=case.id, teller=teller)
    # Agreeing needs the end reached, and some time on it.
    reading_takes(case, 5000)
    with pytest.raises(Invalid, match="to its end"):
        services.case_agreement_read(call_id=call.id, case_id=case.id, reached_end=False)
    BusinessCase.objects.filter(pk=case.id).update(agreement_sent_at=timezone.now())
    with pytest.raises(Invalid, match="at least 2 s"):  # what the page claims does not count
        services.case_agreement_read(
            call_id=call.id, case_id=case.id, reached_end=True, reading_ms=600_000
        )
    with pytest.raises(StateConflict):  # the form is frozen once the customer has it
        services.case_fill(
            call_id=call.id, case_id=case.id, teller=teller, params={"email": "x@example.cn"}
        )
    # No PIN before the confirmation.
    with pytest.raises(StateConflict):
        services.case_authorise(
            call_id=call.id,
            case_id=case.id,
            challenge_id="abcdefgh12",
            ciphertext_b64="A" * 40,
        )
    case.refresh_from_db()
    assert case.status == CaseStatus.AGREEMENT_SENT
    # Another teller, another call: not theirs.
    stranger = staff_user("wf-other-teller", "teller")
    with pytest.raises(Forbidden):
        services.case_cancel(call_id=call.id, case_id=case.id, teller=stranger)
    with pytest.raises(NotFound):
        services.case_confirm(call_id=uuid.uuid4(), case_id=case.id, accepted=True)
    # A refusal ends the business; nothing reaches the core.
    reading_takes(case, 2500)
    services.case_agreement_read(call_id=call.id, case_id=case.id, reached_end=True)
    case = services.case_confirm(call_id=call.id, case_id=case.id, accepted=False)
    assert case.status == CaseStatus.REFUSED
    with pytest.raises(StateConflict):
        services.case_cancel(call_id=call.id, case_id=case.id, teller=teller)
    assert not Submission.objects.filter(business_case_id=case.id).exists()


def test_a_submitted_business_cannot_be_cancelled_and_hangup_cancels_the_open_ones(call):
    identity_passed(call)
    teller = call.teller
    done = to_confirmation(call, start_and_fill(call, "details_update", {"email": "a@b.cn"}))
    authorise(call, done, ZHANG.pin)
    with pytest.raises(StateConflict, match="Cannot cancel"):
        services.case_cancel(call_id=call.id, case_id=done.id, teller=teller)
    open_case = start_and_fill(call, "card_loss_report", {})
    summary = services.call_cases_close(call_id=call.id)
    settle()
    open_case.refresh_from_db()
    assert open_case.status == CaseStatus.CANCELLED
    assert open_case.error["code"] == "call_ended"
    assert [c["business"] for c in summary] == ["details_update", "card_loss_report"]


@pytest.mark.production
@pytest.mark.skipif(
    django_settings.PROFILE != "production",
    reason="row locks: PostgreSQL (SQLite writes one transaction at a time); CI runs it",
)
def test_a_teller_cancelling_a_business_as_the_customer_hangs_up_both_happen(call, monkeypatch):
    """A business step and a hang-up at the same moment (seen in the protocol fuzzing as
    "deadlock detected" on the hang-up): the step holds its case and records on the call's
    timeline, the hang-up holds the call and closes its cases. Both go through, one after the
    other."""
    from django.db import connection

    identity_passed(call)
    teller = call.teller
    case = start_and_fill(call, "card_loss_report", {})
    step_holds_case, hang_up_waits = threading.Event(), threading.Event()
    event_record = services._event

    def event_when_the_hang_up_waits(*args, **kwargs):
        step_holds_case.set()
        assert hang_up_waits.wait(20), "the hang-up never reached the call's locks"
        return event_record(*args, **kwargs)

    monkeypatch.setattr(services, "_event", event_when_the_hang_up_waits)
    outcomes: dict[str, object] = {}

    def run(name, work) -> None:
        try:
            outcomes[name] = work()
        except Exception as exc:  # what either side would have seen
            outcomes[name] = exc
        finally:
            connection.close()

    step = threading.Thread(
        target=run,
        args=(
            "cancel",
            lambda: services.case_cancel(call_id=call.id, case_id=case.id, teller=teller),
        ),
    )
    hang_up = threading.Thread(
        target=run,
        args=("hangup", lambda: call_end(call_id=call.id, actor="customer", reason="hangup")),
    )
    step.start()
    assert step_holds_case.wait(20)
    hang_up.start()
    # The hang-up is waiting for a lock the step holds (the call's, or before the fix the case's).
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    waiting += "AND wait_event_type = 'Lock'"
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(waiting)
            if cursor.fetchone()[0]:
                break
            hang_up.join(0.05)  # an event: the hang-up's thread ending early ends the wait too
    hang_up_waits.set()
    step.join(30)
    hang_up.join(30)

    assert not isinstance(outcomes["cancel"], Exception), outcomes["cancel"]
    assert not isinstance(outcomes["hangup"], Exception), outcomes["hangup"]
    case.refresh_from_db()
    call.refresh_from_db()
    assert case.status == CaseStatus.CANCELLED
    assert call.status == CallStatus.ENDED
    cancelled = CallEvent.objects.filter(call=call, kind="business", data__step="cancelled")
    assert [e.actor for e in cancelled] == [f"teller:{teller.pk}"]


# --- identity ----------------------------------------------------------------------------------


def test_a_business_needs_the_calls_identity_check_at_its_level(call):
    teller = call.teller
    with pytest.raises(IdentityRequired, match="Verify the customer's identity first"):
        services.case_start(call_id=call.id, teller=teller, business="transfer")
    check = identity_passed(call, level=Level.TWO_FACTOR)
    # Two factors serve a transfer, not a password reset (portrait and live face needed).
    services.case_start(call_id=call.id, teller=teller, business="transfer")
    with pytest.raises(IdentityRequired, match="identity level") as refused:
        services.case_start(call_id=call.id, teller=teller, business="password_reset")
    assert "身份核验等级" in refused.value.detail_zh
    # An expired check serves nothing.
    IdentityCheck.objects.filter(pk=check.pk).update(expires_at=timezone.now())
    with pytest.raises(IdentityRequired):
        services.case_start(call_id=call.id, teller=teller, business="transfer")


# --- acceptance 4: a fresh face match for a large transfer, only when needed ---------------------


@pytest.mark.parametrize(
    ("amount", "face_age_s", "needs_face"),
    [
        ("60000.00", 600, True),  # over the limit, last match 10 min ago: a fresh one
        ("60000.00", 30, False),  # over the limit, matched half a minute ago: enough
        ("1000.00", 600, False),  # under the limit: the call's check serves
    ],
)
def test_a_transfer_over_the_limit_asks_for_a_fresh_face_match_only_when_the_last_is_old(
    call, sent, amount, face_age_s, needs_face
):
    from kyc.services import identity_step_result
    from workflows.corebank_stub.seed import corebank_customer_register

    # A customer whose own limits allow a transfer over the face-match limit.
    payer = corebank_customer_register(
        id_number=ZHANG.id_number,
        name=ZHANG.name,
        pin=ZHANG.pin,
        balance="200000.00",
        per_transaction_limit="100000.00",
    )
    check = identity_passed(call, face_age_s=face_age_s)
    case = start_and_fill(
        call, "transfer", transfer_params(amount, from_account=payer["account_number"])
    )
    check.refresh_from_db()
    grabs = [m for c, m in sent if c == MEDIA_CHANNEL and m.get("type") == "media.grab"]
    if not needs_face:
        assert case.status == CaseStatus.FILLED, case.form_errors
        assert grabs == []
        assert check.steps["face_match"]["status"] == "passed"
        return
    # The case waits, and the face match was asked for by the workflow itself.
    assert case.status == CaseStatus.NEEDS_FACE
    assert check.steps["face_match"]["status"] == "running"
    assert [g["purpose"] for g in grabs] == ["face_match"]
    progress = customer_messages(sent, call, "case.progress", case)[-1]
    assert "look at the camera" in progress["text"]["en"]
    with pytest.raises(StateConflict):
        services.case_agreement_send(call_id=call.id, case_id=case.id, teller=call.teller)
    # The match passes (the media worker's frames, analysed): the case goes on by itself.
    identity_step_result(
        check_id=check.id, step="face_match", passed=True, detail="Matched.", detail_zh="一致。"
    )
    services.case_identity_refreshed(call_id=call.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.FILLED
    assert case.steps["identity"]["state"] == "done"


def test_a_failed_fresh_face_match_is_said_in_words_and_the_business_waits(call):
    from kyc.services import identity_step_result

    check = identity_passed(call, face_age_s=900)
    case = start_and_fill(call, "mobile_change", {"new_mobile": "13912345678"})
    assert case.status == CaseStatus.NEEDS_FACE
    identity_step_result(
        check_id=check.id,
        step="face_match",
        passed=False,
        detail="The live face does not match the card.",
        detail_zh="现场人脸与证件不一致。",
    )
    services.case_identity_refreshed(call_id=call.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.NEEDS_FACE
    assert case.error["code"] == "face_match_failed"
    assert "does not match" in case.error["en"]
    assert "不一致" in case.error["zh"]
    # And no other business starts on a face that no longer matches.
    with pytest.raises(IdentityRequired, match="face match failed"):
        services.case_start(call_id=call.id, teller=call.teller, business="details_update")


# --- PIN -----------------------------------------------------------------------------------------


def test_a_wrong_pin_says_the_tries_left_and_a_locked_pin_ends_the_business(call, sent):
    identity_passed(call)
    case = to_confirmation(call, start_and_fill(call, "transfer", transfer_params("50.00")))
    first_challenge = case.challenge_id
    case = authorise(call, case, "000001")
    assert case.status == CaseStatus.CONFIRMED
    assert case.auth_attempts_left == 2
    assert case.error["code"] == "wrong_pin"
    assert "2" in case.error["en"]
    # The keypad again, for the same request, with the words.
    again = customer_messages(sent, call, "case.pin_request", case)[-1]
    assert again["challenge_id"] == first_challenge
    assert again["error"]["zh"] == case.error["zh"]
    authorise(call, case, "000002")
    case = authorise(call, case, "000003")
    assert case.status == CaseStatus.REJECTED
    assert case.error["code"] == "pin_locked"
    progress = customer_messages(sent, call, "case.progress", case)[-1]
    assert progress["status"] == "rejected"
    assert "locked" in progress["text"]["en"]
    assert not Submission.objects.filter(business_case_id=case.id).exists()


# --- the core bank out of service ----------------------------------------------------------------


@pytest.mark.parametrize("fault", ["outage", "answer_lost"])
def test_a_core_outage_at_submission_queues_the_business_tells_the_teller_and_ends_once(
    call, sent, monkeypatch, fault, virtual_time
):
    """The core goes down right after the PIN was checked (or carries out the transfer and its
    answer is lost): the business waits, both screens say so, and once the core answers again
    the retry (same idempotency key) ends in exactly one transfer."""
    from workflows.corebank import services as corebank_client
    from workflows.corebank_stub.services import stub_control_set

    verify = corebank_client.corebank_pin_verify

    def verify_then_fault(**kwargs):
        verdict = verify(**kwargs)
        if fault == "outage":
            stub_control_set(outage=True)
        else:
            stub_control_set(lose_answers=1)
        return verdict

    seen_while_waiting: list[str] = []

    def back_up(seconds: float) -> None:  # the retry's backoff: the core comes back meanwhile
        seen_while_waiting.append(BusinessCase.objects.get(pk=case.id).status)
        stub_control_set(outage=False)

    monkeypatch.setattr(corebank_client, "corebank_pin_verify", verify_then_fault)
    virtual_time.during_sleep = back_up
    identity_passed(call)
    case = to_confirmation(call, start_and_fill(call, "transfer", transfer_params("700.00")))
    case = finished(authorise(call, case, ZHANG.pin))

    assert seen_while_waiting == ["waiting_retry"]
    waiting = [p for p in teller_states(sent, call, case) if p["status"] == "waiting_retry"]
    assert "not answering" in waiting[0]["error"]["en"]
    assert "核心系统" in waiting[0]["error"]["zh"]
    told = [m["text"] for m in customer_messages(sent, call, "case.progress", case)]
    assert any("queued" in t["en"] for t in told)
    assert case.status == CaseStatus.DONE, case.error
    assert Submission.objects.get(business_case_id=case.id).attempts == 2
    assert (
        LedgerEntry.objects.filter(
            kind=LedgerKind.TRANSFER_OUT, account__number=ZHANG_CURRENT
        ).count()
        == 1
    )


def test_a_reconnecting_customer_gets_again_what_the_business_waits_for(call, sent):
    identity_passed(call)
    teller = call.teller
    reading = start_and_fill(call, "details_update", {"email": "a@b.cn"})
    services.case_agreement_send(call_id=call.id, case_id=reading.id, teller=teller)
    keypad = to_confirmation(
        call, start_and_fill(call, "details_update", {"address": "上海市黄浦区1号"})
    )
    first = keypad.challenge_id
    sent.clear()
    services.case_customer_prompt(call_id=call.id)
    assert [m["case_id"] for m in customer_messages(sent, call, "case.agreement")] == [
        str(reading.id)
    ]
    (again,) = customer_messages(sent, call, "case.pin_request")
    assert again["case_id"] == str(keypad.id)
    assert again["challenge_id"] != first  # a new request: the old one may be spent
    # The teller can send a fresh keypad too; the old entry is then refused.
    resent = services.case_pin_resend(call_id=call.id, case_id=keypad.id, teller=teller)
    with pytest.raises(StateConflict, match="old request"):
        services.case_authorise(
            call_id=call.id,
            case_id=keypad.id,
            challenge_id=again["challenge_id"],
            ciphertext_b64=pin_encrypt(
                public_key_spki_b64=again["public_key_spki_b64"],
                nonce=again["nonce"],
                pin=ZHANG.pin,
            ),
        )
    assert resent["challenge_id"] != again["challenge_id"]
    assert finished(authorise(call, keypad, ZHANG.pin)).status == CaseStatus.DONE


def test_every_published_change_has_a_higher_revision_so_screens_never_step_back(call, sent):
    """The "submitted" card is sent by the server that took the PIN, the "done" card by the
    worker with the core bank's answer: they may arrive in either order. Each carries a higher
    revision than the change before it, and the pages keep the highest they have seen."""
    identity_passed(call)
    case = start_and_fill(call, "transfer", transfer_params())
    to_confirmation(call, case)
    authorise(call, case, ZHANG.pin)
    case = finished(case)
    assert case.status == CaseStatus.DONE
    states = teller_states(sent, call, case)
    revisions = [state["revision"] for state in states]
    assert revisions == sorted(set(revisions)), revisions  # strictly increasing
    by_status = {state["status"]: state["revision"] for state in states}
    assert by_status["done"] > by_status["submitted"] > by_status["confirmed"]
    assert states[-1]["revision"] == case.revision
    progress = customer_messages(sent, call, "case.progress", case)
    assert [p["revision"] for p in progress] == sorted(p["revision"] for p in progress)
    assert progress[-1]["status"] == "done"
