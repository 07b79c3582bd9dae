"""The core-banking stub as the outside service it stands for: its own process, over HTTP.

One ``manage.py corebank_stub`` process serves the module (proving the production mode); the
customers, ledger and fault controls live in the test database it shares. What a caller would
notice: each business rule answers in words (English and Chinese) and changes nothing; each
success changes exactly what it says; an idempotency key is carried out once, even when two
processes send it at the same moment or the answer is lost on the way; PINs arrive encrypted and
a ciphertext works once.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db.models import Sum
from django.utils import timezone

from tests.fixtures import starts_processes
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.models import (
    Account,
    Card,
    Customer,
    LedgerEntry,
    OperationRequest,
    PinChallenge,
)
from workflows.corebank_stub.numbers import luhn_ok, uscc_valid
from workflows.corebank_stub.operations import AUTHORISATION
from workflows.corebank_stub.seed import (
    BY_NAME,
    CUSTOMERS,
    DEMO_USCC,
    corebank_customer_register,
    corebank_seed,
)
from workflows.corebank_stub.testing import CoreBankStubServer

ZHANG, LI, CHEN, LIU = (BY_NAME[n] for n in ("张伟", "李娜", "陈静", "刘洋"))
ZHANG_CURRENT, ZHANG_DORMANT = (a.number for a in ZHANG.accounts)
LI_CURRENT = LI.accounts[0].number
CHEN_CURRENT = CHEN.accounts[0].number
LIU_CURRENT = LIU.accounts[0].number
STUB_ENV = {
    "COREBANK_STUB_LATENCY_MS": "0",
    "COREBANK_STUB_JITTER_MS": "0",
    "COREBANK_STUB_PIN_ITERATIONS": "1000",  # hashes made by the stub (new PINs, codes)
}


@pytest.fixture(scope="module")
@starts_processes
def stub(django_db_setup):
    from tests.livestack import stack_env

    server = CoreBankStubServer(env={**stack_env(), **STUB_ENV}).start()
    print(f"corebank_stub ready in {server.startup_s:.2f} s")  # noqa: T201 - a figure
    yield server
    server.stop()


@pytest.fixture
def bank(transactional_db, stub, settings):
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000  # hashes made here (the seeded PINs)
    corebank_seed()
    _authorisations.clear()
    return stub


API_KEY = object()  # http()'s default: the stub's API key


def http(
    stub,
    method: str,
    path: str,
    body=None,
    *,
    key: str | None | object = API_KEY,
    admin_key: str | None = None,
):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if key is API_KEY:
        key = stub.api_key()
    if key is not None:
        headers["X-Api-Key"] = str(key)
    if admin_key is not None:
        headers["X-Admin-Key"] = admin_key
    request = urllib.request.Request(  # noqa: S310 - the test's own http:// URL
        f"{stub.base_url}{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"{}")
        except ValueError:
            return exc.code, {"html": raw[:100].decode(errors="replace")}


def dev_otp(stub, customer) -> str:
    """The last code the stub "sent" to the customer's phone (its developer endpoint)."""
    status, body = http(
        stub,
        "GET",
        f"/_dev/otp?customer_ref={customer.customer_ref}",
        key=None,
        admin_key=stub.admin_key(),
    )
    assert status == 200, body
    return body["code"]


def authorise(stub, customer, operation: str) -> str:
    """What the customer does on their keypad before the core carries out ``operation``: a
    challenge for it by the method the core asks (operations.AUTHORISATION), answered with their
    PIN or the code sent to their mobile. The challenge id ("" when none is needed)."""
    method = AUTHORISATION.get(operation, "")
    if not method or isinstance(customer, str):
        return ""
    ch = challenge(stub, customer, purpose=operation, method=method)
    secret = customer.pin if method == "pin" else dev_otp(stub, customer)
    verdict = verify(stub, ch, encrypt(ch, secret))
    assert verdict["ok"], verdict
    return ch["challenge_id"]


# The authorisation sent with each idempotency key: a resend carries the same one, as the bank's
# client resends the submission it stored.
_authorisations: dict[str, str] = {}
_AUTO = object()


def op(
    stub,
    operation: str,
    customer,
    params: object,  # what the bank sends (a dict; tests send wrong kinds too)
    *,
    key: str = "key-00000001",
    authorised_by: str | object = _AUTO,
):
    """The bank's client sending an operation, authorised by the customer unless told
    otherwise (``authorised_by=""``: none, or a given challenge id)."""
    if authorised_by is _AUTO:
        if key not in _authorisations:
            _authorisations[key] = authorise(stub, customer, operation)
        authorised_by = _authorisations[key]
    ref = customer if isinstance(customer, str) else customer.customer_ref
    body = {"idempotency_key": key, "customer_ref": ref, "params": params}
    if authorised_by:
        body["authorised_by"] = authorised_by
    return http(stub, "POST", f"/operations/{operation}", body)


def card(customer, status: str = "active") -> Card:
    return Card.objects.filter(customer__customer_ref=customer.customer_ref, status=status).first()


def balance(number: str) -> Decimal:
    return Account.objects.get(number=number).balance


def ledger_adds_up() -> bool:
    for account in Account.objects.all():
        total = account.entries.aggregate(total=Sum("amount"))["total"] or Decimal("0")
        if total != account.balance:
            return False
    return True


# --- the process and its data ------------------------------------------------------------------
def test_process_serves_only_the_stub_and_wants_its_key(stub):
    assert f"core-bank stub listening on {stub.base_url}/" in stub.log()
    assert http(stub, "GET", "/health", key=None) == (
        200,
        {"service": "core-bank-stub", "api": "v1"},
    )
    lookup = {"id_number": ZHANG.id_number}
    status, body = http(stub, "POST", "/customers/lookup", lookup, key=None)
    assert (status, body["error"], body["detail"]) == (
        401,
        "unauthorized",
        "missing or wrong X-Api-Key",
    )
    assert "accounts" not in body
    for key in ("wrong", stub.admin_key()):  # the admin key is no API key
        assert http(stub, "POST", "/customers/lookup", lookup, key=key)[0] == 401
    for path in ("/operations/transfer", "/pin/challenges", "/pin/verify"):
        assert http(stub, "POST", path, {}, key=None)[0] == 401
    status, body = http(stub, "GET", "/_control", admin_key="wrong")
    assert (status, body["error"]) == (403, "forbidden")
    with pytest.raises(urllib.error.HTTPError) as not_here:
        urllib.request.urlopen(f"{stub.url}/console/login/", timeout=5)  # noqa: S310
    assert not_here.value.code == 404


def test_seed_matches_the_national_registry_and_numbers_are_well_formed(db, settings):
    from kyc.national_stub.seed import CITIZENS

    citizens = {c.name: c.id_number for c in CITIZENS}
    for spec in (ZHANG, LI, CHEN):
        assert citizens[spec.name] == spec.id_number
    for spec in CUSTOMERS:
        for account in spec.accounts:
            assert luhn_ok(account.number)
            assert all(luhn_ok(number) for number, _ in account.cards)
    assert uscc_valid(DEMO_USCC)
    settings.COREBANK_STUB_PIN_ITERATIONS = 1000
    corebank_seed()
    corebank_seed()  # seeding again brings the same customers back, nothing doubled
    assert Customer.objects.count() == len(CUSTOMERS)
    assert ledger_adds_up()


def test_lookup_shows_accounts_cards_mobile_and_limits(bank):
    status, zhang = http(bank, "POST", "/customers/lookup", {"id_number": ZHANG.id_number})
    assert status == 200
    assert (zhang["customer_ref"], zhang["name"]) == (ZHANG.customer_ref, "张伟")
    assert zhang["mobile_masked"] == "138****8001"
    # Only what a business form needs: not the ID number, the address, nor the PIN's state.
    assert set(zhang) == {
        "customer_ref", "name", "mobile_masked", "status", "risk_level", "accounts", "cards",
        "limits",
    }  # fmt: skip
    accounts = {a["number"]: a for a in zhang["accounts"]}
    assert accounts[ZHANG_CURRENT]["balance"] == "52000.00"
    assert accounts[ZHANG_CURRENT]["number_masked"] == "6230 **** **** 1018"
    assert accounts[ZHANG_DORMANT]["status"] == "dormant"
    assert zhang["limits"] == {
        "per_transaction": "50000.00",
        "daily": "200000.00",
        "used_today": "0.00",
    }
    assert [c["number_masked"] for c in zhang["cards"]] == ["6222 **** **** 1015"]
    assert "6222021000000001015" not in json.dumps(zhang)  # cards only by token and mask
    _, li = http(bank, "POST", "/customers/lookup", {"id_number": LI.id_number})
    assert sorted(c["status"] for c in li["cards"]) == ["active", "lost"]

    status, body = http(bank, "POST", "/customers/lookup", {"id_number": "110105200001010016"})
    assert (status, body["error"]) == (404, "customer_not_found")
    status, body = http(bank, "POST", "/customers/lookup", {"id_number": "110101199003071234"})
    assert (status, body["field"]) == (400, "id_number")


# --- business rules: each a final "no" in words, changing nothing ------------------------------
REJECTIONS = [
    ("card_loss_report", LI, lambda: {"card_token": card(LI, "lost").token},
     "card_already_lost", "already reported lost", "已挂失"),
    ("card_loss_report", ZHANG, lambda: {"card_token": card(LI).token},
     "card_not_found", "no such card", "没有这张卡"),
    ("card_loss_cancel", ZHANG, lambda: {"card_token": card(ZHANG).token},
     "card_not_lost", "not reported lost", "未挂失"),
    ("dormant_activate", ZHANG, lambda: {"account_number": ZHANG_CURRENT},
     "account_not_dormant", "is not dormant", "不是久悬户"),
    ("dormant_activate", ZHANG, lambda: {"account_number": LIU_CURRENT},
     "account_not_yours", "does not belong", "不属于该客户"),
    ("dormant_activate", ZHANG, lambda: {"account_number": "6230021000000009999"},
     "account_not_found", "6230 **** **** 9999", "不存在"),
    ("mobile_change", ZHANG, lambda: {"new_mobile": ZHANG.mobile},
     "same_mobile", "already the reserved mobile", "已是预留手机号码"),
    ("mobile_change", ZHANG, lambda: {"new_mobile": "12345678901"},
     "invalid_mobile", "11 digits", "11 位数字"),
    ("details_update", ZHANG, lambda: {"address": ZHANG.address},
     "nothing_to_change", "same as those on file", "无需变更"),
    ("details_update", ZHANG, lambda: {"email": "not-an-address"},
     "invalid_params", "email", "电子邮箱格式不正确"),
    ("details_update", ZHANG, lambda: {"name": "张三"},
     "invalid_params", "not a parameter", "不是本业务的参数"),
    ("time_deposit_open", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "amount": "1000", "term_months": 7},
     "invalid_term", "3, 6, 12, 24, 36, 60 months", "定期存款期限"),
    ("time_deposit_open", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "amount": "10.00", "term_months": 12},
     "amount_too_small", "starts at 50.00 yuan", "起存金额"),
    ("time_deposit_open", CHEN,
     lambda: {"from_account": CHEN_CURRENT, "amount": "1000", "term_months": 3},
     "insufficient_funds", "balance of 6230 **** **** 3014 is 800.00 yuan", "余额不足"),
    ("time_deposit_open", ZHANG,
     lambda: {"from_account": ZHANG_DORMANT, "amount": "1000", "term_months": 3},
     "account_dormant", "activate it first", "久悬户"),
    ("transfer", CHEN,
     lambda: {"from_account": CHEN_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "900.00"},
     "insufficient_funds", "less than 900.00 yuan", "余额不足"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "50000.01"},
     "over_limit", "per-transfer limit of 50,000.00 yuan", "单笔转账限额"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘样",
              "amount": "10"},
     "payee_mismatch", "payee name does not match", "户名与账户"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": "6230021000000009999",
              "payee_name": "刘洋", "amount": "10"},
     "payee_not_found", "no account 6230 **** **** 9999", "本行没有账户"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": ZHANG_CURRENT, "payee_name": "张伟",
              "amount": "10"},
     "same_account", "is the paying account", "相同"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_DORMANT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "10"},
     "account_dormant", "dormant", "久悬户"),
    ("transfer", LIU,
     lambda: {"from_account": LIU_CURRENT, "to_account": ZHANG_DORMANT, "payee_name": "张伟",
              "amount": "10"},
     "payee_account_unavailable", "cannot receive money", "不能收款"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "1.234"},
     "invalid_params", "two decimals", "两位小数"),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": -5},
     "invalid_params", "more than zero", "大于零"),
    ("risk_assessment_save", ZHANG, lambda: {"risk_level": "C9"},
     "invalid_params", "C1-C5", "C1-C5"),
    ("corporate_account_open", ZHANG,
     lambda: {"company_name": "福州示例科技有限公司", "uscc": DEMO_USCC[:-1] + "4",
              "legal_person_name": "张伟", "legal_person_id_number": ZHANG.id_number,
              "intent_verified": True},
     "invalid_uscc", "check character", "统一社会信用代码无效"),
    ("corporate_account_open", ZHANG,
     lambda: {"company_name": "福州示例科技有限公司", "uscc": DEMO_USCC,
              "legal_person_name": "李娜", "legal_person_id_number": LI.id_number,
              "intent_verified": True},
     "legal_person_mismatch", "legal person must be the customer", "法定代表人须为"),
    ("corporate_account_open", ZHANG,
     lambda: {"company_name": "福州示例科技有限公司", "uscc": DEMO_USCC,
              "legal_person_name": "张伟", "legal_person_id_number": ZHANG.id_number,
              "intent_verified": False},
     "intent_not_verified", "intent", "意愿核实"),
    ("password_reset", ZHANG, lambda: {"new_pin_challenge_id": "no-such-challenge"},
     "new_pin_missing", "new PIN has not been entered", "尚未输入新密码"),
    ("card_loss_report", "CIF999999999", lambda: {"card_token": "card_x"},
     "customer_not_found", "no such customer", "没有该客户"),
]  # fmt: skip


def test_business_errors_come_back_in_words_and_change_nothing(bank):
    """Every rule of every operation, against one seeded bank (none of them changes anything,
    so one database serves them all: on Postgres a flush per case would cost half a second)."""
    before = {a.number: a.balance for a in Account.objects.all()}
    cards_before = dict(Card.objects.values_list("token", "status"))
    wrong = []
    for n, (operation, customer, params, code, en, zh) in enumerate(REJECTIONS):
        case = f"{operation}/{code}"
        sent = params()
        status, answer = op(bank, operation, customer, sent, key=f"reject-{n:04d}")
        got = (status, answer.get("status"), answer.get("error"), answer.get("replayed"))
        if got != (422, "rejected", code, False):
            wrong.append(f"{case}: {got} {answer}")
            continue
        if en not in answer["en"] or zh not in answer["zh"]:
            wrong.append(f"{case}: words {answer['en']!r} / {answer['zh']!r}")
        # The "no" is the key's final answer: asked again, the same words, replayed.
        status, again = op(bank, operation, customer, sent, key=f"reject-{n:04d}")
        if (status, again.get("replayed"), again.get("en")) != (422, True, answer["en"]):
            wrong.append(f"{case}: asked again {status} {again}")
    assert wrong == []
    assert {a.number: a.balance for a in Account.objects.all()} == before
    assert dict(Card.objects.values_list("token", "status")) == cards_before
    assert not LedgerEntry.objects.filter(request__isnull=False).exists()
    assert OperationRequest.objects.filter(status="rejected").count() == len(REJECTIONS)


def test_a_business_error_stays_the_answer_of_its_key(bank):
    params = {"from_account": CHEN_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "900.00"}  # fmt: skip
    assert op(bank, "transfer", CHEN, params, key="chen-0001")[1]["error"] == "insufficient_funds"
    Account.objects.filter(number=CHEN_CURRENT).update(balance=Decimal("5000.00"))
    status, answer = op(bank, "transfer", CHEN, params, key="chen-0001")
    assert (status, answer["error"], answer["replayed"]) == (422, "insufficient_funds", True)
    status, answer = op(bank, "transfer", CHEN, params, key="chen-0002")  # a new request
    assert (status, answer["status"]) == (200, "done")


def test_daily_limit_counts_what_was_transferred_today(bank):
    params = {"from_account": LI_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "20000.00"}  # fmt: skip
    for n in (1, 2):
        assert op(bank, "transfer", LI, params, key=f"li-day-{n:04d}")[0] == 200
    status, answer = op(bank, "transfer", LI, params, key="li-day-0003")
    assert (status, answer["error"]) == (422, "over_daily_limit")
    assert "10,000.00 of 50,000.00 yuan" in answer["en"]
    assert "剩余 10,000.00 元" in answer["zh"]
    # Yesterday's transfers do not count today.
    yesterday = timezone.now() - dt.timedelta(days=1)
    LedgerEntry.objects.filter(kind="transfer_out").update(created_at=yesterday)
    assert op(bank, "transfer", LI, params, key="li-day-0004")[0] == 200
    _, li = http(bank, "POST", "/customers/lookup", {"id_number": LI.id_number})
    assert li["limits"]["used_today"] == "20000.00"


# --- what each operation does --------------------------------------------------------------------
def _check_loss_report(result, sent):
    assert Card.objects.get(token=sent["card_token"]).status == "lost"
    assert result["card"] == "6222 **** **** 1015"


def _check_loss_cancel(result, sent):
    assert Card.objects.get(token=sent["card_token"]).status == "active"
    assert result["card_status"] == "active"


def _check_dormant(result, sent):
    assert Account.objects.get(number=ZHANG_DORMANT).status == "active"
    assert (result["account"], result["balance"]) == ("6230 **** **** 1026", "3000.00")


def _check_mobile(result, sent):
    assert Customer.objects.get(customer_ref=ZHANG.customer_ref).mobile == "13912345678"
    assert result == {"old_mobile": "138****8001", "new_mobile": "139****5678"}


def _check_details(result, sent):
    zhang = Customer.objects.get(customer_ref=ZHANG.customer_ref)
    assert (zhang.address, zhang.email) == (sent["address"], "zw@example.cn")
    assert result["changed"] == ["address", "email"]


def _check_time_deposit(result, sent):
    deposit = Account.objects.get(number=result["deposit_account"])
    assert (deposit.kind, deposit.balance, deposit.rate_percent) == (
        "time_deposit",
        Decimal("10000.00"),
        Decimal("1.45"),
    )
    assert deposit.maturity_date.year == timezone.localdate().year + 1
    assert result["interest_at_maturity"] == "145.00"
    assert balance(ZHANG_CURRENT) == Decimal("42000.00")
    assert LedgerEntry.objects.filter(request__isnull=False).count() == 2


def _check_transfer(result, sent):
    assert balance(ZHANG_CURRENT) == Decimal("50765.44")
    assert balance(LIU_CURRENT) == Decimal("11234.56")
    out, into = LedgerEntry.objects.filter(request__isnull=False).order_by("id")
    assert (out.amount, out.counterparty) == (Decimal("-1234.56"), "6230 **** **** 4012")
    assert (into.amount, into.counterparty) == (Decimal("1234.56"), "6230 **** **** 1018")
    assert result["to_account"] == "6230 **** **** 4012"
    assert result["transferred_today"] == "1234.56"


def _check_risk(result, sent):
    assert Customer.objects.get(customer_ref=ZHANG.customer_ref).risk_level == "C3"
    assert result["risk_label"] == {"en": "balanced", "zh": "平衡型"}


def _check_corporate(result, sent):
    account = Account.objects.get(number=result["account_number"])
    assert (account.kind, account.holder_name, account.uscc) == (
        "corporate",
        "福州示例科技有限公司",
        DEMO_USCC,
    )
    assert luhn_ok(account.number)


CORPORATE = {
    "company_name": "福州示例科技有限公司",
    "uscc": DEMO_USCC,
    "legal_person_name": "张伟",
    "legal_person_id_number": ZHANG.id_number,
    "intent_verified": True,
}
EFFECTS = [
    ("card_loss_report", ZHANG, lambda: {"card_token": card(ZHANG).token}, _check_loss_report),
    ("card_loss_cancel", LI, lambda: {"card_token": card(LI, "lost").token}, _check_loss_cancel),
    ("dormant_activate", ZHANG, lambda: {"account_number": ZHANG_DORMANT}, _check_dormant),
    ("mobile_change", ZHANG, lambda: {"new_mobile": "13912345678"}, _check_mobile),
    ("details_update", ZHANG,
     lambda: {"address": "北京市海淀区中关村大街2号", "email": "zw@example.cn"}, _check_details),
    ("time_deposit_open", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "amount": "10000", "term_months": 12},
     _check_time_deposit),
    ("transfer", ZHANG,
     lambda: {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
              "amount": "1234.56", "memo": "房租"},
     _check_transfer),
    ("risk_assessment_save", ZHANG, lambda: {"risk_level": "C3", "score": 55}, _check_risk),
    ("corporate_account_open", ZHANG, lambda: dict(CORPORATE), _check_corporate),
]  # fmt: skip


@pytest.mark.parametrize(
    ("operation", "customer", "params", "check"), EFFECTS, ids=[e[0] for e in EFFECTS]
)
def test_each_operation_does_what_it_says_once(bank, operation, customer, params, check):
    sent = params()
    status, answer = op(bank, operation, customer, sent)
    assert (status, answer["status"], answer["replayed"]) == (200, "done", False), answer
    check(answer["result"], sent)
    entries = LedgerEntry.objects.count()
    assert ledger_adds_up()
    # Sent again with its key: the recorded result, no second effect.
    status, again = op(bank, operation, customer, sent)
    assert (status, again["replayed"], again["result"]) == (200, True, answer["result"])
    assert LedgerEntry.objects.count() == entries
    assert OperationRequest.objects.get().replays == 1


def test_a_company_opens_one_basic_account(bank):
    params = dict(CORPORATE)
    assert op(bank, "corporate_account_open", ZHANG, params, key="corp-0001")[0] == 200
    status, answer = op(bank, "corporate_account_open", ZHANG, params, key="corp-0002")
    assert (status, answer["error"]) == (422, "uscc_has_account")
    assert "已在本行开立" in answer["zh"]


# --- idempotency ---------------------------------------------------------------------------------
TRANSFER = {"from_account": ZHANG_CURRENT, "to_account": LIU_CURRENT, "payee_name": "刘洋",
            "amount": "100.00"}  # fmt: skip


def test_a_key_reused_for_another_request_is_refused(bank):
    assert op(bank, "transfer", ZHANG, TRANSFER, key="reuse-0001")[0] == 200
    status, body = op(bank, "transfer", ZHANG, {**TRANSFER, "amount": "200.00"}, key="reuse-0001")
    assert (status, body["error"]) == (409, "idempotency_key_reused")
    status, body = op(bank, "mobile_change", ZHANG, {"new_mobile": "13912345678"}, key="reuse-0001")
    assert status == 409
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")


def test_a_lost_answer_then_a_retry_is_one_effect(bank):
    bank.control(lose_answers=1)
    status, body = op(bank, "transfer", ZHANG, TRANSFER, key="lost-0001")
    assert (status, body["error"]) == (504, "answer_lost")
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")  # it happened all the same
    status, answer = op(bank, "transfer", ZHANG, TRANSFER, key="lost-0001")
    assert (status, answer["status"], answer["replayed"]) == (200, "done", True)
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert LedgerEntry.objects.filter(request__isnull=False).count() == 2
    assert bank.control()["lose_answers"] == 0


SEND_AT_ONCE = r"""
import json, sys, urllib.error, urllib.request
url, key, body = sys.argv[1:4]
print("ready", flush=True)
sys.stdin.readline()
request = urllib.request.Request(
    url, data=body.encode(), method="POST",
    headers={"Content-Type": "application/json", "X-Api-Key": key},
)
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(json.dumps([response.status, json.loads(response.read())]), flush=True)
except urllib.error.HTTPError as exc:
    print(json.dumps([exc.code, json.loads(exc.read())]), flush=True)
"""


@pytest.mark.process
def test_the_same_key_from_two_processes_at_once_is_one_effect(bank):
    """Two callers (a retry racing the original, two servers) send one transfer at the same
    moment; the stub holds both for the same latency so they reach its database together."""
    bank.control(latency_ms=600, jitter_ms=0)
    mark = len(bank.log())
    body = json.dumps(
        {
            "idempotency_key": "race-0001",
            "customer_ref": ZHANG.customer_ref,
            "params": TRANSFER,
            "authorised_by": authorise(bank, ZHANG, "transfer"),
        }
    )
    senders = [
        subprocess.Popen(
            [sys.executable, "-c", SEND_AT_ONCE, f"{bank.base_url}/operations/transfer",
             bank.api_key(), body],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "no_proxy": "*"},
        )
        for _ in range(2)
    ]  # fmt: skip
    try:
        for sender in senders:
            assert sender.stdout.readline().strip() == "ready"
        for sender in senders:
            sender.stdin.write("go\n")
            sender.stdin.flush()
        answers = [json.loads(sender.communicate(timeout=30)[0]) for sender in senders]
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
    assert sorted(a[0] for a in answers) == [200, 200]
    assert sorted(a[1]["replayed"] for a in answers) == [False, True]
    assert answers[0][1]["result"] == answers[1][1]["result"]
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert balance(LIU_CURRENT) == Decimal("10100.00")
    assert LedgerEntry.objects.filter(request__isnull=False).count() == 2
    assert OperationRequest.objects.get().replays == 1
    # They were in the stub together: both arrived before either was answered.
    assert bank.wait_for_log("race-0001 replayed")
    lines = bank.log()[mark:].splitlines()
    arrivals = [i for i, line in enumerate(lines) if "transfer received" in line]
    answered = next(i for i, line in enumerate(lines) if "transfer race-0001 for" in line)
    assert len(arrivals) == 2
    assert max(arrivals) < answered


def test_two_requests_past_the_replay_check_at_once_are_one_effect(bank, monkeypatch):
    """The race itself, made certain: two requests with one key both find no recorded answer,
    then both try to carry it out (two threads, two database connections). The second must
    wait for the first and give its answer, not carry it out again or fail."""
    from django.db import connections

    from workflows.corebank_stub import services

    checked = threading.Barrier(2, timeout=10)
    first_check = threading.local()
    replay = services.RECORDS.replay

    def replay_then_meet(key, fingerprint):
        recorded = replay(key, fingerprint)
        if recorded is None and not getattr(first_check, "done", False):
            first_check.done = True
            checked.wait()  # both have found nothing: now both go for it
        return recorded

    monkeypatch.setattr(services.RECORDS, "replay", replay_then_meet)
    call = services.operation_parse(
        "transfer",
        {
            "idempotency_key": "race-0002",
            "customer_ref": ZHANG.customer_ref,
            "params": TRANSFER,
            "authorised_by": authorise(bank, ZHANG, "transfer"),
        },
    )
    answers, errors = [], []

    def send():
        try:
            answers.append(services.operation_execute(call=call))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(a["replayed"] for a in answers) == [False, True]
    assert answers[0]["result"] == answers[1]["result"]
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")
    assert LedgerEntry.objects.filter(request__isnull=False).count() == 2


# --- faults --------------------------------------------------------------------------------------
def test_outage_and_injected_errors_are_no_answers(bank):
    _authorisations["down-0001"] = authorise(bank, ZHANG, "transfer")  # before the outage
    assert bank.control(outage=True)["outage"] is True
    status, body = op(bank, "transfer", ZHANG, TRANSFER, key="down-0001")
    assert (status, body["error"]) == (503, "outage")
    assert http(bank, "POST", "/customers/lookup", {"id_number": ZHANG.id_number})[0] == 503
    bank.control(outage=False, error_rate=1.0)
    assert op(bank, "transfer", ZHANG, TRANSFER, key="down-0001")[0] == 500
    assert not OperationRequest.objects.exists()  # not answers: nothing recorded, no effect
    assert balance(ZHANG_CURRENT) == Decimal("52000.00")
    bank.control(reset=True)
    assert bank.control() == {
        "outage": False, "latency_ms": 0, "jitter_ms": 0, "error_rate": 0.0, "lose_answers": 0,
    }  # fmt: skip
    assert op(bank, "transfer", ZHANG, TRANSFER, key="down-0001")[1]["replayed"] is False


CONTROL_NONSENSE = [
    ({"latency_ms": -1}, "latency_ms"),
    ({"error_rate": 2}, "error_rate"),
    ({"outage": "yes"}, "outage"),
    ({"lose_answers": 1.5}, "lose_answers"),
    ({"volume": 11}, None),
]
MALFORMED = [
    ("/operations/transfer", b"not json", 400, "bad_request"),
    ("/operations/transfer", {"customer_ref": "CIF000000001"}, 400, "bad_request"),
    ("/operations/teleport", {"idempotency_key": "k-000001", "customer_ref": "CIF000000001"},
     404, "unknown_operation"),
    ("/operations/transfer", {"idempotency_key": "k-000001", "customer_ref": "cif 1"}, 400,
     "bad_request"),
    ("/operations/transfer", b"{" + b" " * 70_000 + b"}", 413, "too_large"),
    ("/pin/verify", {"challenge_id": "abcdefgh", "ciphertext_b64": "***"}, 400, "bad_request"),
    ("/pin/challenges", {"customer_ref": "CIF000000001", "purpose": "Transfer!"}, 400,
     "bad_request"),
]  # fmt: skip


def test_control_and_api_refuse_nonsense_with_the_field(bank):
    for fields, field in CONTROL_NONSENSE:
        status, body = http(bank, "POST", "/_control", fields, admin_key=bank.admin_key())
        assert (status, body.get("field")) == (400, field), fields
    assert bank.control()["latency_ms"] == 0  # nothing was changed
    for path, body, status, error in MALFORMED:
        got, answer = http(bank, "POST", path, body)
        assert (got, answer["error"]) == (status, error), (path, str(body)[:60])
    assert not OperationRequest.objects.exists()


# --- PIN entries over the wire -------------------------------------------------------------------
def challenge(stub, customer=ZHANG, purpose="transfer", **extra) -> dict:
    status, body = http(
        stub, "POST", "/pin/challenges",
        {"customer_ref": customer.customer_ref, "purpose": purpose, **extra},
    )  # fmt: skip
    assert status == 201, body
    return body


def verify(stub, ch: dict, ciphertext: str) -> dict:
    status, body = http(
        stub,
        "POST",
        "/pin/verify",
        {"challenge_id": ch["challenge_id"], "ciphertext_b64": ciphertext},
    )
    assert status == 200, body
    return body


def encrypt(ch: dict, pin: str, nonce: str | None = None) -> str:
    return pin_encrypt(
        public_key_spki_b64=ch["public_key_spki_b64"], nonce=nonce or ch["nonce"], pin=pin
    )


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda ch, other: encrypt(ch, ZHANG.pin, nonce=other["nonce"]), "replayed"),
        (lambda ch, other: encrypt(other, ZHANG.pin), "replayed"),  # another challenge's entry
        (lambda ch, other: base64.b64encode(os.urandom(384)).decode(), "undecryptable"),
        (lambda ch, other: encrypt(ch, "12ab56"), "bad_format"),
        (lambda ch, other: encrypt(ch, "1357901"), "bad_format"),
    ],
    ids=["other-nonce", "other-challenge", "garbage", "letters", "seven-digits"],
)
def test_entries_not_made_for_this_challenge_are_refused_without_counting(bank, make, code):
    ch, other = challenge(bank), challenge(bank)
    verdict = verify(bank, ch, make(ch, other))
    assert (verdict["ok"], verdict["code"], verdict["attempts_left"]) == (False, code, 3)
    assert verdict["en"]
    assert verdict["zh"] != verdict["en"]
    assert Customer.objects.get(customer_ref=ZHANG.customer_ref).pin_failures == 0
    assert verify(bank, ch, encrypt(ch, ZHANG.pin))["ok"] is True  # the challenge still works


def test_a_spent_expired_or_unknown_challenge_is_refused(bank):
    ch = challenge(bank)
    right = encrypt(ch, ZHANG.pin)
    assert verify(bank, ch, right)["code"] == "ok"
    assert verify(bank, ch, right)["code"] == "replayed"  # the same ciphertext again
    assert verify(bank, ch, encrypt(ch, ZHANG.pin))["code"] == "replayed"  # a spent challenge
    late = challenge(bank)
    PinChallenge.objects.filter(challenge_id=late["challenge_id"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert verify(bank, late, encrypt(late, ZHANG.pin))["code"] == "expired"
    status, body = http(
        bank, "POST", "/pin/verify", {"challenge_id": "nosuchchallenge", "ciphertext_b64": right}
    )
    assert (status, body["code"], body["ok"]) == (200, "unknown_challenge", False)
    # A challenge stops listening after ten entries of any kind (a flood of garbage).
    flooded = challenge(bank)
    codes = [
        verify(bank, flooded, base64.b64encode(os.urandom(384)).decode())["code"] for _ in range(11)
    ]
    assert codes == ["undecryptable"] * 10 + ["too_many_entries"]
    assert verify(bank, flooded, encrypt(flooded, ZHANG.pin))["ok"] is False


def test_an_authorisation_is_spent_by_one_operation(bank):
    ch = challenge(bank)
    params = {**TRANSFER}
    status, answer = op(
        bank, "transfer", ZHANG, params, key="auth-0001", authorised_by=ch["challenge_id"]
    )
    assert (status, answer["error"]) == (422, "not_authorised")  # not passed yet
    assert verify(bank, ch, encrypt(ch, ZHANG.pin))["ok"]
    status, answer = op(
        bank, "transfer", ZHANG, params, key="auth-0002", authorised_by=ch["challenge_id"]
    )
    assert (status, answer["status"]) == (200, "done")
    status, answer = op(
        bank, "transfer", ZHANG, params, key="auth-0003", authorised_by=ch["challenge_id"]
    )
    assert (status, answer["error"]) == (422, "not_authorised")
    assert "already used" in answer["en"]
    assert balance(ZHANG_CURRENT) == Decimal("51900.00")


# --- no authorisation, no operation: refused as the core refuses it, nothing changed ------------
def core_state() -> tuple:
    """Everything an operation can change: balances and statuses, cards, the customers' details
    and PINs, the ledger."""
    return (
        sorted(Account.objects.values_list("number", "balance", "status", "kind")),
        sorted(Card.objects.values_list("token", "status")),
        sorted(
            Customer.objects.values_list(
                "customer_ref",
                "mobile",
                "address",
                "email",
                "occupation",
                "risk_level",
                "pin_hash",
                "pin_failures",
                "pin_locked",
            )
        ),  # fmt: skip
        LedgerEntry.objects.count(),
    )


def _new_pin_entered(stub, customer=ZHANG, pin="592046") -> dict:
    """A password reset's new PIN, entered on its challenge (what the operation then sets)."""
    ch = challenge(stub, customer, purpose="new_pin")
    assert verify(stub, ch, encrypt(ch, pin))["ok"]
    return {"new_pin_challenge_id": ch["challenge_id"]}


AUTHORISED = [
    (operation, customer, params)
    for operation, customer, params, _ in EFFECTS
    if AUTHORISATION[operation]
] + [("password_reset", ZHANG, _new_pin_entered)]


@pytest.mark.parametrize(
    ("operation", "customer", "params"), AUTHORISED, ids=[a[0] for a in AUTHORISED]
)
def test_an_operation_without_the_customers_authorisation_is_refused(
    bank, operation, customer, params
):
    """Every operation the core asks a PIN or one-time code for (workflows/catalogue.py declares
    the same) is refused without it, or with one not made for it, in the core's words; the core
    changes nothing. With it, the same request goes through (so the refusals were real)."""
    sent = params(bank) if params is _new_pin_entered else params()
    method = AUTHORISATION[operation]
    means = {"pin": ("PIN", "交易密码"), "otp": ("one-time code", "短信验证码")}[method]
    other_operation = "mobile_change" if operation != "mobile_change" else "transfer"
    wrong_pin = challenge(bank, customer, purpose=operation, method="pin")
    assert verify(bank, wrong_pin, encrypt(wrong_pin, "580417"))["code"] == "wrong_pin"
    someone_else = LI if customer is not LI else ZHANG
    attempts = {
        "none": "",
        "not passed": wrong_pin["challenge_id"],
        "made for another operation": authorise(bank, customer, other_operation),
        "of another customer": authorise(bank, someone_else, operation),
        "unknown": "nosuchchallenge1",
    }
    if method == "otp":  # a PIN does not stand for the code sent to the reserved mobile
        pin = challenge(bank, customer, purpose=operation, method="pin")
        assert verify(bank, pin, encrypt(pin, customer.pin))["ok"]
        attempts["a PIN where the code is asked"] = pin["challenge_id"]
    before = core_state()
    for n, (what, authorised_by) in enumerate(attempts.items()):
        status, answer = op(
            bank, operation, customer, sent, key=f"unauth-{n:04d}", authorised_by=authorised_by
        )
        assert (status, answer["status"], answer["error"]) == (422, "rejected", "not_authorised"), (
            what,
            answer,
        )
        assert "authoris" in answer["en"]
        assert "授权" in answer["zh"]
        if what == "none":
            assert means[0] in answer["en"], answer["en"]
            assert means[1] in answer["zh"], answer["zh"]
        assert core_state() == before, what

    status, answer = op(bank, operation, customer, sent, key="authorised-0001")
    assert (status, answer["status"]) == (200, "done"), answer
    assert core_state() != before


def test_an_operation_the_core_asks_no_authorisation_for_goes_through_without(bank):
    assert AUTHORISATION["risk_assessment_save"] == ""
    status, answer = op(bank, "risk_assessment_save", ZHANG, {"risk_level": "C3"}, authorised_by="")
    assert (status, answer["status"]) == (200, "done")


def test_the_stub_asks_what_the_catalogue_declares():
    """The core's demands and the businesses' steps agree: a business asks the customer for
    exactly what the core will want for its operation."""
    from workflows.catalogue import CATALOGUE

    declared = {b.operation: b.authorisation for b in CATALOGUE.values()}
    assert declared == AUTHORISATION


def test_dev_endpoint_reads_the_last_code_sent(bank):
    admin = {"key": None, "admin_key": bank.admin_key()}
    status, body = http(bank, "GET", f"/_dev/otp?customer_ref={ZHANG.customer_ref}", **admin)
    assert (status, body["error"]) == (404, "no_code")
    ch = challenge(bank, purpose="password_reset")
    assert (ch["method"], ch["mobile_masked"]) == ("otp", "138****8001")
    status, body = http(bank, "GET", f"/_dev/otp?customer_ref={ZHANG.customer_ref}", **admin)
    assert status == 200
    assert verify(bank, ch, encrypt(ch, body["code"]))["ok"] is True


def test_dev_endpoints_need_the_stubs_admin_key_not_the_api_key(bank):
    """The fault switches and the simulated phone are the stub's developer endpoints: a caller
    of the API (its key), or anybody without a key, gets 403 in words and changes nothing."""
    challenge(bank, purpose="password_reset")  # a code is waiting on the simulated phone
    endpoints = [
        ("GET", "/_control", None),
        ("POST", "/_control", {"outage": True}),
        ("POST", "/_control", {"lose_answers": 5}),
        ("POST", "/_control", {"reset": True}),
        ("GET", f"/_dev/otp?customer_ref={ZHANG.customer_ref}", None),
    ]
    callers = {
        "the API key": {},
        "the API key as admin key": {"admin_key": bank.api_key()},
        "no key": {"key": None},
        "a wrong admin key": {"key": None, "admin_key": "not-the-admin-key"},
    }
    bank.control(latency_ms=7)
    for method, path, body in endpoints:
        for who, keys in callers.items():
            status, answer = http(bank, method, path, body, **keys)
            assert (status, answer.get("error")) == (403, "forbidden"), (path, who, answer)
            assert "admin key" in answer["en"]
            assert "管理密钥" in answer["zh"]
            assert "code" not in answer
    assert bank.control() == {
        "outage": False, "latency_ms": 7, "jitter_ms": 0, "error_rate": 0.0, "lose_answers": 0,
    }  # fmt: skip
    status, _ = http(
        bank, "GET", f"/_dev/otp?customer_ref={ZHANG.customer_ref}", admin_key=bank.admin_key()
    )
    assert status == 200  # the admin key opens it: the refusals above were the key's doing


def test_a_generated_person_becomes_a_customer_with_a_pin(bank):
    from kyc.idcard.generator import person_random

    person = person_random(random.Random(5))
    made = corebank_customer_register(id_number=person.id_number, name=person.name, pin="258036")
    status, found = http(bank, "POST", "/customers/lookup", {"id_number": person.id_number})
    assert (status, found["customer_ref"], found["name"]) == (
        200,
        made["customer_ref"],
        person.name,
    )
    assert found["accounts"][0]["balance"] == "20000.00"
    assert found["cards"][0]["token"] == made["card_token"]
    ch = challenge(bank, SimpleNamespace(customer_ref=made["customer_ref"]))
    assert verify(bank, ch, encrypt(ch, "258036"))["ok"] is True


def test_stub_log_masks_numbers_and_never_holds_a_pin(bank):
    ch = challenge(bank)
    verify(bank, ch, encrypt(ch, "580417"))
    verify(bank, ch, encrypt(ch, ZHANG.pin))
    op(bank, "transfer", ZHANG, TRANSFER, key="log-0001")
    http(bank, "POST", "/customers/lookup", {"id_number": ZHANG.id_number})
    assert bank.wait_for_log("transfer log-0001 for")
    text = bank.log()
    assert "110101********1233" in text
    for secret in (ZHANG.id_number, ZHANG_CURRENT, LIU_CURRENT, ZHANG.pin, "580417", ZHANG.mobile):
        assert secret not in text
