"""Each business of the catalogue: one whole run through the core-banking stub over HTTP (the
effect checked at the core), and its rules and errors — those the form catches before the
customer is asked, and those only the core can tell, which reach both screens in words."""

from __future__ import annotations

import random

import pytest

from kyc.models import Level
from workflows import services
from workflows.corebank.services import corebank_customer_lookup, corebank_pin_challenge
from workflows.corebank.services import corebank_pin_verify as pin_verify
from workflows.corebank.testing import pin_encrypt
from workflows.corebank_stub.models import LedgerEntry, LedgerKind
from workflows.corebank_stub.seed import BY_NAME, DEMO_USCC
from workflows.corebank_stub.services import stub_last_otp
from workflows.errors import BusinessRule
from workflows.models import CaseStatus

from . import test_workflows as wf
from .test_workflows import (
    ZHANG,
    ZHANG_CURRENT,
    authorise,
    customer_messages,
    finished,
    identity_passed,
    start_and_fill,
    teller_states,
    to_confirmation,
    transfer_params,
)

# The workflow tests' fixtures (pytest finds them by name in this module).
call, sent, wf_settings, stub_key_row = wf.call, wf.sent, wf.wf_settings, wf.stub_key_row

pytestmark = [pytest.mark.django_db(transaction=True)]

LI = BY_NAME["李娜"]
CHEN = BY_NAME["陈静"]


def lookup(person) -> dict:
    return corebank_customer_lookup(id_number=person.id_number)


def card_token(person, status: str) -> str:
    return next(c["token"] for c in lookup(person)["cards"] if c["status"] == status)


def run(call, case, secret: str):
    """Agreement, confirmation, PIN (or code), and the core's answer."""
    assert case.status == CaseStatus.FILLED, (case.form_errors, case.error)
    case = to_confirmation(call, case)
    if secret:
        case = authorise(call, case, secret)
    return finished(case)


def assert_told_both(sent, call, case, code: str, en: str, zh: str) -> None:
    """A refusal in words on the teller's card and on the customer's screen."""
    assert case.error["code"] == code
    assert en in case.error["en"]
    assert zh in case.error["zh"]
    assert teller_states(sent, call, case)[-1]["error"]["code"] == code
    said = customer_messages(sent, call, "case.progress", case)[-1]["text"]
    assert en in said["en"]
    assert zh in said["zh"]


def form_error(case, field: str, en: str, zh: str) -> None:
    assert case.status == CaseStatus.DRAFT
    assert en in case.form_errors[field]["en"], case.form_errors
    assert zh in case.form_errors[field]["zh"]


# --- password reset -----------------------------------------------------------------------------


def test_password_reset_by_one_time_code_then_a_new_pin(call, sent):
    identity_passed(call)
    case = to_confirmation(call, start_and_fill(call, "password_reset", {"reason": "forgotten"}))
    pin_request = customer_messages(sent, call, "case.pin_request", case)[-1]
    assert pin_request["method"] == "otp"
    assert "138****8001" in pin_request["text"]["en"]
    # A wrong code: the tries left, the same code still good.
    code = stub_last_otp(ZHANG.customer_ref)
    case = authorise(call, case, "000000" if code != "000000" else "111111")
    assert case.status == CaseStatus.CONFIRMED
    assert case.error["code"] == "wrong_otp"
    assert "2 tries left" in case.error["en"]
    case = authorise(call, case, code)
    assert case.status == CaseStatus.AUTHORISED
    new_pin_request = customer_messages(sent, call, "case.pin_request", case)[-1]
    assert new_pin_request["method"] == "new_pin"
    # A PIN anyone could guess is refused in words; the customer chooses again.
    case = authorise(call, case, "123456")
    assert case.error["code"] == "weak_pin"
    assert "too easy" in case.error["en"]
    case = finished(authorise(call, case, "482916"))
    assert case.status == CaseStatus.DONE, case.error
    # The core now takes the new PIN, and the old one no more.
    for secret, ok in (("482916", True), (ZHANG.pin, False)):
        challenge = corebank_pin_challenge(
            customer_ref=ZHANG.customer_ref, purpose="test", method="pin"
        )
        verdict = pin_verify(
            challenge_id=challenge["challenge_id"],
            ciphertext_b64=pin_encrypt(
                public_key_spki_b64=challenge["public_key_spki_b64"],
                nonce=challenge["nonce"],
                pin=secret,
            ),
        )
        assert verdict["ok"] is ok


# --- card loss report and cancellation -----------------------------------------------------------


def test_a_card_loss_report_blocks_the_card(call):
    identity_passed(call)
    token = card_token(ZHANG, "active")
    case = start_and_fill(
        call, "card_loss_report", {"card": token, "kind": "temporary", "reason": "stolen"}
    )
    summary = {line["label"]["en"]: line["value"]["zh"] for line in case.summary}
    assert summary["Card"] == "6222 **** **** 1015"
    assert summary["What happened"] == "被盗"
    case = run(call, case, ZHANG.pin)
    assert case.status == CaseStatus.DONE, case.error
    assert next(c for c in lookup(ZHANG)["cards"] if c["token"] == token)["status"] == "lost"


def test_a_card_already_reported_lost_cannot_be_reported_again(call):
    identity_passed(call, person="李娜")
    case = start_and_fill(
        call,
        "card_loss_report",
        {"card": card_token(LI, "lost"), "kind": "formal", "reason": "lost"},
    )
    form_error(case, "card", "already reported lost", "已挂失")
    assert case.error["code"] == "card_already_lost"
    # A card that is not the customer's is not a choice.
    case = start_and_fill(
        call, "card_loss_report", {"card": "card_not_hers", "kind": "formal", "reason": "lost"}
    )
    form_error(case, "card", "Choose one of the Card options", "请选择有效的银行卡")


def test_a_found_card_is_unblocked_and_an_active_card_has_nothing_to_cancel(call):
    identity_passed(call, person="李娜")
    case = start_and_fill(call, "card_loss_cancel", {"card": card_token(LI, "active")})
    form_error(case, "card", "not reported lost", "未挂失")
    lost = card_token(LI, "lost")
    case = run(call, start_and_fill(call, "card_loss_cancel", {"card": lost}), LI.pin)
    assert case.status == CaseStatus.DONE, case.error
    assert next(c for c in lookup(LI)["cards"] if c["token"] == lost)["status"] == "active"


# --- dormant account -----------------------------------------------------------------------------


def test_a_dormant_account_is_activated_and_an_active_one_is_refused(call):
    identity_passed(call)
    savings = ZHANG.accounts[1].number
    case = start_and_fill(call, "dormant_activate", {"account": ZHANG_CURRENT, "purpose": "daily"})
    form_error(case, "account", "not dormant", "并非久悬账户")
    case = run(
        call,
        start_and_fill(call, "dormant_activate", {"account": savings, "purpose": "savings"}),
        ZHANG.pin,
    )
    assert case.status == CaseStatus.DONE, case.error
    assert (
        next(a for a in lookup(ZHANG)["accounts"] if a["number"] == savings)["status"] == "active"
    )


# --- reserved mobile -----------------------------------------------------------------------------


def test_the_reserved_mobile_changes_and_the_same_number_is_refused_by_the_core(call, sent):
    identity_passed(call)  # face matched 10 s ago: fresh enough for this high-risk business
    case = start_and_fill(call, "mobile_change", {"new_mobile": "2391234567"})
    form_error(case, "new_mobile", "11-digit", "11 位手机号码")
    # Only the core knows the reserved number: it refuses, and both screens are told.
    case = run(call, start_and_fill(call, "mobile_change", {"new_mobile": ZHANG.mobile}), ZHANG.pin)
    assert case.status == CaseStatus.REJECTED
    assert_told_both(
        sent, call, case, "same_mobile", "already the reserved mobile", "已是预留手机号"
    )
    case = run(
        call, start_and_fill(call, "mobile_change", {"new_mobile": "13912345678"}), ZHANG.pin
    )
    assert case.status == CaseStatus.DONE, case.error
    assert lookup(ZHANG)["mobile_masked"] == "139****5678"


# --- personal details ----------------------------------------------------------------------------


def test_personal_details_are_updated_and_an_empty_form_is_refused(call):
    identity_passed(call, level=Level.TWO_FACTOR)
    case = start_and_fill(call, "details_update", {"address": "", "occupation": None})
    assert case.status == CaseStatus.DRAFT
    assert case.error["code"] == "nothing_to_change"
    case = start_and_fill(call, "details_update", {"email": "zhang@@example"})
    form_error(case, "email", "not a valid address", "格式不正确")
    case = run(
        call,
        start_and_fill(
            call,
            "details_update",
            {"address": "北京市朝阳区建国路 88 号", "occupation": "self_employed"},
        ),
        ZHANG.pin,
    )
    assert case.status == CaseStatus.DONE, case.error
    from workflows.corebank_stub.models import Customer

    customer = Customer.objects.get(customer_ref=ZHANG.customer_ref)
    assert customer.address == "北京市朝阳区建国路 88 号"
    assert customer.occupation == "self_employed"


# --- time deposit --------------------------------------------------------------------------------


def test_a_time_deposit_moves_the_money_once_and_its_rate_is_on_the_receipt(call):
    identity_passed(call, level=Level.TWO_FACTOR)
    case = start_and_fill(
        call,
        "time_deposit_open",
        {"from_account": ZHANG_CURRENT, "amount": "10", "term_months": "12"},
    )
    form_error(case, "amount", "at least CNY 50.00", "不得低于人民币 50.00 元")
    case = start_and_fill(
        call,
        "time_deposit_open",
        {"from_account": ZHANG_CURRENT, "amount": "5000", "term_months": "7"},
    )
    form_error(case, "term_months", "Choose one of the Term options", "请选择有效的存期")
    case = run(
        call,
        start_and_fill(
            call,
            "time_deposit_open",
            {"from_account": ZHANG_CURRENT, "amount": "5000", "term_months": "12"},
        ),
        ZHANG.pin,
    )
    assert case.status == CaseStatus.DONE, case.error
    moved = LedgerEntry.objects.filter(kind=LedgerKind.DEPOSIT_OUT, account__number=ZHANG_CURRENT)
    assert [str(e.amount) for e in moved] == ["-5000.00"]
    lines = {
        line["label"]["en"]: line["value"]["en"] for line in case.receipt.content["result_lines"]
    }
    assert lines["Rate"] == "1.45%"
    assert lines["Interest at maturity"] == "CNY 72.50"


def test_a_time_deposit_over_the_balance_is_refused_before_the_customer_is_asked(call):
    identity_passed(call, person="陈静", level=Level.TWO_FACTOR)
    case = start_and_fill(
        call,
        "time_deposit_open",
        {"from_account": CHEN.accounts[0].number, "amount": "1000.00", "term_months": "3"},
    )
    form_error(case, "amount", "Insufficient funds", "余额不足")
    assert "CNY 800.00" in case.error["en"]


# --- transfer ------------------------------------------------------------------------------------


def test_transfers_over_a_limit_or_the_balance_or_to_oneself_are_refused_in_words(call):
    identity_passed(call, person="李娜")
    li_account = LI.accounts[0].number
    case = start_and_fill(call, "transfer", transfer_params("25000.00", from_account=li_account))
    form_error(case, "amount", "per-transaction limit of CNY 20,000.00", "单笔转账限额")
    assert case.error["code"] == "over_limit"
    case = start_and_fill(
        call, "transfer", transfer_params("10.00", from_account=li_account, to_account=li_account)
    )
    form_error(case, "to_account", "the account the money leaves", "收款账户与转出账户相同")
    case = start_and_fill(call, "transfer", transfer_params("12.345", from_account=li_account))
    form_error(case, "amount", "two decimals", "两位小数")
    # Someone else's account cannot be the source.
    case = start_and_fill(call, "transfer", transfer_params("10.00"))
    form_error(case, "from_account", "Choose one of the From account options", "转出账户")


def test_a_transfer_to_a_payee_whose_name_does_not_match_is_stopped_by_the_core(call, sent):
    identity_passed(call)
    case = run(
        call,
        start_and_fill(call, "transfer", transfer_params("88.00", payee_name="刘阳")),
        ZHANG.pin,
    )
    assert case.status == CaseStatus.REJECTED
    assert_told_both(
        sent, call, case, "payee_mismatch", "does not match the holder", "收款人户名与账户"
    )
    assert not LedgerEntry.objects.filter(kind=LedgerKind.TRANSFER_OUT).exists()


def test_a_transfer_beyond_the_balance_is_refused(call):
    identity_passed(call, person="陈静")
    case = start_and_fill(
        call, "transfer", transfer_params("900.00", from_account=CHEN.accounts[0].number)
    )
    form_error(case, "amount", "Insufficient funds", "余额不足")


# --- risk assessment -----------------------------------------------------------------------------

CAUTIOUS = {
    "q_age": "56_65",
    "q_income": "50k_100k",
    "q_experience": "deposits",
    "q_horizon": "1_2y",
    "q_loss": "lt5",
    "q_goal": "income",
}


def test_a_risk_assessment_gives_a_level_confirmed_on_screen_without_a_pin(call, sent):
    identity_passed(call, level=Level.TWO_FACTOR)
    case = start_and_fill(call, "risk_assessment", CAUTIOUS)
    level = {line["label"]["en"]: line["value"]["en"] for line in case.summary}["Risk level"]
    assert level == "C2 Cautious"  # 2+2+2+2+2+2 = 12
    case = run(call, case, "")
    assert case.status == CaseStatus.DONE, case.error
    assert not customer_messages(sent, call, "case.pin_request", case)
    assert lookup(ZHANG)["risk_level"] == "C2"


def test_contradictory_or_missing_answers_are_asked_again(call):
    identity_passed(call, level=Level.TWO_FACTOR)
    case = start_and_fill(call, "risk_assessment", {**CAUTIOUS, "q_loss": "none", "q_goal": "max"})
    form_error(case, "q_goal", "contradict", "相互矛盾")
    case = start_and_fill(call, "risk_assessment", {**CAUTIOUS, "q_age": None})
    form_error(case, "q_age", "is required", "请填写")


# --- corporate account ---------------------------------------------------------------------------

INTENT_OK = {
    "intent_legal_person": "yes",
    "intent_own_will": "yes",
    "intent_no_rent": "no",
    "intent_knows_business": "yes",
    "intent_scope": "软件开发与技术服务",
}


def test_a_corporate_account_is_opened_after_the_legal_persons_intent_is_verified(call):
    identity_passed(call)
    case = start_and_fill(
        call,
        "corporate_account_open",
        {"company_name": "福州示例科技有限公司", "uscc": DEMO_USCC, **INTENT_OK},
    )
    assert case.steps["intent"]["state"] == "done"
    case = to_confirmation(call, case)
    case = finished(authorise(call, case, stub_last_otp(ZHANG.customer_ref)))
    assert case.status == CaseStatus.DONE, case.error
    opened = [a for a in lookup(ZHANG)["accounts"] if a["kind"] == "corporate"]
    assert [a["holder_name"] for a in opened] == ["福州示例科技有限公司"]
    lines = {
        line["label"]["en"]: line["value"]["en"] for line in case.receipt.content["result_lines"]
    }
    assert lines["New account"].endswith(opened[0]["number"][-4:])


def test_a_wrong_credit_code_or_a_doubtful_intent_stops_the_opening(call):
    identity_passed(call)
    wrong_check = DEMO_USCC[:17] + ("0" if DEMO_USCC[17] != "0" else "1")
    case = start_and_fill(
        call,
        "corporate_account_open",
        {"company_name": "福州示例科技有限公司", "uscc": wrong_check, **INTENT_OK},
    )
    form_error(case, "uscc", "check character is wrong", "校验位不正确")
    case = start_and_fill(
        call,
        "corporate_account_open",
        {
            "company_name": "福州示例科技有限公司",
            "uscc": DEMO_USCC,
            **INTENT_OK,
            "intent_no_rent": "yes",
        },
    )
    form_error(case, "intent_no_rent", "intent is not confirmed", "开户意愿未能核实")
    assert case.error["code"] == "intent_failed"


# --- the customer at the bank --------------------------------------------------------------------


def test_a_person_the_bank_does_not_know_cannot_start_a_business(call):
    from kyc.idcard.generator import person_random
    from kyc.models import IdentityCheck

    stranger = person_random(random.Random(5))
    identity_passed(call)
    IdentityCheck.objects.filter(call=call).update(
        fields={"name": stranger.name, "id_number": stranger.id_number}
    )
    with pytest.raises(BusinessRule, match="no customer with this ID number") as refused:
        services.case_start(call_id=call.id, teller=call.teller, business="transfer")
    assert refused.value.code == "not_a_customer"
    assert "请先开户" in refused.value.detail_zh
