from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from queueing.selectors import business_list

from . import access

# The service level the wallboard measures against (calls answered within the threshold).
SERVICE_LEVEL_TARGET = 0.8


@require_GET
def customer_page(request: HttpRequest, kiosk: bool = False) -> HttpResponse:
    businesses = [
        {"key": b.key, "zh": b.name_zh, "en": b.name_en} for b in business_list(active_only=True)
    ]
    response = render(
        request,
        "customer/index.html",
        {"businesses": businesses, "kiosk": kiosk, "simulator": settings.KIOSK_SIMULATOR},
    )
    access.device_cookie_ensure(request, response)
    return response


@login_required
@require_GET
def console_page(request: HttpRequest) -> HttpResponse:
    if not access.access_teller(request.user):
        if access.access_qa(request.user):
            return redirect("qa")  # reviewers land on their own console after signing in
        raise PermissionDenied("The console is for tellers and supervisors.")
    from kyc.services import FIELD_NAMES
    from workflows.catalogue import CATALOGUE

    workflows = [{"key": b.key, "zh": b.zh, "en": b.en} for b in CATALOGUE.values()]
    return render(
        request, "console/index.html", {"kyc_fields": FIELD_NAMES, "workflows": workflows}
    )


@login_required
@require_GET
def wallboard_page(request: HttpRequest) -> HttpResponse:
    if not access.access_supervisor(request.user):
        raise PermissionDenied("The wallboard is for supervisors.")
    return render(
        request,
        "console/wallboard.html",
        {
            "service_level_target": SERVICE_LEVEL_TARGET,
            "threshold_s": settings.QUEUE_SERVICE_LEVEL_S,
        },
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})
