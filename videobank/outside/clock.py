"""The time the kit waits and measures with: back-off between retries, a breaker's cool-down.

Everything in the kit reads ``monotonic()`` and waits with ``sleep()`` from here, so a test can
put a virtual clock in place (``videobank.outside.testing.VirtualTime``) and drive hours of
retries and cool-downs without waiting them.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


current: Clock = SystemClock()


def monotonic() -> float:
    return current.monotonic()


def sleep(seconds: float) -> None:
    current.sleep(seconds)


def use(clock: Clock) -> Clock:
    """Put ``clock`` in place; returns the one it replaces."""
    global current
    previous, current = current, clock
    return previous
