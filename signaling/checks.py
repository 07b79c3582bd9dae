"""Start-up checks of the signaling layer's settings (``manage.py check``, every server start).

App claims: ids signaling.E001-E002. ICE and TURN: ids signaling.E101-E103. Media workers:
signaling.E201."""

from __future__ import annotations

import os

from django.conf import settings
from django.core import checks
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from .access import parse_claim_keys
from .ice import MAX_TTL_S


@checks.register(checks.Tags.security)
def app_claim_keys_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A malformed APP_CLAIM_KEYS is refused at start-up, not at a customer's first call."""
    errors: list[checks.CheckMessage] = []
    try:
        parse_claim_keys(settings.APP_CLAIM_KEYS)
    except ImproperlyConfigured as exc:
        errors.append(
            checks.Error(
                str(exc),
                hint='APP_CLAIM_KEYS="id:base64(32+ random bytes),..." newest first, or empty '
                "for no app channel.",
                id="signaling.E001",
            )
        )
    if not 0 < settings.APP_CLAIM_MAX_TTL_S <= 900:
        errors.append(
            checks.Error(
                f"APP_CLAIM_MAX_TTL_S is {settings.APP_CLAIM_MAX_TTL_S}: an app claim must "
                "expire within minutes (1..900 s).",
                id="signaling.E002",
            )
        )
    return errors


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


@register()
def media_worker_settings_check(app_configs, **kwargs) -> list[Error]:
    """A worker is taken for dead after MEDIA_WORKER_STALE_S without a heartbeat: that must
    cover three beats, or a busy worker's late beat would drop its calls."""
    beat, stale = settings.MEDIA_WORKER_HEARTBEAT_S, settings.MEDIA_WORKER_STALE_S
    if 0 < 3 * beat <= stale:
        return []
    return [
        Error(
            f"MEDIA_WORKER_STALE_S is {stale}: a media worker must be allowed at least three "
            f"heartbeats (MEDIA_WORKER_HEARTBEAT_S is {beat}, and above 0) before it counts as "
            "dead.",
            id="signaling.E201",
        )
    ]
