"""Settings of outside-service clients and stubs: Django settings first, then the environment (a
stub or a test server started on a free port gets its knobs that way), then the default."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings


def outside_setting(name: str, default: Any, cast: Callable[[Any], Any] = str) -> Any:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if value is None or value == "":
        return default
    if cast is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return cast(value)
