import base64
import binascii
import json
import logging
import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kyc import services as kyc_services
from kyc.services import FIELD_NAMES
from queueing.access import access_customer_call
from queueing.selectors import business_list
from videobank.access import access_qa, access_supervisor, access_teller
from videobank.errors import Invalid
from workflows.catalogue import CATALOGUE

from . import access, services

log = logging.getLogger(__name__)

# The service level the wallboard measures against (calls answered within the threshold).
SERVICE_LEVEL_TARGET = 0.8


@require_GET
def customer_page(request: HttpRequest, kiosk: bool = False) -> HttpResponse:
    businesses = [
        {"key": b.key, "zh": b.name_zh, "en": b.name_en} for b in business_list(active_only=True)
    ]
    # What the socket will prove (the same cookie rides on its handshake): an enrolled kiosk's
    # page expects the vtm channel, so a lapse between this page and the call is refused in
    # words; a kiosk page without a valid enrolment says so and calls as a web page.
    caller = access.access_kiosk(
        request.COOKIES.get(access.KIOSK_COOKIE), ip=request.META.get("REMOTE_ADDR")
    )
    enrolled = caller.channel == access.VTM
    response = render(
        request,
        "customer/index.html",
        {
            "businesses": businesses,
            "kiosk": kiosk,
            "enrolled": enrolled,
            "kiosk_name": caller.kiosk_name,
            "enrolment_lapsed": kiosk and not enrolled and access.KIOSK_COOKIE in request.COOKIES,
            "simulator": settings.KIOSK_SIMULATOR,
        },
    )
    access.device_cookie_ensure(request, response)
    return response


# The kiosk's cookie lives as long as browsers let one (400 days); rotation or revocation, not
# expiry, is what ends a kiosk's enrolment.
KIOSK_COOKIE_MAX_AGE_S = 400 * 24 * 3600


@require_http_methods(["GET", "POST"])
def kiosk_enrol(request: HttpRequest) -> HttpResponse:
    """A branch technician pastes the kiosk's credential (from the admin) once; the browser then
    carries it as an HttpOnly, SameSite=Strict cookie (Secure on https) to the kiosk page and
    its socket."""
    error = None
    if request.method == "POST":
        credential = request.POST.get("credential", "").strip()
        try:
            kiosk = services.kiosk_enrol(
                credential=credential[:200], ip=request.META.get("REMOTE_ADDR")
            )
        except access.Refused as exc:
            error = exc
        else:
            response: HttpResponse = redirect("kiosk")
            response.set_cookie(
                access.KIOSK_COOKIE,
                credential,
                max_age=KIOSK_COOKIE_MAX_AGE_S,
                httponly=True,
                samesite="Strict",
                secure=request.is_secure(),
            )
            log.info("kiosk %s: enrolment cookie set", kiosk.pk)
            return response
    caller = access.access_kiosk(
        request.COOKIES.get(access.KIOSK_COOKIE), ip=request.META.get("REMOTE_ADDR")
    )
    response = render(
        request,
        "customer/kiosk_enrol.html",
        {
            "error": error,
            "kiosk_name": caller.kiosk_name,
            "lapsed": caller.channel != access.VTM and access.KIOSK_COOKIE in request.COOKIES,
        },
        status=403 if error else 200,
    )
    add_never_cache_headers(response)
    return response


# The call token in the body is the credential (no cookie session: nothing for CSRF to ride on).
# Every refusal here is raised (the token, the kiosk, the picture) and answered in words, both
# languages, with its status by videobank.http_errors.AppErrorMiddleware.
@csrf_exempt
@require_POST
def simulated_card(request: HttpRequest) -> JsonResponse:
    """The kiosk page's simulated ID-card reader (``KIOSK_SIMULATOR``; never on a real VTM):
    a random valid card holder whose chip photo is the person at the kiosk (the snapshot the page
    sends), put on the national-ID stub's registry so the demo's checks can pass."""
    if not settings.KIOSK_SIMULATOR:
        raise Http404("The simulated card reader is off.")
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError
        call_id = access_customer_call(str(body.get("token", "")))  # TokenError: 403
        photo = base64.b64decode(str(body.get("photo_jpeg_b64", "")), validate=True)
    except (ValueError, binascii.Error):
        raise Invalid("Send a JPEG snapshot.", "请发送 JPEG 快照。") from None
    # A card reader, even a simulated one, belongs to an enrolled kiosk's call (its cookie).
    caller = access.access_kiosk(
        request.COOKIES.get(access.KIOSK_COOKIE), ip=request.META.get("REMOTE_ADDR")
    )
    access.access_kiosk_call(caller=caller, call_id=call_id)  # access.Refused: 403
    fields, chip = kyc_services.simulated_card_issue(photo_jpeg=photo)
    return JsonResponse({"fields": fields, "photo_jpeg_b64": base64.b64encode(chip).decode()})


@login_required
@require_GET
def console_page(request: HttpRequest) -> HttpResponse:
    if not access_teller(request.user):
        if access_qa(request.user):
            return redirect("qa")  # reviewers land on their own console after signing in
        raise PermissionDenied("The console is for tellers and supervisors.")
    workflows = [{"key": b.key, "zh": b.zh, "en": b.en} for b in CATALOGUE.values()]
    return render(
        request, "console/index.html", {"kyc_fields": FIELD_NAMES, "workflows": workflows}
    )


@login_required
@require_GET
def wallboard_page(request: HttpRequest) -> HttpResponse:
    if not access_supervisor(request.user):
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


def login_locked(request: HttpRequest, *_args, **_kwargs) -> HttpResponse:
    """The sign-in page when django-axes has locked this user name from this address: says so,
    and for how long, instead of "wrong password" (``AXES_LOCKOUT_CALLABLE``; axes calls it with
    or without the original response, hence the loose signature)."""
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else None
    username = request.POST.get("username", "")[:150]
    form = AuthenticationForm(request, initial={"username": username})
    return render(
        request,
        "console/login.html",
        {
            "form": form,
            "locked": True,
            "locked_minutes": minutes,
            "next": request.POST.get("next", ""),
        },
        status=429,
    )
