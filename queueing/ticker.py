"""The queue's heartbeat inside each server process: time-driven rules every QUEUE_TICK_S.

Offer timeouts, end of wrap-up, callback offers and relaxation steps all depend on time passing
with nobody sending anything. Every daphne process runs this loop; the services it calls are safe
to run concurrently (row locks, conditional updates, the router's advisory lock).
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from . import notify
from .services import queue_tick

log = logging.getLogger(__name__)

_tasks: dict[int, asyncio.Task] = {}


def _tick() -> None:
    queue_tick()
    notify.queue_broadcast_if_changed()


async def _run() -> None:
    notify.defer_queue_broadcasts()
    while True:
        try:
            await database_sync_to_async(_tick)()
        except Exception:
            log.exception("queue tick failed")
        await asyncio.sleep(settings.QUEUE_TICK_S)  # a period, not a wait for an event


def ensure_ticker() -> None:
    """Start the loop once per event loop (idempotent)."""
    loop = asyncio.get_running_loop()
    task = _tasks.get(id(loop))
    if task is None or task.done():
        _tasks[id(loop)] = loop.create_task(_run())
