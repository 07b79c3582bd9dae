"""The client's settings: Django settings first, then the environment (test servers on free ports
hand their URL down that way), then the default (``videobank.outside.conf``)."""

from __future__ import annotations

from videobank.outside.conf import outside_setting as corebank_setting
from videobank.outside.retry import Backoff, series_backoff, series_max_retries

__all__ = ["backoff", "backoff_s", "corebank_setting", "max_retries", "retry_horizon_s"]


def timeout_s() -> float:
    return corebank_setting("COREBANK_TIMEOUT_S", 3.0, float)


def backoff() -> Backoff:
    """Doubling from COREBANK_RETRY_BACKOFF_S, at most COREBANK_RETRY_MAX_BACKOFF_S."""
    return series_backoff("COREBANK", first_s=1.0, max_s=60.0)


def backoff_s(retries: int) -> float:
    """The wait before retry ``retries`` (0-based)."""
    return backoff().wait_s(retries)


def max_retries() -> int:
    return series_max_retries("COREBANK", default=15)


def retry_horizon_s() -> float:
    """How long an unanswered submission keeps being retried (waits only, plus one timeout per
    attempt at worst): with the defaults 603 s of waits."""
    return backoff().horizon_s(max_retries())
