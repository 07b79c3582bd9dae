"""E-receipts: HTML and PDF for a done business, a verification code that verifies (and a forged
or altered one that does not), and who may see a receipt.

The done business is built directly in the database: a receipt depends only on what the case
says once done (the runs that get there through the core bank are in test_workflows*.py, where
the receipt of each is checked too)."""

from __future__ import annotations

import base64
import re
import time
import zlib
from decimal import Decimal
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from queueing.access import customer_token_issue
from tests.factories import done_transfer, staff_user
from workflows import catalogue as workflow_catalogue
from workflows import receipts, selectors
from workflows.models import BusinessCase, CaseStatus, Receipt

from .test_workflows import urlpatterns  # noqa: F401 - this module is the tests' URLconf

pytestmark = [pytest.mark.django_db]

PAYEE_ACCOUNT = "6230021000000004012"
FROM_ACCOUNT = "6230021000000001018"


@pytest.fixture
def receipt_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def done_case(catalogue, receipt_urls) -> BusinessCase:
    """A transfer as it stands once the core bank carried it out."""
    teller = staff_user("receipt-teller", "teller")
    case = done_transfer(teller, idempotency_key="case-receipt-test", from_account=FROM_ACCOUNT)
    receipts.receipt_issue(case=case)  # the case's receipt: case.receipt
    return case


def pdf_text(pdf: bytes) -> str:
    """The page content streams of a PDF, decoded (reportlab: ASCII85, then Flate)."""
    chunks = []
    for match in re.finditer(rb"<<(.*?)>>\s*stream\r?\n(.*?)\s*endstream", pdf, re.S):
        head, data = match.group(1), match.group(2)
        if b"/ASCII85Decode" in head:
            data = base64.a85decode(data.strip().removesuffix(b"~>"))
        if b"/FlateDecode" in head:
            data = zlib.decompress(data)
        chunks.append(data.decode("latin-1"))
    return "\n".join(chunks)


def test_a_done_business_has_its_receipt_as_a_page_and_a_pdf(done_case):
    receipt = done_case.receipt
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{12}", receipt.code)
    assert receipts.receipt_issue(case=done_case).pk == receipt.pk  # once per business
    client = Client()
    client.force_login(done_case.teller)

    page = client.get(f"/receipts/{receipt.code}/")
    assert page.status_code == 200
    html = page.content.decode()
    display = receipts.code_display(receipt.code)
    assert display in html
    assert "转账汇款" in html
    assert "Transfer" in html
    assert "人民币 1,200.00 元" in html
    assert "6230 **** **** 4012" in html
    assert "T0000000042" in html
    assert PAYEE_ACCOUNT not in html  # numbers masked on the receipt

    pdf = client.get(f"/receipts/{receipt.code}.pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-")
    text = pdf_text(body)
    assert display in text
    assert "STSong-Light" in body.decode("latin-1")  # the Chinese lines are drawn in CJK


def test_the_code_verifies_and_a_forged_or_altered_one_does_not(done_case):
    receipt = done_case.receipt
    client = Client()
    # As a person types it: lower case, spaces, O for 0.
    typed = " ".join(receipts.code_display(receipt.code).lower().split("-")).replace("0", "o")
    page = client.get("/receipts/verify/", {"code": typed})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-genuine="true"' in html
    assert "转账汇款" in html
    assert "CNY 1,***.00" in html  # the amount, masked
    assert "1,200.00" not in html
    assert "50,800.00" not in html  # no balance for anyone holding a code

    forged = "".join("Z" if c != "Z" else "Y" for c in receipt.code)
    page = client.get("/receipts/verify/", {"code": forged})
    assert page.status_code == 404
    assert 'data-genuine="false"' in page.content.decode()
    assert "Not verified" in page.content.decode()
    page = client.get("/receipts/verify/", {"code": "not-a-code!"})
    assert page.status_code == 404
    assert "not a verification code" in page.content.decode()

    # A receipt whose stored content was changed no longer matches its code.
    content = dict(receipt.content)
    content["lines"] = [
        {**line, "value": {"en": "CNY 9,200.00", "zh": "人民币 9,200.00 元"}}
        if line["label"]["en"] == "Amount"
        else line
        for line in content["lines"]
    ]
    Receipt.objects.filter(pk=receipt.pk).update(content=content)
    found, genuine = receipts.receipt_verify(receipt.code)
    assert found is not None
    assert genuine is False
    page = client.get("/receipts/verify/", {"code": receipt.code})
    assert 'data-genuine="false"' in page.content.decode()


def _another_done_case(done_case) -> BusinessCase:
    """A second done business in the same call (its own receipt)."""
    params = {**done_case.params, "amount": "300.00"}
    case = BusinessCase.objects.create(
        call=done_case.call,
        business="transfer",
        status=CaseStatus.DONE,
        teller=done_case.teller,
        customer_ref=done_case.customer_ref,
        params=params,
        summary=workflow_catalogue.TRANSFER.summary(params, {}),
        result={"transaction_ref": "T0000000043", "balance_after": "50500.00"},
        idempotency_key="case-receipt-test-2",
        confirmed_at=timezone.now(),
        done_at=timezone.now(),
    )
    receipts.receipt_issue(case=case)  # the case's receipt: case.receipt
    return case


def test_a_receipt_opens_with_its_own_link_token_and_staff_only(done_case, settings):
    receipt = done_case.receipt
    code = receipt.code
    anonymous = Client()
    assert anonymous.get(f"/receipts/{code}/").status_code == 403
    assert anonymous.get(f"/receipts/{code}.pdf").status_code == 403

    # The links the customer's screen gets carry the receipt's own token: they open it.
    message = selectors.receipt_message(done_case)
    token = parse_qs(urlsplit(message["url"]).query)["token"][0]
    assert parse_qs(urlsplit(message["pdf_url"]).query)["token"] == [token]
    page = anonymous.get(message["url"])
    assert page.status_code == 200
    assert page["Cache-Control"] == "private, no-store"
    assert page["Referrer-Policy"] == "no-referrer"
    assert receipts.code_display(code) in page.content.decode()
    assert f"{code}.pdf?token=" in page.content.decode()  # the download keeps the credential
    pdf = anonymous.get(message["pdf_url"])
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")

    # The call's token opens no receipt any more, not even the call's own.
    call_token = customer_token_issue(call_id=done_case.call_id)
    refused = anonymous.get(f"/receipts/{code}/", {"token": call_token})
    assert refused.status_code == 403
    assert "link shown on the customer's screen" in refused.content.decode()
    assert "回单链接" in refused.content.decode()
    assert anonymous.get(f"/receipts/{code}.pdf", {"token": call_token}).status_code == 403

    # A receipt's token opens that receipt only: not the other receipt of the same call.
    other = _another_done_case(done_case).receipt
    assert anonymous.get(f"/receipts/{other.code}/", {"token": token}).status_code == 403
    assert anonymous.get(f"/receipts/{other.code}.pdf", {"token": token}).status_code == 403
    other_token = receipts.receipt_token(other)
    assert anonymous.get(f"/receipts/{other.code}/", {"token": other_token}).status_code == 200
    assert anonymous.get(f"/receipts/{code}/", {"token": other_token}).status_code == 403
    # Altered or forged tokens open nothing; an unknown code is not found.
    assert anonymous.get(f"/receipts/{code}/", {"token": token + "x"}).status_code == 403
    assert anonymous.get("/receipts/ZZZZZZZZZZZZ/", {"token": token}).status_code == 404

    # The token expires (WORKFLOW_RECEIPT_LINK_MAX_AGE_S after it was issued).
    issued = time.time()
    with mock.patch("django.core.signing.time.time", return_value=issued - 3600):
        old_token = receipts.receipt_token(receipt)
    settings.WORKFLOW_RECEIPT_LINK_MAX_AGE_S = 3599
    assert anonymous.get(f"/receipts/{code}/", {"token": old_token}).status_code == 403
    settings.WORKFLOW_RECEIPT_LINK_MAX_AGE_S = 3601
    assert anonymous.get(f"/receipts/{code}/", {"token": old_token}).status_code == 200

    qa = Client()
    qa.force_login(staff_user("receipt-qa", "qa"))
    assert qa.get(f"/receipts/{code}/").status_code == 200
    teller_panel = selectors.case_panel(done_case)
    assert "token" not in teller_panel["receipt"]["url"]  # staff open it with their session


def test_codes_differ_for_every_receipt_and_follow_the_content():
    base = {"case_id": "a", "lines": [{"value": {"en": "CNY 1.00"}}]}
    codes = {receipts.code_for({**base, "case_id": str(i)}) for i in range(2000)}
    assert len(codes) == 2000
    assert receipts.code_for(base) == receipts.code_for(dict(base))
    assert receipts.amount_mask("CNY 60,000.00") == "CNY 6*,***.00"
    assert receipts.amount_mask("人民币 5.50 元") == "人民币 5.50 元"
    assert workflow_catalogue.money("1.005") == Decimal("1.01")
