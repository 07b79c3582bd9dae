"""HTTP transport of the identity check: the customer's phone upload of the card."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from queueing.errors import QueueingError
from signaling.access import TokenError, access_customer_call

from . import services
from .errors import KycError
from .images import MAX_BYTES


def _refused(status: int, en: str, zh: str, code: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": {"en": en, "zh": zh}}, status=status)


# The call token in the form is the credential (no cookie session: nothing for CSRF to ride on).
@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    try:
        call_id = access_customer_call(request.POST.get("token", ""))
    except TokenError as exc:
        return _refused(403, exc.en, exc.zh, exc.code)
    side = request.POST.get("side", "")
    if side not in services.CAPTURE_PURPOSES:
        return _refused(
            400, "Say which side of the card this is.", "请说明是证件哪一面。", "invalid"
        )
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
    except KycError as exc:
        return _refused(400, exc.detail, exc.detail_zh, exc.code)
    except QueueingError as exc:
        return _refused(409, exc.detail, exc.detail, exc.code)
    return JsonResponse({"status": "received"}, status=202)


@csrf_exempt
@require_POST
def simulated_card(request: HttpRequest) -> JsonResponse:
    """The kiosk page's simulated ID-card reader (``KIOSK_SIMULATOR``; never on a real VTM):
    a random valid card holder whose chip photo is the person at the kiosk (the snapshot the page
    sends), put on the national-ID stub's registry so the demo's checks can pass."""
    import base64
    import binascii
    import json

    from django.conf import settings
    from django.http import Http404

    if not settings.KIOSK_SIMULATOR:
        raise Http404("The simulated card reader is off.")
    try:
        body = json.loads(request.body or b"{}")
        access_customer_call(str(body.get("token", "")))
        photo = base64.b64decode(str(body.get("photo_jpeg_b64", "")), validate=True)
    except TokenError as exc:
        return _refused(403, exc.en, exc.zh, exc.code)
    except (ValueError, binascii.Error):
        return _refused(400, "Send a JPEG snapshot.", "请发送 JPEG 快照。", "invalid")
    try:
        fields, chip = services.simulated_card_issue(photo_jpeg=photo)
    except KycError as exc:
        return _refused(400, exc.detail, exc.detail_zh, exc.code)
    return JsonResponse({"fields": fields, "photo_jpeg_b64": base64.b64encode(chip).decode()})
