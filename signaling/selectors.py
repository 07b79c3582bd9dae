from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import Kiosk, MediaWorker


def media_worker_pick() -> MediaWorker | None:
    """The live media worker with the fewest sessions (ties: the freshest heartbeat)."""
    fresh_after = timezone.now() - timedelta(seconds=settings.MEDIA_WORKER_STALE_S)
    return (
        MediaWorker.objects.filter(heartbeat_at__gte=fresh_after)
        .order_by("active_sessions", "-heartbeat_at")
        .first()
    )


def media_worker_alive(channel_name: str) -> bool:
    if not channel_name:
        return False
    fresh_after = timezone.now() - timedelta(seconds=settings.MEDIA_WORKER_STALE_S)
    return MediaWorker.objects.filter(
        channel_name=channel_name, heartbeat_at__gte=fresh_after
    ).exists()


def kiosk_by_credential(credential: str) -> Kiosk | None:
    """The active kiosk this credential belongs to, or None (malformed, unknown, rotated away or
    revoked). The hash is compared in constant time."""
    from .access import kiosk_credential_hash, kiosk_credential_id

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
