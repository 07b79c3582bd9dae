from __future__ import annotations

import os
import socket

from django.utils import timezone

from .models import MediaWorker


def media_worker_register(*, channel_name: str) -> MediaWorker:
    worker, _ = MediaWorker.objects.update_or_create(
        channel_name=channel_name,
        defaults={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "heartbeat_at": timezone.now(),
            "active_sessions": 0,
        },
    )
    return worker


def media_worker_heartbeat(*, channel_name: str, active_sessions: int) -> None:
    updated = MediaWorker.objects.filter(channel_name=channel_name).update(
        heartbeat_at=timezone.now(), active_sessions=active_sessions
    )
    if not updated:  # row was cleaned away (e.g. test flush): register again
        media_worker_register(channel_name=channel_name)
        MediaWorker.objects.filter(channel_name=channel_name).update(
            active_sessions=active_sessions
        )


def media_worker_unregister(*, channel_name: str) -> None:
    MediaWorker.objects.filter(channel_name=channel_name).delete()
