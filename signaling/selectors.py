from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import MediaWorker


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
