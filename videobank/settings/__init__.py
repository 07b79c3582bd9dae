"""Settings entry point: the profile is chosen by the environment alone.

``VIDEOBANK_PROFILE`` names it explicitly (``embedded`` or ``production``); otherwise the presence
of ``REDIS_URL`` selects production, and nothing at all gives the embedded profile that ``make run``
serves.
"""

import os

_profile = os.environ.get("VIDEOBANK_PROFILE") or (
    "production" if os.environ.get("REDIS_URL") else "embedded"
)

if _profile == "production":
    from .production import *  # noqa: F403
elif _profile == "embedded":
    from .embedded import *  # noqa: F403
else:  # pragma: no cover - configuration error
    raise RuntimeError(f"VIDEOBANK_PROFILE must be 'embedded' or 'production', not {_profile!r}")
