"""HTTP transport of the identity check: the customer's phone upload of the card. (The kiosk's
simulated card reader is a kiosk device's: ``signaling.views.simulated_card``.)"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from queueing.access import access_customer_call
from videobank.errors import Invalid, TooLarge

from . import services
from .images import MAX_BYTES

# Every refusal here is raised (a token that opens nothing, the call's state, the picture) and
# answered in words, both languages, with its status by videobank.http_errors.AppErrorMiddleware.


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
