"""Work kept off the server's event loop and its one shared sync thread: Celery tasks sent to
the broker, or — when Celery is eager (embedded profile, tests) — run on threads of their own, so
that a slow outside service never holds them up (tests and shutdown can wait for those threads);
and slow sync views moved onto worker threads (``off_the_shared_thread``)."""

from __future__ import annotations

import functools
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections


class EagerThreads:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def enqueue(self, task, *args: str, name: str) -> None:
        """Queue ``task(*args)``: to the broker, or (eager) on a new thread named after ``name``.
        Eagerness is read at call time (tests switch it per test; the Celery app reads it once)."""
        if not (settings.CELERY_TASK_ALWAYS_EAGER or task.app.conf.task_always_eager):
            task.delay(*args)
            return

        def run() -> None:
            try:
                task.apply(args=list(args))
            finally:
                connections.close_all()  # this thread's own connections
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"{self.prefix}-{name}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the threads still running; False if some did not end in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


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
