"""Slow sync views moved off the server's one shared sync thread (``off_the_shared_thread``).

(Eager Celery runs on threads of their own: ``videobank.outside.tasks.EagerThreads``.)"""

from __future__ import annotations

import functools

from asgiref.sync import sync_to_async
from django.db import connections


def off_the_shared_thread(view):
    """Make a slow sync view (seconds of decrypting or remuxing, say) run on a worker thread of
    its own instead of the server's one shared sync thread. That thread also carries every
    socket's database work: a slow page must not hold up an offer ringing on a teller's console
    in the same process. The worker thread closes its database connection when done."""

    def run(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        finally:
            connections.close_all()  # this worker thread's own connection

    @functools.wraps(view)
    async def wrapper(request, *args, **kwargs):
        return await sync_to_async(run, thread_sensitive=False)(request, *args, **kwargs)

    return wrapper
