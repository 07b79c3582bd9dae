"""Start-up checks of the signaling layer's settings (``manage.py check``, every server start).

ICE and TURN: ids signaling.E101-E103."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Tags, register

from .ice import MAX_TTL_S


@register(Tags.security)
def ice_settings_check(app_configs, **kwargs) -> list[Error]:
    errors = []
    if "ICE_SERVERS" in os.environ:
        errors.append(
            Error(
                "ICE_SERVERS is no longer read: a static TURN password was handed to every socket.",
                hint="Set STUN_URLS, and TURN_URLS with TURN_SECRET (coturn's "
                "static-auth-secret): each call gets its own short-lived TURN credential.",
                id="signaling.E101",
            )
        )
    if settings.TURN_URLS and not settings.TURN_SECRET:
        errors.append(
            Error(
                "TURN_URLS is set but TURN_SECRET is empty: no TURN credential can be issued.",
                hint="Set TURN_SECRET to the TURN server's static-auth-secret.",
                id="signaling.E102",
            )
        )
    if not 60 <= settings.TURN_TTL_S <= MAX_TTL_S:
        errors.append(
            Error(
                f"TURN_TTL_S is {settings.TURN_TTL_S}: a TURN credential must live between 60 "
                f"and {MAX_TTL_S} seconds.",
                id="signaling.E103",
            )
        )
    return errors
