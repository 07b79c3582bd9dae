"""Embedded profile: one process, SQLite, in-memory channel layer, eager tasks.

What ``make run`` serves; nothing to configure.
"""

import os
import secrets
from typing import Any

from .base import *  # noqa: F403
from .base import (
    COREBANK_API_KEY,
    COREBANK_STUB_ADMIN_KEY,
    COREBANK_STUB_API_KEY,
    KYC_NATIONAL_API_KEY,
    NATIONAL_STUB_ADMIN_KEY,
    NATIONAL_STUB_API_KEY,
    VAR_DIR,
    env,
)

PROFILE = "embedded"
# `make run` may be reached by others on the network: Django's debug page (tracebacks,
# settings) only when asked for with DJANGO_DEBUG=true (base.py). Static files are still served
# by daphne (asgi.py: ASGIStaticFilesHandler, whatever DEBUG says).
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="embedded-profile-not-secret")

DATABASES: dict[str, Any] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "videobank.sqlite3")),
        "OPTIONS": {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
            # Writers take the lock up front instead of failing on upgrade ("database is locked").
            "transaction_mode": "IMMEDIATE",
        },
        # A file, not :memory:, so that test servers started as subprocesses share it.
        # One per test run, so that runs side by side do not share (and break) a file.
        "TEST": {
            "NAME": env.str(
                "SQLITE_TEST_PATH", default=str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
            )
        },
    }
}

CHANNEL_LAYERS: dict[str, Any] = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The media worker runs inside the server process.
MEDIA_WORKER_EMBEDDED = True

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"

# The outside systems' stand-ins, mounted in this server (videobank/urls.py) at the port `make run`
# serves. Their keys are made for this process when not set: nothing published opens them, and the
# bank's client and the mounted stub (one process) share them. The stubs' developer endpoints
# need the admin keys: set them to flip a fault by hand.
COREBANK_URL = env.str("COREBANK_URL", default="http://127.0.0.1:8000/ext/core-bank/v1")
COREBANK_API_KEY = COREBANK_API_KEY or COREBANK_STUB_API_KEY or secrets.token_urlsafe(32)
COREBANK_STUB_API_KEY = COREBANK_STUB_API_KEY or COREBANK_API_KEY
COREBANK_STUB_ADMIN_KEY = COREBANK_STUB_ADMIN_KEY or secrets.token_urlsafe(32)
KYC_NATIONAL_CHANNELS = env.list(
    "KYC_NATIONAL_CHANNELS",
    default=[
        "http://127.0.0.1:8000/ext/national-id/v1/primary",
        "http://127.0.0.1:8000/ext/national-id/v1/secondary",
    ],
)
KYC_NATIONAL_API_KEY = KYC_NATIONAL_API_KEY or NATIONAL_STUB_API_KEY or secrets.token_urlsafe(32)
NATIONAL_STUB_API_KEY = NATIONAL_STUB_API_KEY or KYC_NATIONAL_API_KEY
NATIONAL_STUB_ADMIN_KEY = NATIONAL_STUB_ADMIN_KEY or secrets.token_urlsafe(32)
