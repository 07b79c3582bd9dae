"""The retrying task: work that asks an outside service, retried with back-off until it has an
answer or gives up — the national ID check, a core-bank submission, whatever comes next.

An app declares it once — ``RetryingTask("kyc.national.check", settings="KYC_NATIONAL",
attempt=national_check_run, give_up=national_check_give_up, retry_on=NationalServiceDown)`` — and
gets a Celery task that:

- on a worker (production) makes one attempt per delivery; a transient failure re-queues it with
  ``retry(countdown=back-off)`` — a broker message, so it survives a worker restart and no worker
  sleeps while it waits; after ``max_retries`` it gives up;
- when Celery is eager (embedded profile, tests) runs the whole series itself (tenacity), waiting
  the back-off with the kit's clock, on a thread of its own (``enqueue``): the caller is usually
  a consumer, and channels runs every consumer's sync code on one shared thread per process — a
  series waiting on an outside service there would stall every call in the process;
- on anything else (a bug) gives up with "internal error" and logs it.

``attempt`` and ``give_up`` are the app's services: they take the work's id as their one keyword
argument (``check_id=``, ``submission_id=``: a UUID; the broker carries ids, never personal data)
and return the row, whose ``status`` is the task's result; ``give_up`` also takes ``reason=``.
Both must be idempotent (a late duplicate delivery finds the work finished and leaves it so). The
series' back-off and length are the app's settings ``<settings>_RETRY_BACKOFF_S``,
``<settings>_RETRY_MAX_BACKOFF_S`` and ``<settings>_MAX_RETRIES`` (``retry``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import tenacity
from celery import shared_task
from django.conf import settings
from django.db import connections
from tenacity import retry_if_exception_type, stop_after_attempt

from . import clock
from .retry import Backoff, series_backoff, series_max_retries

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
        name: str,
        *,
        settings: str,
        attempt: Callable[..., Any],
        give_up: Callable[..., Any],
        retry_on: type[Exception],
        on_wait: Callable[..., None] | None = None,
    ):
        """``name``: the Celery task name; ``settings``: the prefix of the series' settings;
        ``attempt(<id>=)``: one try, raising ``retry_on`` when it got no answer;
        ``give_up(<id>=, reason="")``: the final "no answer" state; ``on_wait(<id>=,
        seconds=)``: told before each wait (to show when the next attempt is due)."""
        self.name = name
        self.settings = settings
        self._attempt = attempt
        self._give_up = give_up
        self.retry_on = retry_on
        self._on_wait = on_wait
        self.id_name = next(iter(inspect.signature(attempt).parameters))
        self._eager = EagerThreads(name)

        def run(task: Any, key: str) -> str:
            if task.request.is_eager:
                return self.series(key)
            return self.attempt(task, key)

        run.__name__ = run.__qualname__ = name.rsplit(".", 1)[-1]
        self.task = shared_task(bind=True, acks_late=True, max_retries=None, name=name)(run)

    def backoff(self) -> Backoff:
        return series_backoff(self.settings)

    def max_retries(self) -> int:
        return series_max_retries(self.settings)

    def _run(self, key: str) -> str:
        return self._attempt(**{self.id_name: uuid.UUID(key)}).status

    def _stop(self, key: str, reason: str = "") -> str:
        return self._give_up(**{self.id_name: uuid.UUID(key)}, reason=reason).status

    def _waiting(self, key: str, seconds: float) -> None:
        if self._on_wait is not None:
            self._on_wait(**{self.id_name: uuid.UUID(key)}, seconds=seconds)

    # --- the two paths ---------------------------------------------------------------------------
    def attempt(self, task: Any, key: str) -> str:
        """The worker path: one attempt; on no answer re-queue with back-off, or give up.
        ``task`` is the bound Celery task (``request.retries``, ``retry``)."""
        try:
            return self._run(key)
        except self.retry_on as exc:
            retries = task.request.retries
            if retries >= self.max_retries():
                return self._stop(key)
            wait = self.backoff().wait_s(retries)
            self._waiting(key, wait)
            raise task.retry(exc=exc, countdown=wait) from exc
        except Exception:
            self._stop(key, reason="internal error (see the worker log)")
            raise

    def series(self, key: str) -> str:
        """The eager path: every attempt here, waiting the back-off between them."""

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if state.next_action is not None:
                self._waiting(key, state.next_action.sleep)

        retrying = tenacity.Retrying(
            stop=stop_after_attempt(self.max_retries() + 1),
            wait=self.backoff().wait(),
            retry=retry_if_exception_type(self.retry_on),
            sleep=clock.sleep,
            before_sleep=before_sleep,
            retry_error_callback=lambda state: self._stop(key),
        )
        try:
            return retrying(self._run, key)
        except Exception:
            log.exception("%s %s failed", self.name, key)
            return self._stop(key, reason="internal error (see the server log)")

    # --- queueing --------------------------------------------------------------------------------
    def enqueue(self, key: str) -> None:
        """Queue the task: to the broker, or (eager) on a thread of its own."""
        self._eager.enqueue(self.task, key, name=key)

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for eager runs still going (tests, shutdown); False if some did not end."""
        return self._eager.join(timeout)
