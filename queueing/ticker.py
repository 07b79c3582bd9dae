"""The queue's heartbeat: time-driven rules every QUEUE_TICK_S, and the queue broadcasts.

Offer timeouts, end of wrap-up, callback offers and relaxation steps all depend on time passing
with nobody sending anything. Where it runs is ``settings.QUEUE_TICKER``:

- ``"server"`` (embedded profile): a loop inside the daphne process; a change to the queue marks
  it dirty and the loop sends the positions that changed, once per tick.
- ``"process"`` (production): ``manage.py queue_ticker``, a process of its own. Server processes
  then only do what a user is waiting for (an offer reaching a freed teller must not queue behind
  a tick or a burst of position messages on the same event loop and database thread); the ticker
  recomputes positions every tick and sends those that changed.

Several ticker processes may run (for availability): only the holder of a short lease in Redis
applies the rules and broadcasts; if it dies, its lease runs out after ``LEASE_S`` and another
takes over. The services are safe to run concurrently anyway (row locks, conditional updates,
the router's lock); the lease only keeps tickers from queueing behind each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import redis
from channels.db import database_sync_to_async
from django.conf import settings

from videobank import events

from . import notify
from .services import queue_tick

log = logging.getLogger(__name__)

LEASE_KEY = "videobank:queue-ticker"
LEASE_S = 2.0  # a dead ticker's rules resume within this

_tasks: dict[int, asyncio.Task] = {}


class _Lease:
    """Who ticks. Without Redis (embedded profile: one process) this process always does."""

    def __init__(self) -> None:
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.client = None
        url = getattr(settings, "REDIS_URL", None)
        if url:
            self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def held(self) -> bool:
        if self.client is None:
            return True
        ms = int(LEASE_S * 1000)
        try:
            if self.client.set(LEASE_KEY, self.token, nx=True, px=ms):
                return True
            if self.client.get(LEASE_KEY) == self.token.encode():
                self.client.pexpire(LEASE_KEY, ms)
                return True
            return False
        except Exception:  # Redis unreachable: tick anyway (correct, only slower)
            log.warning("queue ticker lease unavailable; ticking without it", exc_info=True)
            return True

    def release(self) -> None:
        """Hand over at once on a clean stop (a crash hands over when the lease runs out)."""
        if self.client is None:
            return
        try:
            if self.client.get(LEASE_KEY) == self.token.encode():
                self.client.delete(LEASE_KEY)
        except Exception:
            log.warning("queue ticker lease not released", exc_info=True)


_lease: _Lease | None = None
_ticks = 0


def lease_release() -> None:
    if _lease is not None:
        _lease.release()


def jobs_every_ticks() -> int:
    """Ticks from one run of the housekeeping jobs (events.Housekeeping) to the next: every
    QUEUE_HOUSEKEEPING_S seconds."""
    return max(1, round(settings.QUEUE_HOUSEKEEPING_S / settings.QUEUE_TICK_S))


def tick_once(*, standalone: bool) -> bool:
    """One tick; False when another ticker holds the lease (nothing done)."""
    global _lease, _ticks
    if _lease is None:
        _lease = _Lease()
    if not _lease.held():
        return False
    queue_tick()
    _ticks += 1
    if (_ticks - 1) % jobs_every_ticks() == 0:  # the first tick, then every N
        _jobs_run()
    if standalone:
        notify.queue_broadcast()
    else:
        notify.queue_broadcast_if_changed()
    return True


def _jobs_run() -> None:
    """Other apps' housekeeping that needs one runner (who listens to ``events.Housekeeping``:
    docs/architecture.md); one failing does not stop the others or the tick."""
    events.emit(events.Housekeeping())


async def run(*, standalone: bool) -> None:
    if not standalone:
        notify.defer_queue_broadcasts()
    while True:
        try:
            await database_sync_to_async(tick_once)(standalone=standalone)
        except Exception:
            log.exception("queue tick failed")
        await asyncio.sleep(settings.QUEUE_TICK_S)  # a period, not a wait for an event


def ensure_ticker() -> None:
    """Inside a server process (idempotent, once per event loop): tick here, or, when the
    ticker is a process of its own, leave the queue broadcasts to it."""
    if settings.QUEUE_TICKER == "process":
        notify.leave_queue_broadcasts_to_ticker()
        return
    loop = asyncio.get_running_loop()
    task = _tasks.get(id(loop))
    if task is None or task.done():
        _tasks[id(loop)] = loop.create_task(run(standalone=False))
