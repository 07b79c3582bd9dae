"""HTTP transport of the identity check: the customer's phone upload of the card. (The kiosk's
simulated card reader is a kiosk device's: ``signaling.views.simulated_card``.)"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from queueing.access import TokenError, access_customer_call
from queueing.errors import QueueingError

from . import services
from .errors import KycError, Refused
from .images import MAX_BYTES

# A picture the server will not decode: too many bytes, too many pixels.
TOO_LARGE_CODES = {"too_large", "too_many_pixels"}


def _refused(status: int, en: str, zh: str, code: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": {"en": en, "zh": zh}}, status=status)


def _declared_too_large(request: HttpRequest) -> bool:
    """Second line behind the ASGI body cap (videobank/body_limit.py), for a server that runs
    Django without it: the declared length, before anything touches the body."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > settings.HTTP_BODY_MAX_BYTES
    except ValueError:
        return False


# The call token in the form is the credential (no cookie session: nothing for CSRF to ride on).
@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    """The customer's picture of one side of the card. In this order, each refused in words:
    the body's size, the call token, the call connected and its identity check waiting for this
    side, the file's size, the per-call rate; only then is the picture decoded."""
    if _declared_too_large(request):
        mb = settings.HTTP_BODY_MAX_BYTES / (1024 * 1024)
        return _refused(
            413,
            f"The request is too large: the limit is {mb:.0f} MB.",
            f"请求过大：上限为 {mb:.0f} MB。",
            "too_large",
        )
    try:
        call_id = access_customer_call(request.POST.get("token", ""))
    except TokenError as exc:
        return _refused(403, exc.en, exc.zh, exc.code)
    side = request.POST.get("side", "")
    try:
        services.identity_upload_admit(call_id=call_id, side=side)
    except Refused as exc:
        return _refused(exc.status, exc.detail, exc.detail_zh, exc.reason)
    image = request.FILES.get("image")
    if image is None:
        return _refused(400, "No picture was sent.", "未收到图片。", "invalid")
    if image.size > MAX_BYTES:
        return _refused(
            413,
            f"The file is {image.size / 1e6:.1f} MB; the limit is 10 MB.",
            f"文件大小 {image.size / 1e6:.1f} MB，超过 10 MB 上限。",
            "too_large",
        )
    try:
        services.identity_upload(call_id=call_id, side=side, data=image.read())
    except Refused as exc:
        return _refused(exc.status, exc.detail, exc.detail_zh, exc.reason)
    except KycError as exc:
        status = 413 if exc.code in TOO_LARGE_CODES else 400
        return _refused(status, exc.detail, exc.detail_zh, exc.code)
    except QueueingError as exc:
        return _refused(409, exc.detail, exc.detail, exc.code)
    return JsonResponse({"status": "received"}, status=202)
