"""What a customer may open: the signed token of their one call.

The customer's page gets the token with ``call.queued``; resuming, uploading a card picture, the
kiosk's simulated card reader and "continue with the same teller" all ask
:func:`access_customer_call`. Staff roles are ``videobank.access``; device identity (kiosks, app
claims) is ``signaling.access``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core import signing

from videobank.errors import AppError

from . import clock
from .models import Call

_TOKEN_SALT = "videobank.customer-call"  # noqa: S105 - a salt, not a secret


class TokenError(AppError):
    """A customer token that opens nothing, with the reason in words (en, zh): ``bad_token``, or
    ``call_ended`` past the grace time."""

    code = "bad_token"
    http_status = 403

    def __init__(self, en: str, zh: str, code: str = "bad_token") -> None:
        super().__init__(en, zh, code=code)


def customer_token_issue(*, call_id: uuid.UUID) -> str:
    """A signed token that lets whoever holds it act as the customer of this one call."""
    return signing.dumps({"call": str(call_id)}, salt=_TOKEN_SALT, compress=True)


def _customer_token_call_id(token: str) -> uuid.UUID:
    try:
        payload = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.CUSTOMER_TOKEN_MAX_AGE_S)
        return uuid.UUID(payload["call"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise TokenError(
            "The customer token is invalid or expired.", "通话凭证无效或已过期。"
        ) from None


def access_customer_call(token: str) -> uuid.UUID:
    """The call a customer token opens — whatever takes the token (resume, uploads, the kiosk's
    simulated card, "continue with the same teller") asks here. The token works while its call
    is open and for ``CUSTOMER_TOKEN_AFTER_END_S`` after it ended (a page reloading as the call
    ends still hears how it ended), then never again. TokenError in words otherwise. Reads the
    database: call it from sync code."""
    call_id = _customer_token_call_id(token)
    ended_at = Call.objects.filter(pk=call_id).values_list("ended_at", flat=True).first()
    grace = timedelta(seconds=settings.CUSTOMER_TOKEN_AFTER_END_S)
    if ended_at is not None and clock.now() > ended_at + grace:
        raise TokenError(
            "This call has ended; its link no longer works. Start a new call if you need "
            "anything else.",
            "本次通话已结束，通话链接已失效。如需办理其他业务，请重新发起通话。",
            code="call_ended",
        )
    return call_id
