"""The stub's knobs: Django settings first, then the environment (a stub started for a test on a
free port gets its knobs from the environment), then the default."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings


def stub_setting(name: str, default: Any, cast: Callable[[Any], Any] = str) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if value is None or value == "":
        return default
    if cast is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return cast(value)
