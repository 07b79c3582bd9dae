"""HTTP transport of the e-receipts: the receipt as HTML and PDF (the customer, by the receipt's
own link token, or staff), and the public page that verifies a receipt's code."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from videobank.access import QA_GROUP, SUPERVISOR_GROUP, TELLER_GROUP, user_in_group
from videobank.errors import Forbidden

from . import receipts
from .models import Receipt

STAFF_GROUPS = (TELLER_GROUP, SUPERVISOR_GROUP, QA_GROUP)


def access_receipt(request: HttpRequest, receipt: Receipt) -> bool:
    """Staff (tellers, supervisors, QA) see every receipt; a customer sees a receipt with its
    own link token (``?token=``, sent to their screen with the receipt): the call's token opens
    none, and one receipt's token opens no other."""
    if any(user_in_group(request.user, group) for group in STAFF_GROUPS):
        return True
    token = request.GET.get("token", "")
    if not token:
        return False
    try:
        receipt_id = receipts.receipt_token_read(token)
    except receipts.ReceiptTokenError:
        return False
    return receipt_id == receipt.id


def _refused() -> Forbidden:
    """Raised, it is answered 403 in both languages (the error page to a browser)."""
    return Forbidden(
        "This receipt opens with the link shown on the customer's screen (valid for a limited "
        "time) or for bank staff only.",
        "此回单仅凭客户屏幕上显示的回单链接（限时有效）或由本行工作人员查看。",
    )


def _receipt(code: str) -> Receipt:
    normalised = receipts.code_normalise(code)
    receipt = (
        Receipt.objects.select_related("case", "case__teller").filter(code=normalised).first()
        if normalised
        else None
    )
    if receipt is None:
        raise Http404("No such receipt.")
    return receipt


@require_GET
def receipt(request: HttpRequest, code: str) -> HttpResponse:
    item = _receipt(code)
    if not access_receipt(request, item):
        raise _refused()
    response = HttpResponse(receipts.receipt_html(item, request=request))
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"  # the link token is in the address
    return response


@require_GET
def receipt_pdf(request: HttpRequest, code: str) -> HttpResponse:
    item = _receipt(code)
    if not access_receipt(request, item):
        raise _refused()
    response = HttpResponse(receipts.receipt_pdf(item), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{item.code}.pdf"'
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def verify(request: HttpRequest) -> HttpResponse:
    """Anyone holding a receipt checks its code: business, time, amounts masked, genuine."""
    typed = request.GET.get("code", "")
    context: dict = {"typed": typed[:40]}
    if typed:
        found, genuine = receipts.receipt_verify(typed)
        context["checked"] = True
        context["well_formed"] = receipts.code_normalise(typed) is not None
        context["genuine"] = genuine
        if found is not None and genuine:
            context["view"] = receipts.verify_view(found)
    status = 200 if not typed or context.get("genuine") else 404
    return render(request, "workflows/verify.html", context, status=status)
