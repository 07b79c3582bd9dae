"""Start-up checks of the signaling layer's settings (``manage.py check``, every server start)."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def app_claim_keys_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A malformed APP_CLAIM_KEYS is refused at start-up, not at a customer's first call."""
    from .access import parse_claim_keys

    errors = []
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
