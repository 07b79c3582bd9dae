"""The catalogue: what ``workflow_catalogue --json`` prints, the state machine each declaration
gives, the form checks, and that a business added as one declaration runs with nothing else
touched."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from workflows import catalogue as wc
from workflows import selectors, services
from workflows.corebank_stub.models import Customer
from workflows.corebank_stub.seed import DEMO_USCC
from workflows.models import CaseStatus

from . import test_workflows as wf

call, sent, wf_settings, stub_key_row = wf.call, wf.sent, wf.wf_settings, wf.stub_key_row

ISSUE_LIST = {
    "password_reset",
    "card_loss_report",
    "card_loss_cancel",
    "dormant_activate",
    "mobile_change",
    "details_update",
    "time_deposit_open",
    "transfer",
    "risk_assessment",
    "corporate_account_open",
}


def test_the_command_prints_the_catalogue_as_json():
    out = io.StringIO()
    call_command("workflow_catalogue", "--json", stdout=out)
    entries = json.loads(out.getvalue())
    assert {e["key"] for e in entries} == ISSUE_LIST
    for entry in entries:
        assert set(entry) == {"key", "name", "identity_level", "steps"}
        assert entry["name"]["zh"]
        assert entry["name"]["en"]
        assert entry["identity_level"] in ("none", "two_factor", "three_factor_face")
        assert entry["steps"][0] == "form"
        assert entry["steps"][-2:] == ["submit", "receipt"]
        assert entry["steps"].index("agreement") < entry["steps"].index("confirm")
    by_key = {e["key"]: e for e in entries}
    assert "intent" in by_key["corporate_account_open"]["steps"]
    assert by_key["password_reset"]["steps"][4:6] == ["otp", "new_pin"]
    assert "pin" not in by_key["risk_assessment"]["steps"]
    text = io.StringIO()
    call_command("workflow_catalogue", stdout=text)
    assert "转账汇款 / Transfer" in text.getvalue()


def test_each_declaration_gives_a_state_machine_with_no_way_back_from_an_end():
    for business in wc.CATALOGUE.values():
        table = business.transitions
        for final in ("done", "refused", "rejected", "cancelled"):
            assert table[final] == frozenset()
        # Nothing reaches the core before the customer confirmed; once sent, no cancelling.
        assert "submitted" not in table["agreement_read"]
        assert "cancelled" not in table["submitted"]
        assert table["agreement_sent"] == {"agreement_read", "cancelled"}
        if business.authorisation:
            assert "submitted" not in table["confirmed"]
            assert "authorised" in table["confirmed"]
        else:
            assert table["confirmed"] >= {"submitted"}


def test_form_checks_say_what_is_wrong_in_both_languages():
    money = wc.Field("amount", "money", "Amount", "金额", max=Decimal("100"))
    assert wc.field_clean(money, "12.5", {}) == ("12.50", None)
    assert wc.field_clean(money, 12.5, {}) == ("12.50", None)
    for bad, en in (
        ("1.234", "two decimals"),
        ("abc", "an amount"),
        ("0", "at least"),
        ("101", "at most"),
        ("NaN", "two decimals"),
    ):
        value, error = wc.field_clean(money, bad, {})
        assert value is None
        assert en in error["en"], (bad, error)
        assert error["zh"]
    mobile = wc.Field("m", "mobile", "Mobile", "手机号")
    assert wc.field_clean(mobile, "13912345678", {}) == ("13912345678", None)
    assert (
        wc.field_clean(mobile, "1391234567", {})[1]["zh"] == "手机号须为以 1 开头的 11 位手机号码。"
    )
    text = wc.Field("t", "text", "Name", "名称", max_length=5)
    assert wc.field_clean(text, "a\x00b", {})[1]["en"] == "Name contains control characters."
    assert wc.field_clean(text, "abcdef", {})[1]["en"] == "Name: at most 5 characters."
    assert wc.field_clean(text, "", {})[1]["en"] == "Name is required."
    assert wc.uscc_valid(DEMO_USCC)
    assert not wc.uscc_valid(DEMO_USCC[:17] + "0")
    assert wc.risk_level(6)[0] == "C1"
    assert wc.risk_level(30)[0] == "C5"
    assert wc.risk_level(16)[0] == "C3"


@pytest.mark.django_db(transaction=True)
def test_a_business_added_as_one_declaration_runs_end_to_end(call, sent, monkeypatch):
    """A new business (an e-mail update with its own form, agreement and summary) declared here,
    not in any consumer, page or service: the teller's card, the customer's messages and the core
    submission all follow from the declaration."""
    email_update = wc.Business(
        key="email_update",
        en="E-mail update",
        zh="电子邮箱变更",
        identity_level="two_factor",
        form=(
            wc.Field(
                "email",
                "text",
                "New e-mail",
                "新电子邮箱",
                pattern=wc.EMAIL_RE,
                pattern_words=("Not an e-mail address.", "不是电子邮箱。"),
            ),
        ),
        agreement=wc.Agreement(
            "E-mail agreement", "电子邮箱协议", (("Notices go there.", "通知将发往该邮箱。"),)
        ),
        operation="details_update",
        summary=lambda p, c: [wc.line("New e-mail", "新电子邮箱", wc.same(p["email"]))],
        core_params=lambda p, c, i: {"email": p["email"]},
    )
    monkeypatch.setitem(wc.CATALOGUE, "email_update", email_update)
    wf.identity_passed(call)
    case = wf.start_and_fill(call, "email_update", {"email": "not-an-email"})
    panel = selectors.case_panel(case)
    assert panel["form"][0]["name"] == "email"
    assert panel["form"][0]["errors"]["zh"] == "不是电子邮箱。"
    case = services.case_fill(
        call_id=call.id, case_id=case.id, teller=call.teller, params={"email": "zw@example.cn"}
    )
    case = wf.finished(wf.authorise(call, wf.to_confirmation(call, case), wf.ZHANG.pin))
    assert case.status == CaseStatus.DONE, case.error
    assert Customer.objects.get(customer_ref=wf.ZHANG.customer_ref).email == "zw@example.cn"
    (agreement,) = wf.customer_messages(sent, call, "case.agreement", case)
    assert agreement["title"]["zh"] == "电子邮箱协议"
    assert [s["step"] for s in selectors.case_panel(case)["steps"]] == email_update.steps
    assert all(s["state"] == "done" for s in selectors.case_panel(case)["steps"])
