"""HTTP transport of the e-receipts: the receipt as HTML and PDF (the customer of the call, by its
token, or staff), and the public page that verifies a receipt's code."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from signaling.access import (
    QA_GROUP,
    SUPERVISOR_GROUP,
    TELLER_GROUP,
    TokenError,
    customer_token_read,
    user_in_group,
)

from . import receipts
from .models import Receipt

STAFF_GROUPS = (TELLER_GROUP, SUPERVISOR_GROUP, QA_GROUP)


def access_receipt(request: HttpRequest, receipt: Receipt) -> bool:
    """Staff (tellers, supervisors, QA) see every receipt; a customer sees the receipts of their
    own call, with the call's token (``?token=``) as the credential."""
    if any(user_in_group(request.user, group) for group in STAFF_GROUPS):
        return True
    token = request.GET.get("token", "")
    if not token:
        return False
    try:
        call_id = customer_token_read(token)
    except TokenError:
        return False
    return str(call_id) == str(receipt.case.call_id)


def _refused() -> HttpResponse:
    return HttpResponse(
        "This receipt is shown to the customer of the call (with the call's link) and to bank "
        "staff only. / 此回单仅向本次通话的客户（凭通话链接）及本行工作人员展示。",
        status=403,
        content_type="text/plain; charset=utf-8",
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
        return _refused()
    response = HttpResponse(receipts.receipt_html(item, request=request))
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"  # the call token is in the address
    return response


@require_GET
def receipt_pdf(request: HttpRequest, code: str) -> HttpResponse:
    item = _receipt(code)
    if not access_receipt(request, item):
        return _refused()
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
