"""The retrying task: work that asks an outside service, retried with back-off until it has an
answer or gives up — the national ID check, a core-bank submission, whatever comes next.

An app declares it once (``RetryingTask(name=..., attempt=..., give_up=..., transient=...)``)
and gets a Celery task that:

- on a worker (production) makes one attempt per delivery; a transient failure re-queues it with
  ``retry(countdown=back-off)`` — a broker message, so it survives a worker restart and no worker
  sleeps while it waits; after ``max_retries`` it gives up;
- when Celery is eager (embedded profile, tests) runs the whole series itself (tenacity), waiting
  the back-off with the kit's clock, on a thread of its own (``enqueue``): the caller is usually
  a consumer, and channels runs every consumer's sync code on one shared thread per process — a
  series waiting on an outside service there would stall every call in the process;
- on anything else (a bug) gives up with "internal error" and logs it.

``attempt`` and ``give_up`` take the id (a string: tasks carry ids, never personal data) and
return the status; both must be idempotent (a late duplicate delivery finds the work finished
and leaves it so).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import tenacity
from celery import shared_task
from django.conf import settings
from django.db import connections
from tenacity import retry_if_exception_type, stop_after_attempt

from . import clock
from .retry import Backoff

log = logging.getLogger(__name__)


class EagerThreads:
    """Eager Celery runs on threads of their own, which tests and shutdown can wait for."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def enqueue(self, task: Any, *args: str, name: str) -> None:
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


class RetryingTask:
    def __init__(
        self,
        *,
        name: str,
        what: str,
        attempt: Callable[[str], str],
        give_up: Callable[..., str],
        transient: type[Exception],
        backoff: Callable[[], Backoff],
        max_retries: Callable[[], int],
        on_wait: Callable[[str, float], None] | None = None,
    ):
        """``name``: the Celery task name; ``what``: for thread names and logs;
        ``attempt(key)``: one try, raising ``transient`` when it got no answer;
        ``give_up(key, reason="")``: the final "no answer" state; ``backoff()`` and
        ``max_retries()``: read from settings at each run; ``on_wait(key, seconds)``: told before
        each wait (to show the next attempt's time)."""
        self.name = name
        self.what = what
        self._attempt = attempt
        self._give_up = give_up
        self.transient = transient
        self.backoff = backoff
        self.max_retries = max_retries
        self.on_wait = on_wait
        self._eager = EagerThreads(what.replace(" ", "-"))

        def run(task: Any, key: str) -> str:
            if task.request.is_eager:
                return self.series(key)
            return self.attempt(task, key)

        run.__name__ = run.__qualname__ = name.rsplit(".", 1)[-1]
        self.task = shared_task(bind=True, acks_late=True, max_retries=None, name=name)(run)

    # --- the two paths ---------------------------------------------------------------------------
    def attempt(self, task: Any, key: str) -> str:
        """The worker path: one attempt; on no answer re-queue with back-off, or give up.
        ``task`` is the bound Celery task (``request.retries``, ``retry``)."""
        try:
            return self._attempt(key)
        except self.transient as exc:
            retries = task.request.retries
            if retries >= self.max_retries():
                return self._give_up(key)
            wait = self.backoff().wait_s(retries)
            if self.on_wait is not None:
                self.on_wait(key, wait)
            raise task.retry(exc=exc, countdown=wait) from exc
        except Exception:
            self._give_up(key, reason="internal error (see the worker log)")
            raise

    def series(self, key: str) -> str:
        """The eager path: every attempt here, waiting the back-off between them."""
        on_wait = self.on_wait

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_wait is not None and state.next_action is not None:
                on_wait(key, state.next_action.sleep)

        retrying = tenacity.Retrying(
            stop=stop_after_attempt(self.max_retries() + 1),
            wait=self.backoff().wait(),
            retry=retry_if_exception_type(self.transient),
            sleep=clock.sleep,
            before_sleep=before_sleep,
            retry_error_callback=lambda state: self._give_up(key),
        )
        try:
            return retrying(self._attempt, key)
        except Exception:
            log.exception("%s %s failed", self.what, key)
            return self._give_up(key, reason="internal error (see the server log)")

    # --- queueing --------------------------------------------------------------------------------
    def enqueue(self, key: str) -> None:
        """Queue the task: to the broker, or (eager) on a thread of its own."""
        self._eager.enqueue(self.task, key, name=key)

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for eager runs still going (tests, shutdown); False if some did not end."""
        return self._eager.join(timeout)
