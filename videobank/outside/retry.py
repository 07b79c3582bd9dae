"""How long to wait before a retry: one back-off rule for in-call retries and task series.

The wait before retry ``n`` (0-based) is ``min(first_s * 2**n, max_s)`` plus a random jitter in
``[0, jitter_s]`` — tenacity's ``wait_exponential`` (+ ``wait_random``), so the in-call retries
(``http``), the eager series (``tasks``) and a worker's countdown use the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tenacity
from tenacity import wait_exponential, wait_random
from tenacity.wait import wait_base

from .conf import outside_setting


@dataclass(frozen=True)
class Backoff:
    first_s: float
    max_s: float = math.inf
    jitter_s: float = 0.0

    def wait(self) -> wait_base:
        """The tenacity wait strategy."""
        doubling = wait_exponential(multiplier=self.first_s, max=self.max_s, exp_base=2)
        return doubling + wait_random(0, self.jitter_s) if self.jitter_s > 0 else doubling

    def wait_s(self, retries: int) -> float:
        """The wait before retry ``retries`` (0-based), as tenacity computes it."""
        # A bare call state: the wait strategy reads only its attempt number.
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = retries + 1
        return float(self.wait()(state))

    def horizon_s(self, retries: int) -> float:
        """The waits of a whole series of ``retries`` retries (without jitter)."""
        plain = Backoff(first_s=self.first_s, max_s=self.max_s)
        return sum(plain.wait_s(n) for n in range(retries))


def series_backoff(prefix: str, *, first_s: float = 1.0, max_s: float = math.inf) -> Backoff:
    """A task series' back-off from ``<prefix>_RETRY_BACKOFF_S`` (the first wait) and
    ``<prefix>_RETRY_MAX_BACKOFF_S`` (the longest; none when unset)."""
    return Backoff(
        first_s=outside_setting(f"{prefix}_RETRY_BACKOFF_S", first_s, float),
        max_s=outside_setting(f"{prefix}_RETRY_MAX_BACKOFF_S", max_s, float),
    )


def series_max_retries(prefix: str, *, default: int = 3) -> int:
    """How many retries a task series makes after its first attempt: ``<prefix>_MAX_RETRIES``."""
    return outside_setting(f"{prefix}_MAX_RETRIES", default, int)
