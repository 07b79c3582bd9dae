"""HTTP transport of the identity check: the customer's phone upload of the card."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from signaling import access
from signaling.access import access_customer_call
from videobank.errors import Invalid, TooLarge

from . import services
from .images import MAX_BYTES

# Every refusal here is raised (a token that opens nothing, the call's state, the picture) and
# answered in words, both languages, with its status by videobank.errors.AppErrorMiddleware.


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
        raise TooLarge(
            f"The request is too large: the limit is {mb:.0f} MB.",
            f"请求过大：上限为 {mb:.0f} MB。",
        )
    call_id = access_customer_call(request.POST.get("token", ""))
    side = request.POST.get("side", "")
    services.identity_upload_admit(call_id=call_id, side=side)
    image = request.FILES.get("image")
    if image is None:
        raise Invalid("No picture was sent.", "未收到图片。")
    size = image.size or 0
    if size > MAX_BYTES:
        raise TooLarge(
            f"The file is {size / 1e6:.1f} MB; the limit is 10 MB.",
            f"文件大小 {size / 1e6:.1f} MB，超过 10 MB 上限。",
        )
    services.identity_upload(call_id=call_id, side=side, data=image.read())
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

    from django.http import Http404

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
    fields, chip = services.simulated_card_issue(photo_jpeg=photo)
    return JsonResponse({"fields": fields, "photo_jpeg_b64": base64.b64encode(chip).decode()})
