"""Celery tasks sent to the broker, or — when Celery is eager (embedded profile, tests) — run on
threads of their own, so that a slow outside service never holds up the server's event loop or
its shared database thread. Tests and shutdown can wait for those threads."""

from __future__ import annotations

import threading
import time

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
