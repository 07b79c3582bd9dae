from __future__ import annotations

import hashlib
import hmac
import re

from .models import Kiosk

_KIOSK_CREDENTIAL = re.compile(r"^vtm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def kiosk_credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def kiosk_credential_id(credential: str | None) -> str | None:
    """The public id inside a well-formed credential (for lookup and logs), else None."""
    match = _KIOSK_CREDENTIAL.match(credential or "")
    return match.group(1) if match else None


def kiosk_by_credential(credential: str) -> Kiosk | None:
    """The active kiosk this credential belongs to, or None (malformed, unknown, rotated away or
    revoked). The hash is compared in constant time."""
    credential_id = kiosk_credential_id(credential)
    kiosk = (
        Kiosk.objects.filter(credential_id=credential_id, revoked_at__isnull=True).first()
        if credential_id
        else None
    )
    # Compare even when nothing was found, so a refusal takes as long as an acceptance.
    stored = kiosk.credential_hash if kiosk is not None else "0" * 64
    if not hmac.compare_digest(stored, kiosk_credential_hash(credential)) or kiosk is None:
        return None
    return kiosk


def kiosk_current(*, kiosk_id: int, credential_id: str) -> bool:
    """Is this kiosk still active under this credential (not rotated, not revoked)?"""
    return Kiosk.objects.filter(
        pk=kiosk_id, credential_id=credential_id, revoked_at__isnull=True
    ).exists()
