"""Our client of the core bank against the stub running as its own process.

Submissions are sent as on the embedded profile: the Celery task eagerly, on a thread of its
own; a test waits for the result (it listens to ``events.SubmissionChanged`` in the workflow's
stead). The backoff between retries goes through the outside kit's clock, a virtual one here
(``virtual_time``: waits are recorded, and a test may change the stub's faults meanwhile, as time
passing would), so the retry horizon and the core's circuit breaker are tested without waiting.
The worker path (production) is driven with a fake bound task. What a teller and a customer
would notice: business errors in words on the submission, the teller told when the core is
down, exactly one effect whatever happens on the way, and the PIN nowhere in clear.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.exceptions import Retry
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from tests.fixtures import starts_processes
from videobank import events
from videobank.outside.breaker import breaker_states
from videobank.outside.testing import ResultWaiter, WorkerDeliveries, run_series_eagerly
from workflows.corebank import conf, services, tasks
from workflows.corebank.errors import CoreBankError, CoreBankUnavailable, IdempotencyConflict
from workflows.corebank.models import Submission
from workflows.corebank.selectors import submission_get, submission_panel
from workflows.corebank.services import (
    corebank_customer_lookup,
    corebank_pin_challenge,
    corebank_pin_verify,
    submission_create,
    submission_retry,
)
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.models import (
    Account,
    Customer,
    LedgerEntry,
    OperationRequest,
    PinChallenge,
    SmsMessage,
)
from workflows.corebank_stub.operations import AUTHORISATION
from workflows.corebank_stub.seed import BY_NAME, corebank_seed
from workflows.corebank_stub.services import stub_control_set, stub_last_otp
from workflows.corebank_stub.testing import CoreBankStubServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ZHANG, CHEN, LIU = BY_NAME["张伟"], BY_NAME["陈静"], BY_NAME["刘洋"]
ZHANG_CURRENT = ZHANG.accounts[0].number
LIU_CURRENT = LIU.accounts[0].number
TRANSFER = {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
            "amount": "100.00"}  # fmt: skip
STUB_ENV = {
    "COREBANK_STUB_LATENCY_MS": "0",
    "COREBANK_STUB_JITTER_MS": "0",
    "COREBANK_STUB_PIN_ITERATIONS": "1000",
}

# --- the result hook: how a test waits for a submission --------------------------------------
results = ResultWaiter(settled=lambda status: status in {"done", "rejected", "unanswered"})


def result_hook(*, submission_id) -> None:
    results.notify(submission_id, Submission.objects.get(pk=submission_id).status)


def broken_hook(*, submission_id) -> None:
    raise RuntimeError("the teller console is gone")


@pytest.fixture
def result_hook_listening():
    """The test's result hook hears every submission's change, instead of the workflow."""
    with events.listening(events.SubmissionChanged, result_hook):
        yield


def wait_settled(submission: Submission, timeout: float = 30.0) -> Submission:
    assert results.wait(submission.id, timeout), f"submission {submission.id} did not settle"
    return submission_get(submission_id=submission.id)


def seen(submission: Submission) -> list[str]:
    return results.seen(submission.id)


# --- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
@starts_processes
def stub(django_db_setup):
    from tests.livestack import stack_env

    server = CoreBankStubServer(env={**stack_env(), **STUB_ENV}).start()
    yield server
    server.stop()


@pytest.fixture
def bank(transactional_db, stub, settings, monkeypatch, virtual_time, result_hook_listening):
    settings.COREBANK_URL = stub.base_url
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    run_series_eagerly(  # the worker path: test_worker_path_requeues_with_backoff_then_gives_up
        settings,
        monkeypatch,
        tasks.submission_send,
        timeout_s=2.0,
        max_retries=3,
        backoff_s=0.5,
        RETRY_MAX_BACKOFF_S=60.0,
    )
    corebank_seed()
    _authorisations.clear()
    yield SimpleNamespace(
        stub=stub, sleeps=virtual_time.sleeps, time=virtual_time, settings=settings
    )
    assert tasks.submission_threads_join(30), "a submission thread did not end"


def authorise(customer=ZHANG, operation: str = "transfer") -> str:
    """The customer's PIN (or code) for ``operation``, entered on a challenge made for it through
    the client, as the business's keypad step does: the challenge id ("" when the core asks
    none)."""
    method = AUTHORISATION.get(operation, "")
    if not method:
        return ""
    challenge = corebank_pin_challenge(
        customer_ref=customer.customer_ref, purpose=operation, method=method
    )
    secret = customer.pin if method == "pin" else stub_last_otp(customer.customer_ref)
    verdict = corebank_pin_verify(
        challenge_id=challenge["challenge_id"], ciphertext_b64=pin_entry(challenge, secret)
    )
    assert verdict["ok"], verdict
    return challenge["challenge_id"]


# A business case submits with the authorisation its customer gave, and a repeat of it (same
# idempotency key) with that same one.
_authorisations: dict[str, str] = {}


def submit(*, key: str | None = None, operation="transfer", customer=ZHANG, params=None, **kw):
    key = key or f"case-{uuid.uuid4().hex[:12]}"
    if "authorised_by" not in kw:
        if key not in _authorisations:
            _authorisations[key] = authorise(customer, operation)
        kw["authorised_by"] = _authorisations[key]
    return submission_create(
        business_case_id=kw.pop("business_case_id", uuid.UUID(int=1)),
        operation=operation,
        customer_ref=customer.customer_ref,
        params=TRANSFER if params is None else params,
        idempotency_key=key,
        **kw,
    )


def balance(number: str) -> Decimal:
    return Account.objects.get(number=number).balance


def transfers_carried_out() -> int:
    """Money movements in the core's ledger made by operations (a transfer is two entries)."""
    return LedgerEntry.objects.filter(request__isnull=False).count() // 2


# --- lookups -----------------------------------------------------------------------------------
def test_lookup_finds_the_customer_or_none(bank):
    zhang = corebank_customer_lookup(id_number="110101 19900307 1233")  # as typed, with spaces
    assert zhang["customer_ref"] == ZHANG.customer_ref
    assert {a["status"] for a in zhang["accounts"]} == {"active", "dormant"}
    assert zhang["limits"]["per_transaction"] == "50000.00"
    assert corebank_customer_lookup(id_number="110105200001010016") is None
    with pytest.raises(CoreBankError) as bad:
        corebank_customer_lookup(id_number="110101199003071234")
    assert (bad.value.code, bad.value.detail_zh) == (
        "bad_id_number",
        "身份证号码应为 18 位且校验位正确。",
    )


def test_lookup_during_an_outage_says_so_in_words(bank):
    bank.stub.control(outage=True)
    with pytest.raises(CoreBankUnavailable) as down:
        corebank_customer_lookup(id_number=ZHANG.id_number)
    assert "not answering" in down.value.detail
    assert "核心系统暂时没有响应" in down.value.detail_zh
    assert down.value.reason == "HTTP 503 outage"
    bank.settings.COREBANK_URL = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(CoreBankUnavailable) as refused:
        corebank_customer_lookup(id_number=ZHANG.id_number)
    assert refused.value.reason == "connection refused"
    bank.settings.COREBANK_URL = bank.stub.url + "/wrong/v1"  # a 404 page, not the core's JSON
    with pytest.raises(CoreBankUnavailable) as wrong:
        corebank_customer_lookup(id_number=ZHANG.id_number)
    assert "not the core's JSON" in wrong.value.reason


def test_a_core_that_keeps_failing_is_not_asked_until_the_cool_down(bank):
    """After COREBANK_BREAKER_FAILURES missed answers in a row this process stops asking the
    core: a lookup fails at once with the same words, until a trial call after the cool-down."""
    bank.stub.control(outage=True)
    for _ in range(5):
        with pytest.raises(CoreBankUnavailable) as down:
            corebank_customer_lookup(id_number=ZHANG.id_number)
        assert down.value.reason == "HTTP 503 outage"
    bank.stub.control(outage=False)  # back, but this process does not know it yet
    with pytest.raises(CoreBankUnavailable) as down:
        corebank_customer_lookup(id_number=ZHANG.id_number)
    assert down.value.reason == (
        "not asked: the circuit is open after 5 failures in a row (last: HTTP 503 outage); "
        "a trial call in 30 s"
    )
    assert "not answering" in down.value.detail
    assert "核心系统暂时没有响应" in down.value.detail_zh
    bank.time.advance(30)
    zhang = corebank_customer_lookup(id_number=ZHANG.id_number)  # the trial call: an answer
    assert zhang["customer_ref"] == ZHANG.customer_ref
    assert corebank_customer_lookup(id_number=ZHANG.id_number) is not None  # closed again


# --- submissions -------------------------------------------------------------------------------
def test_a_submission_is_sent_once_and_its_result_kept(bank):
    submission = submit(key="case-0001-submit")
    assert submission.status == "queued"
    submission = wait_settled(submission)
    assert (submission.status, submission.attempts, submission.replayed) == ("done", 1, False)
    assert submission.result["balance_after"] == "51900.00"
    assert seen(submission) == ["sending", "done"]
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert transfers_carried_out() == 1
    assert bank.sleeps == []
    assert submission_panel(submission)["error"] is None


def test_the_same_submission_twice_changes_the_ledger_once(bank):
    """A double click, a repeated message: the same key again is the same submission."""
    first = submit(key="case-0002-submit")
    again = submit(key="case-0002-submit")
    assert again.id == first.id
    wait_settled(first)
    later = submit(key="case-0002-submit")  # after it was done: still the same, not re-sent
    assert (later.id, later.status) == (first.id, "done")
    assert tasks.submission_threads_join(10)
    assert Submission.objects.count() == 1
    assert transfers_carried_out() == 1
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert OperationRequest.objects.get().replays == 0  # the core was asked once
    with pytest.raises(IdempotencyConflict) as conflict:
        submit(key="case-0002-submit", params={**TRANSFER, "amount": "999.00"})
    assert "already used for a different business" in conflict.value.detail
    assert "已用于另一笔业务" in conflict.value.detail_zh


@pytest.mark.process
def test_the_same_submission_from_two_processes_at_once_changes_the_ledger_once(bank):
    """Two server processes get the same customer message at the same moment and both submit
    (and send) it: one submission, one effect. Each process runs the sending itself (the task's
    function), whatever the profile's task queue."""
    script = f"""
import json, os, sys, uuid
import django
django.setup()
from workflows.corebank import services, tasks
services._dispatch = lambda submission_id: None  # this process sends it itself, below
print("ready", flush=True)
sys.stdin.readline()
submission = services.submission_create(
    business_case_id=uuid.UUID(int=7), operation="transfer", customer_ref="{ZHANG.customer_ref}",
    params=json.loads(sys.argv[1]), idempotency_key="case-race-submit",
    authorised_by=sys.argv[2],
)
status = tasks.submission_send_series(submission_id=submission.id)
print(json.dumps([str(submission.id), status]), flush=True)
"""
    from tests.livestack import stack_env

    env = {
        **stack_env(),
        "COREBANK_URL": bank.stub.base_url,
        "DJANGO_SETTINGS_MODULE": "videobank.settings",
    }
    authorised_by = authorise()  # the customer's one authorisation for the case
    bank.stub.control(latency_ms=300)  # both are in flight together
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(TRANSFER), authorised_by],
            cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]  # fmt: skip
    try:
        for process in processes:
            line = process.stdout.readline().strip()
            assert line == "ready", process.stderr.read()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert answers[0][0] == answers[1][0]  # the same submission
    assert "done" in {status for _, status in answers}
    submission = Submission.objects.get()
    assert (submission.status, submission.idempotency_key) == ("done", "case-race-submit")
    assert transfers_carried_out() == 1
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert balance(LIU_CURRENT) == Decimal("10100.00")


@pytest.mark.parametrize(
    ("customer", "params", "code", "en", "zh"),
    [
        (CHEN, {"from_account": CHEN.accounts[0].number, "to_account": LIU_CURRENT,
                "payee_name": "刘洋", "amount": "900.00"},
         "insufficient_funds", "Insufficient funds", "余额不足"),
        (ZHANG, {**TRANSFER, "amount": "60000.00"}, "over_limit", "per-transfer limit",
         "单笔转账限额"),
        (ZHANG, {**TRANSFER, "payee_name": "刘阳"}, "payee_mismatch", "payee name", "户名"),
    ],
)  # fmt: skip
def test_business_errors_reach_the_submission_in_words(bank, customer, params, code, en, zh):
    submission = wait_settled(submit(customer=customer, params=params))
    assert (submission.status, submission.error_code) == ("rejected", code)
    assert en in submission.error_en
    assert zh in submission.error_zh
    assert submission.result is None
    assert seen(submission) == ["sending", "rejected"]
    assert transfers_carried_out() == 0
    panel = submission_panel(submission)
    assert (panel["status"], panel["error"]["code"]) == ("rejected", code)


def test_card_loss_already_reported_comes_back_in_words(bank):
    li = corebank_customer_lookup(id_number=BY_NAME["李娜"].id_number)
    lost = next(c for c in li["cards"] if c["status"] == "lost")
    submission = wait_settled(
        submit(
            operation="card_loss_report",
            customer=BY_NAME["李娜"],
            params={"card_token": lost["token"]},
        )
    )
    assert (submission.status, submission.error_code) == ("rejected", "card_already_lost")
    assert "already reported lost" in submission.error_en
    assert "已挂失" in submission.error_zh


def test_outage_during_submission_waits_then_one_effect_after_recovery(bank):
    """The core commits the transfer, the answer is lost, then the core goes down; the teller is
    told it waits; the core comes back during the backoff; the retry gets the core's recorded
    answer: exactly one effect."""
    bank.stub.control(lose_answers=1)

    def meanwhile(seconds: float) -> None:
        if len(bank.sleeps) == 1:
            assert submission_get(submission_id=submission.id).status == "waiting_retry"
            bank.stub.control(outage=True)  # down while we wait for the second attempt
        elif len(bank.sleeps) == 2:
            bank.stub.control(outage=False)  # back while we wait for the third

    bank.time.during_sleep = meanwhile
    submission = submit(key="case-0003-submit")
    submission = wait_settled(submission)
    assert (submission.status, submission.attempts, submission.replayed) == ("done", 3, True)
    assert bank.sleeps == [0.5, 1.0]
    assert seen(submission) == ["sending", "waiting_retry", "done"]
    assert (submission.error_code, submission.error_en) == ("", "")
    assert transfers_carried_out() == 1
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert OperationRequest.objects.get().replays == 1


def test_with_in_call_retries_a_lost_answer_is_recovered_within_the_attempt(bank):
    """COREBANK_HTTP_RETRIES=1: the core carries out the transfer and its answer is lost (504);
    the client sends the same operation again at once with the same idempotency key and gets
    the core's recorded answer — the teller never sees "waiting", and one transfer is made."""
    bank.settings.COREBANK_HTTP_RETRIES = 1
    bank.stub.control(lose_answers=1)
    submission = wait_settled(submit(key="case-0005-submit"))
    assert (submission.status, submission.attempts, submission.replayed) == ("done", 1, True)
    assert seen(submission) == ["sending", "done"]
    assert len(bank.sleeps) == 1  # the in-call back-off, not a series retry
    assert transfers_carried_out() == 1
    assert OperationRequest.objects.get().replays == 1


def test_while_waiting_the_teller_sees_words_and_the_next_attempt(bank):
    authorised_by = authorise()  # the customer authorised it before the core went down
    bank.stub.control(outage=True)
    waiting = threading.Event()
    go_on = threading.Event()

    def meanwhile(seconds: float) -> None:
        waiting.set()
        assert go_on.wait(10)

    bank.time.during_sleep = meanwhile
    submission = submit(authorised_by=authorised_by)
    assert waiting.wait(10)
    panel = submission_panel(submission_get(submission_id=submission.id))
    assert panel["status"] == "waiting_retry"
    assert panel["error"]["code"] == "corebank_unavailable"
    assert "queued and will be sent again" in panel["error"]["en"]
    assert "将自动重新提交" in panel["error"]["zh"]
    assert panel["next_attempt_at"] is not None
    bank.stub.control(outage=False)
    go_on.set()
    assert wait_settled(submission).status == "done"


def test_no_answer_for_the_whole_horizon_then_a_safe_retry(bank):
    """Seven attempts over the horizon; after five missed answers in a row the core's circuit
    opens and the last two are not even sent (the teller's words are the same); a minute later
    the teller retries and the trial call goes through."""
    bank.settings.COREBANK_MAX_RETRIES = 6
    bank.settings.COREBANK_RETRY_MAX_BACKOFF_S = 4.0
    assert conf.retry_horizon_s() == 0.5 + 1 + 2 + 4 + 4 + 4
    authorised_by = authorise()
    bank.stub.control(outage=True)
    before = bank.stub.log().count("core-bank stub: transfer received")
    submission = wait_settled(submit(key="case-0004-submit", authorised_by=authorised_by))
    assert bank.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert (submission.status, submission.attempts) == ("unanswered", 7)
    assert submission.error_code == "corebank_unanswered"
    assert "cannot be carried out twice" in submission.error_en
    assert "不会重复办理" in submission.error_zh
    assert submission.last_error.startswith("not asked: the circuit is open after 5 failures")
    assert "(last: HTTP 503 outage)" in submission.last_error
    assert breaker_states()["core-bank"]["state"] == "open"
    assert seen(submission) == ["sending", "waiting_retry", "unanswered"]
    assert not OperationRequest.objects.exists()
    arrived = "core-bank stub: transfer received"  # the stub logs each arrival
    assert bank.stub.wait_for_log(arrived, count=before + 5)
    assert bank.stub.log().count(arrived) - before == 5  # the core was asked five times

    bank.stub.control(outage=False)
    bank.time.advance(60)  # the teller comes back a minute later: past the cool-down
    retried = submission_retry(submission_id=submission.id)
    assert retried.status == "waiting_retry"
    submission = wait_settled(retried)
    assert (submission.status, submission.attempts) == ("done", 8)
    assert transfers_carried_out() == 1
    with pytest.raises(CoreBankError) as not_again:
        submission_retry(submission_id=submission.id)
    assert not_again.value.code == "not_retryable"


def test_worker_path_requeues_with_backoff_then_gives_up(bank, monkeypatch):
    """Production: one attempt per task run, re-queued with a countdown (no worker sleeps)."""
    monkeypatch.setattr(services, "_dispatch", lambda submission_id: None)  # we play the worker
    authorised_by = authorise()
    bank.stub.control(outage=True)
    submission = submit(authorised_by=authorised_by)
    worker = WorkerDeliveries(tasks.submission_send)
    for retries in range(3):
        with pytest.raises(Retry):
            worker.deliver(submission.id, retries=retries)
        assert submission_get(submission_id=submission.id).next_attempt_at is not None
    assert worker.countdowns == [0.5, 1.0, 2.0]
    assert worker.deliver(submission.id, retries=3) == "unanswered"
    assert submission_get(submission_id=submission.id).attempts == 4
    # A late duplicate delivery after recovery sends it (same key: safe) and settles it; a
    # finished submission is never sent again.
    bank.stub.control(outage=False)
    assert worker.deliver(submission.id, retries=0) == "done"
    assert worker.deliver(submission.id, retries=0) == "done"
    assert transfers_carried_out() == 1
    assert OperationRequest.objects.get().replays == 0


def test_an_attempt_in_flight_is_not_doubled_and_a_dead_one_is_taken_over(bank, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(services, "_dispatch", lambda submission_id: None)
        submission = submit()
    Submission.objects.filter(pk=submission.pk).update(
        status="sending", attempt_started_at=timezone.now()
    )
    assert services.submission_attempt(submission_id=submission.id).status == "sending"
    assert not OperationRequest.objects.exists()  # the other sender is at it
    assert services.submissions_resume() == []
    # That sender's process died an hour ago: resume sends it.
    hour_ago = timezone.now() - timedelta(hours=1)
    Submission.objects.filter(pk=submission.pk).update(
        attempt_started_at=hour_ago, updated_at=hour_ago
    )
    assert services.submissions_resume() == [submission.id]
    assert wait_settled(submission).status == "done"
    assert transfers_carried_out() == 1


def test_a_broker_down_at_submission_leaves_it_queued_for_resume(bank, monkeypatch, caplog):
    def broker_down(*, submission_id):
        raise ConnectionError("redis is not answering")

    with monkeypatch.context() as patched:
        patched.setattr(tasks, "submission_enqueue", broker_down)
        submission = submit()  # the caller is not failed after its commit
    assert submission_get(submission_id=submission.id).status == "queued"
    assert "redis is not answering" in caplog.text
    minute_ago = timezone.now() - timedelta(minutes=1)
    Submission.objects.filter(pk=submission.pk).update(updated_at=minute_ago)
    assert services.submissions_resume() == [submission.id]
    assert wait_settled(submission).status == "done"
    assert transfers_carried_out() == 1


# --- PIN and one-time codes --------------------------------------------------------------------
def pin_entry(challenge: dict, pin: str) -> str:
    return pin_encrypt(
        public_key_spki_b64=challenge["public_key_spki_b64"], nonce=challenge["nonce"], pin=pin
    )


def test_pin_right_wrong_locked_and_replayed(bank):
    challenge = corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="transfer")
    assert challenge["method"] == "pin"
    right = pin_entry(challenge, ZHANG.pin)
    verdict = corebank_pin_verify(challenge_id=challenge["challenge_id"], ciphertext_b64=right)
    assert (verdict["ok"], verdict["code"], verdict["attempts_left"]) == (True, "ok", 3)
    replay = corebank_pin_verify(challenge_id=challenge["challenge_id"], ciphertext_b64=right)
    assert (replay["ok"], replay["code"]) == (False, "replayed")
    assert "already used" in replay["en"]

    challenge = corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="transfer")
    expected = [(2, "wrong_pin", "2 tries left", "还可尝试 2 次"),
                (1, "wrong_pin", "1 try left", "还可尝试 1 次"),
                (0, "pin_locked", "now locked", "已被锁定")]  # fmt: skip
    for left, code, en, zh in expected:
        verdict = corebank_pin_verify(
            challenge_id=challenge["challenge_id"], ciphertext_b64=pin_entry(challenge, "580417")
        )
        assert (verdict["ok"], verdict["code"], verdict["attempts_left"]) == (False, code, left)
        assert en in verdict["en"]
        assert zh in verdict["zh"]
    assert verdict["locked"] is True
    # Locked: even the right PIN is refused, and no new PIN request is given.
    verdict = corebank_pin_verify(
        challenge_id=challenge["challenge_id"], ciphertext_b64=pin_entry(challenge, ZHANG.pin)
    )
    assert (verdict["ok"], verdict["code"], verdict["locked"]) == (False, "pin_locked", True)
    with pytest.raises(CoreBankError) as locked:
        corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="transfer")
    assert locked.value.code == "pin_locked"
    assert "密码重置" in locked.value.detail_zh


def test_one_time_code_and_password_reset_unlock_with_a_new_pin(bank):
    zhang = Customer.objects.get(customer_ref=ZHANG.customer_ref)
    Customer.objects.filter(pk=zhang.pk).update(pin_locked=True, pin_failures=3)
    otp = corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="password_reset")
    assert (otp["method"], otp["mobile_masked"]) == ("otp", "138****8001")
    code = stub_last_otp(ZHANG.customer_ref)
    assert code is not None
    assert len(code) == 6
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    verdict = corebank_pin_verify(
        challenge_id=otp["challenge_id"], ciphertext_b64=pin_entry(otp, wrong)
    )
    assert (verdict["code"], verdict["attempts_left"]) == ("wrong_otp", 2)
    assert verdict["locked"] is False  # the locked PIN does not stop its own reset
    assert "验证码错误" in verdict["zh"]
    verdict = corebank_pin_verify(
        challenge_id=otp["challenge_id"], ciphertext_b64=pin_entry(otp, code)
    )
    assert (verdict["ok"], verdict["method"]) == (True, "otp")

    new = corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="new_pin")
    assert new["method"] == "new_pin"
    weak = corebank_pin_verify(
        challenge_id=new["challenge_id"], ciphertext_b64=pin_entry(new, "900307")
    )
    assert (weak["ok"], weak["code"]) == (False, "weak_pin")  # the birth date
    assert "生日" in weak["zh"]
    verdict = corebank_pin_verify(
        challenge_id=new["challenge_id"], ciphertext_b64=pin_entry(new, "592046")
    )
    assert verdict["ok"] is True
    submission = wait_settled(
        submit(
            operation="password_reset",
            params={"new_pin_challenge_id": new["challenge_id"]},
            authorised_by=otp["challenge_id"],
        )
    )
    assert (submission.status, submission.result) == (
        "done",
        {"pin_status": "set", "unlocked": True},
    )
    check = corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="transfer")
    assert (
        corebank_pin_verify(
            challenge_id=check["challenge_id"], ciphertext_b64=pin_entry(check, ZHANG.pin)
        )["code"]
        == "wrong_pin"
    )
    assert corebank_pin_verify(
        challenge_id=check["challenge_id"], ciphertext_b64=pin_entry(check, "592046")
    )["ok"]
    # The code was sent through the (simulated) SMS gateway: nowhere in the database in clear.
    rows = [str(v) for m in (SmsMessage, PinChallenge) for v in m.objects.values_list()]
    assert not any(code in row for row in rows)


def test_too_many_wrong_codes_need_a_new_code(bank):
    otp = corebank_pin_challenge(customer_ref=CHEN.customer_ref, purpose="password_reset")
    code = stub_last_otp(CHEN.customer_ref)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    codes = [
        corebank_pin_verify(challenge_id=otp["challenge_id"], ciphertext_b64=pin_entry(otp, wrong))[
            "code"
        ]
        for _ in range(4)
    ]
    assert codes == ["wrong_otp", "wrong_otp", "otp_exhausted", "otp_exhausted"]
    late = corebank_pin_verify(
        challenge_id=otp["challenge_id"], ciphertext_b64=pin_entry(otp, code)
    )
    assert (late["ok"], late["code"]) == (False, "otp_exhausted")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"challenge_id": "short", "ciphertext_b64": "A" * 512}, "bad_request"),
        ({"challenge_id": "abcdefgh1234", "ciphertext_b64": "not base64!" * 10}, "bad_request"),
        ({"challenge_id": "abcdefgh1234", "ciphertext_b64": "A" * 2000}, "bad_request"),
    ],
)
def test_malformed_pin_entries_are_refused_before_the_core(kwargs, code):
    with pytest.raises(CoreBankError) as refused:
        corebank_pin_verify(**kwargs)
    assert refused.value.code == code
    assert refused.value.detail_zh != refused.value.detail


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"operation": "teleport"}, "bad_request"),
        ({"key": "short"}, "bad_request"),
        ({"params": {"amount": {1, 2}}}, "bad_request"),
        ({"authorised_by": "bad id!"}, "bad_request"),
    ],
)
def test_unusable_submissions_are_refused_before_anything_is_sent(db, kwargs, code):
    with pytest.raises(CoreBankError) as refused:
        submit(**{"authorised_by": "", **kwargs})
    assert refused.value.code == code
    assert refused.value.detail_zh
    assert not Submission.objects.exists()


# --- robustness and privacy --------------------------------------------------------------------
def test_a_broken_result_hook_does_not_break_the_submission(bank, caplog):
    with events.listening(events.SubmissionChanged, broken_hook):
        submission = submit()
        assert tasks.submission_threads_join(30)
    assert submission_get(submission_id=submission.id).status == "done"
    assert transfers_carried_out() == 1  # not sent again because the hook failed
    assert "listener workflows.tests.test_corebank.broken_hook failed" in caplog.text
    assert "the teller console is gone" in caplog.text


def test_the_pin_is_nowhere_in_clear_and_numbers_are_masked_in_logs(bank, caplog):
    caplog.set_level(logging.INFO)
    corebank_customer_lookup(id_number=ZHANG.id_number)
    challenge = corebank_pin_challenge(customer_ref=ZHANG.customer_ref, purpose="transfer")
    entry = pin_entry(challenge, ZHANG.pin)
    corebank_pin_verify(challenge_id=challenge["challenge_id"], ciphertext_b64=entry)
    submission = wait_settled(submit(authorised_by=challenge["challenge_id"]))
    assert submission.status == "done"
    assert "110101********1233" in caplog.text
    for secret in (ZHANG.pin, ZHANG.id_number, ZHANG_CURRENT, LIU_CURRENT, entry[:40]):
        assert secret not in caplog.text
    # Our rows hold neither the PIN nor its ciphertext; the core keeps only salted hashes.
    ours = [str(v) for v in Submission.objects.values_list()]
    assert not any(ZHANG.pin in row or entry[:40] in row for row in ours)
    core = [str(v) for v in Customer.objects.values_list("pin_hash")] + [
        str(v) for v in PinChallenge.objects.values_list()
    ]
    assert not any(ZHANG.pin in row for row in core)
    assert Customer.objects.get(customer_ref=ZHANG.customer_ref).pin_hash.startswith(
        "pbkdf2_sha256$"
    )


# --- the embedded profile: the stub mounted in our own server ----------------------------------
@pytest.mark.urls("tests.stub_urls")  # the stub mounted as on the embedded profile, any profile
def test_embedded_mount_serves_the_client(
    transactional_db, live_server, settings, monkeypatch, result_hook_listening
):
    """On the embedded profile the core's stub is mounted at /ext/core-bank/ in the same server;
    the submission is sent from a thread of this process, the stub answers on another."""
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)
    monkeypatch.setitem(tasks.submission_send_task.app.conf, "task_always_eager", True)
    settings.COREBANK_URL = f"{live_server.url}/ext/core-bank/v1"
    settings.COREBANK_STUB_LATENCY_MS = 0
    settings.COREBANK_STUB_JITTER_MS = 0
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    corebank_seed()
    stub_control_set(latency_ms=0, jitter_ms=0)
    assert corebank_customer_lookup(id_number=ZHANG.id_number)["customer_ref"] == ZHANG.customer_ref
    submission = wait_settled(submit())
    assert submission.status == "done"
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert tasks.submission_threads_join(30)


def test_retry_horizon_defaults_keep_trying_for_about_ten_minutes(settings, monkeypatch):
    for name in (
        "COREBANK_MAX_RETRIES",
        "COREBANK_RETRY_BACKOFF_S",
        "COREBANK_RETRY_MAX_BACKOFF_S",
    ):
        if hasattr(settings, name):
            delattr(settings, name)
        monkeypatch.delenv(name, raising=False)
    assert conf.max_retries() == 15
    assert conf.retry_horizon_s() == 603.0
