"""The client's settings: Django settings first, then the environment (test servers on free ports
hand their URL down that way), then the default."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings


def corebank_setting(name: str, default: Any, cast: Callable[[Any], Any] = str) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if value is None or value == "":
        return default
    return cast(value)


def timeout_s() -> float:
    return corebank_setting("COREBANK_TIMEOUT_S", 3.0, float)


def backoff_s(retries: int) -> float:
    """The wait before retry ``retries`` (0-based): doubling from COREBANK_RETRY_BACKOFF_S, at
    most COREBANK_RETRY_MAX_BACKOFF_S."""
    first = corebank_setting("COREBANK_RETRY_BACKOFF_S", 1.0, float)
    ceiling = corebank_setting("COREBANK_RETRY_MAX_BACKOFF_S", 60.0, float)
    return min(first * 2**retries, ceiling)


def max_retries() -> int:
    return corebank_setting("COREBANK_MAX_RETRIES", 15, int)


def retry_horizon_s() -> float:
    """How long an unanswered submission keeps being retried (waits only, plus one timeout per
    attempt at worst): with the defaults 603 s of waits."""
    return sum(backoff_s(n) for n in range(max_retries()))
