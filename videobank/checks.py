"""What the production profile refuses to start with: outside systems that are not configured or
point at a stub mounted in our own server, and keys that are unset or still a published value.

Registered as Django system checks (``manage.py check`` and every management command run them:
``migrate``, ``media_worker``, ``queue_ticker``...). Daphne and Celery do not run checks, so
``videobank/asgi.py`` (application load) and ``videobank/celery.py`` (``worker_init``) call
:func:`production_refuse_unsafe`, which stops the process with the messages.

A key setting added later joins ``SECRET_SETTINGS``; a value shown anywhere public (the
repository, ``.env.example``, the docs) joins ``PUBLISHED_DEFAULTS``.
"""

from __future__ import annotations

import urllib.parse

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

PRODUCTION_TAG = "videobank_production"

# Every key value that was ever published with the project: code defaults, the test harness's
# old fixed keys, the examples in .env.example. A deployment still using one has no secret.
PUBLISHED_DEFAULTS: frozenset[str] = frozenset(
    {
        "videobank-corebank-stub",  # the stubs' old default API keys
        "videobank-national-stub",
        "embedded-profile-not-secret",  # the embedded profile's SECRET_KEY
        "test-only-secret-key",  # the test harness's old fixed keys
        "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=",
        "dGVzdC1vbmx5LXJlY2VpcHQta2V5LTMyLWJ5dGVzISE=",
        "dGVzdC1vbmx5LW5hdGlvbmFsLWtleS0zMi1ieXRlcyE=",
        "dGVzdC1vbmx5LWNvcmViYW5rLXN0dWIta2V5LTMyYnk=",
        "test-only-key:7Qf2-kV9x#Lm4@Rt8Zw1%Nc6^Hy3&Bd5*Gp0!Js7_Ue2+Ao9=Xi4",
        "change-me",  # .env.example
        "REPLACE_WITH_BASE64_32_BYTES",
        "REPLACE_WITH_A_RANDOM_KEY",
        "REPLACE_WITH_THE_TURN_SERVERS_SECRET",
        "videobank-demo",  # DEMO_PASSWORD
        "secret",
    }
)

# (environment variable an operator sets, Django setting that holds it). Each must be set on the
# production profile and must not be a published value.
SECRET_SETTINGS: tuple[tuple[str, str], ...] = (
    ("DJANGO_SECRET_KEY", "SECRET_KEY"),
    ("RECORDING_MASTER_KEYS", "RECORDING_MASTER_KEYS"),
    ("WORKFLOW_RECEIPT_KEYS", "WORKFLOW_RECEIPT_KEYS"),
    ("KYC_NATIONAL_KEYS", "KYC_NATIONAL_KEYS"),
    ("COREBANK_STUB_KEYS", "COREBANK_STUB_KEYS"),
    ("COREBANK_API_KEY", "COREBANK_API_KEY"),
    ("KYC_NATIONAL_API_KEY", "KYC_NATIONAL_API_KEY"),
)

# Where the embedded profile mounts the stubs in our own server (videobank/urls.py).
STUB_PATHS = ("/ext/core-bank", "/ext/national-id")


def value_published(value: str) -> bool:
    """A value (or, for a list of ``id:key`` entries, one of its keys) is a published one."""
    value = value.strip()
    if value in PUBLISHED_DEFAULTS:
        return True
    for entry in value.split(","):
        entry = entry.strip()
        if entry in PUBLISHED_DEFAULTS or entry.partition(":")[2].strip() in PUBLISHED_DEFAULTS:
            return True
    return False


def _setting(attribute: str) -> str:
    try:
        return str(getattr(settings, attribute, "") or "")
    except ImproperlyConfigured:  # Django refuses to hand out an empty SECRET_KEY
        return ""


def _secret_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for name, attribute in SECRET_SETTINGS:
        value = _setting(attribute)
        if not value.strip():
            errors.append(
                checks.Error(
                    f"{name} is not set: the production profile needs its own random key.",
                    hint=f"Set {name} in the environment (see .env.example for how to make one).",
                    id="videobank.E001",
                )
            )
        elif value_published(value):
            errors.append(
                checks.Error(
                    f"{name} still has a published default value: anyone can read it in the "
                    "project's code or documentation.",
                    hint=f"Set {name} to a random key of your own.",
                    id="videobank.E003",
                )
            )
    return errors


def _stub_path(url: str) -> str | None:
    path = urllib.parse.urlsplit(url.strip()).path.rstrip("/")
    return next((stub for stub in STUB_PATHS if path == stub or path.startswith(stub + "/")), None)


def _url_errors(name: str, urls: list[str], service: str) -> list[checks.CheckMessage]:
    urls = [u for u in urls if u and u.strip()]
    if not urls:
        return [
            checks.Error(
                f"{name} is not set: production needs the URL of the real {service}.",
                hint=f"Set {name} (see .env.example).",
                id="videobank.E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for url in urls:
        stub = _stub_path(url)
        if stub is not None:
            errors.append(
                checks.Error(
                    f"{name} points at the stub path {stub} ({url}): production talks to the "
                    f"real {service}, and its servers mount no stub.",
                    hint=f"Set {name} to the {service}'s URL.",
                    id="videobank.E002",
                )
            )
        elif urllib.parse.urlsplit(url.strip()).scheme not in ("http", "https"):
            errors.append(
                checks.Error(
                    f"{name}: {url!r} is not an http(s) URL.",
                    hint=f"Set {name} to the {service}'s URL.",
                    id="videobank.E004",
                )
            )
    return errors


def _turn_errors() -> list[checks.CheckMessage]:
    """TURN is optional (no TURN_URLS: no relay); its secret, when set, must be a secret."""
    if not value_published(_setting("TURN_SECRET")):
        return []
    return [
        checks.Error(
            "TURN_SECRET still has a published default value: anyone could mint TURN "
            "credentials and relay through the bank's TURN server.",
            hint="Set TURN_SECRET to the TURN server's own static-auth-secret.",
            id="videobank.E003",
        )
    ]


@checks.register(PRODUCTION_TAG, checks.Tags.security)
def production_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """On the production profile: keys set and unpublished, outside systems configured and not
    pointed at a stub path. The embedded profile (``make run``) is a local demo: not checked."""
    if getattr(settings, "PROFILE", "") != "production":
        return []
    channels = getattr(settings, "KYC_NATIONAL_CHANNELS", None) or []
    if isinstance(channels, str):
        channels = channels.split(",")
    return [
        *_secret_errors(),
        *_url_errors("COREBANK_URL", [getattr(settings, "COREBANK_URL", "") or ""], "core bank"),
        *_url_errors("KYC_NATIONAL_CHANNELS", list(channels), "national ID check service"),
        *_turn_errors(),
    ]


def production_refuse_unsafe(process: str) -> None:
    """Run the production checks here (daphne, Celery: processes that do not run Django's
    checks themselves) and refuse to go on with their messages."""
    errors = [
        message
        for message in checks.run_checks(tags=[PRODUCTION_TAG])
        if message.level >= checks.ERROR
    ]
    if errors:
        lines = "\n".join(f"  {m.id}: {m.msg} {m.hint or ''}".rstrip() for m in errors)
        raise ImproperlyConfigured(
            f"{process} refuses to start on the production profile:\n{lines}"
        )
