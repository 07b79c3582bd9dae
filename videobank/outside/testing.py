"""What tests of an outside-service client, task or stub share (tests only).

- ``VirtualTime``: the kit's clock driven by the test — a back-off "sleep" returns at once and
  moves time on (so a breaker's cool-down passes with it), every wait is recorded, and a test can
  act while the series waits (``during_sleep``: the service comes back meanwhile...).
- ``ResultWaiter``: waiting for work a background thread finishes, told by the app's result hook.
- ``WorkerDeliveries``: playing the Celery worker for a ``RetryingTask`` (production's path);
  ``run_series_eagerly``: its other path, as on the embedded profile, with the test's numbers.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from celery.exceptions import Retry

from . import clock
from .tasks import RetryingTask


class VirtualTime:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.during_sleep: Callable[[float], None] | None = None
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
            hook = self.during_sleep
        if hook is not None:
            hook(seconds)

    def advance(self, seconds: float) -> None:
        """Time passes (a teller comes back a minute later...)."""
        with self._lock:
            self.now += seconds

    @contextmanager
    def installed(self) -> Iterator[VirtualTime]:
        previous = clock.use(self)
        try:
            yield self
        finally:
            clock.use(previous)


class ResultWaiter:
    """The app's result hook calls ``notify(key, status)``; a test ``wait``s for a key to be
    settled (every notification, unless ``settled(status)`` says which)."""

    def __init__(self, *, settled: Callable[[str], bool] | None = None) -> None:
        self.settled = settled or (lambda status: True)
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._seen: dict[str, list[str]] = defaultdict(list)

    def _event(self, key: Any) -> threading.Event:
        with self._lock:
            return self._events.setdefault(str(key), threading.Event())

    def notify(self, key: Any, status: str = "") -> None:
        with self._lock:
            self._seen[str(key)].append(status)
        if self.settled(status):
            self._event(key).set()

    def wait(self, key: Any, timeout: float = 30.0) -> bool:
        """True once ``key`` settled (then ready for the next time); False after ``timeout``."""
        event = self._event(key)
        settled = event.wait(timeout)
        event.clear()
        return settled

    def seen(self, key: Any) -> list[str]:
        """Every status the hook was told of, in order."""
        with self._lock:
            return list(self._seen[str(key)])


class WorkerDeliveries:
    """``deliver(key, retries=n)``: the task's n-th delivery on a worker (one attempt); a
    re-queue raises Celery's ``Retry`` and its countdown joins ``countdowns``."""

    def __init__(self, task: RetryingTask) -> None:
        self.task = task
        self.countdowns: list[float] = []

    def deliver(self, key: Any, *, retries: int) -> str:
        countdowns = self.countdowns

        class Bound:  # what Celery hands a bound task: its request's retry count, and retry()
            request = SimpleNamespace(retries=retries)

            def retry(self, *, exc: Exception, countdown: float) -> Retry:
                countdowns.append(countdown)
                return Retry(exc=exc, when=countdown)

        return self.task.attempt(Bound(), str(key))


def run_series_eagerly(
    settings: Any,
    monkeypatch: Any,
    task: RetryingTask,
    *,
    timeout_s: float,
    max_retries: int,
    backoff_s: float,
    **more: Any,
) -> None:
    """``task`` runs as on the embedded profile (eagerly, on a thread of its own), whatever the
    profile of the test run, with a call timeout, a series length and a first back-off of the
    test's own (``settings``: pytest-django's fixture); ``more``: other settings of the same
    prefix (``RETRY_MAX_BACKOFF_S=60.0``). The worker path is ``WorkerDeliveries``'."""
    monkeypatch.setitem(task.task.app.conf, "task_always_eager", True)
    numbers = {"TIMEOUT_S": timeout_s, "MAX_RETRIES": max_retries, "RETRY_BACKOFF_S": backoff_s}
    for name, value in {**numbers, **more}.items():
        setattr(settings, f"{task.settings}_{name}", value)
