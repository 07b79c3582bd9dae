"""Who may do what on a socket. Every permission check of the signaling layer is here."""

from __future__ import annotations

import re
import secrets
import uuid

from django.conf import settings
from django.core import signing

TELLER_GROUP = "teller"
SUPERVISOR_GROUP = "supervisor"
QA_GROUP = "qa"
ADMIN_GROUP = "admin"

_TOKEN_SALT = "videobank.customer-call"  # noqa: S105 - a salt, not a secret


# The customer page's first-party device id: random, kept a year, carried by the socket's
# handshake; the per-device limits on call requests count by it (queueing/limits.py).
DEVICE_COOKIE = "vb_device"
DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")


def device_id_valid(value: str | None) -> bool:
    return bool(value) and _DEVICE_ID.fullmatch(value) is not None


def device_cookie_ensure(request, response) -> None:
    """Give a browser its device id, once (the page's view calls this)."""
    if device_id_valid(request.COOKIES.get(DEVICE_COOKIE)):
        return
    response.set_cookie(
        DEVICE_COOKIE,
        secrets.token_urlsafe(24),
        max_age=DEVICE_COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


class TokenError(Exception):
    pass


def customer_token_issue(*, call_id: uuid.UUID) -> str:
    """A signed token that lets whoever holds it act as the customer of this one call."""
    return signing.dumps({"call": str(call_id)}, salt=_TOKEN_SALT, compress=True)


def customer_token_read(token: str) -> uuid.UUID:
    try:
        payload = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.CUSTOMER_TOKEN_MAX_AGE_S)
        return uuid.UUID(payload["call"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise TokenError("The customer token is invalid or expired.") from None


def user_in_group(user, group: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_superuser or user.groups.filter(name=group).exists()


def access_teller(user) -> bool:
    """May this user work as a teller (console, teller socket)?"""
    return user_in_group(user, TELLER_GROUP) or user_in_group(user, SUPERVISOR_GROUP)


def access_supervisor(user) -> bool:
    """May this user watch the wallboard and act on other tellers and calls?"""
    return user_in_group(user, SUPERVISOR_GROUP)


def access_qa(user) -> bool:
    """May this user list and replay recordings (the QA console)? Every replay is audited."""
    return user_in_group(user, QA_GROUP) or user_in_group(user, ADMIN_GROUP)
