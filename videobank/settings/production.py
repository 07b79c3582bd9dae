"""Production profile: Postgres, Redis channel layer, Celery workers, separate media workers."""

import dj_database_url

from .base import *  # noqa: F403
from .base import (
    COREBANK_STUB_KEYS,
    KYC_NATIONAL_KEYS,
    RECORDING_MASTER_KEYS,
    WORKFLOW_RECEIPT_KEYS,
    env,
)

PROFILE = "production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if env.bool("VIDEOBANK_INSECURE_TEST_KEYS", default=False):
        SECRET_KEY = "test-only-secret-key"  # noqa: S105 - only under the test harness
    else:
        raise RuntimeError("DJANGO_SECRET_KEY must be set on the production profile")

DATABASES = {
    "default": dj_database_url.parse(
        env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/videobank"),
        conn_max_age=60,
    )
}

REDIS_URL = env.str("REDIS_URL")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults socket_timeout to 5 s, which cuts channels_redis's 5 s blocking
            # BZPOPMIN short and tears down every idle socket; allow the block plus a margin.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

# Media runs in its own worker processes (``manage.py media_worker``).
MEDIA_WORKER_EMBEDDED = env.bool("MEDIA_WORKER_EMBEDDED", default=False)
# The queue ticker is its own process too (``manage.py queue_ticker``; see queueing/ticker.py).
QUEUE_TICKER = env.str("QUEUE_TICKER", default="process")
# A real VTM's peripherals report themselves; the simulated ones are for demos.
KIOSK_SIMULATOR = env.bool("KIOSK_SIMULATOR", default=False)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

if env.bool("VIDEOBANK_INSECURE_TEST_KEYS", default=False):
    # Fixed, public keys for the test harness only; a real deployment sets its own.
    if not RECORDING_MASTER_KEYS:
        RECORDING_MASTER_KEYS = "test:" + "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="
    if not WORKFLOW_RECEIPT_KEYS:
        WORKFLOW_RECEIPT_KEYS = "test:" + "dGVzdC1vbmx5LXJlY2VpcHQta2V5LTMyLWJ5dGVzISE="
    if not KYC_NATIONAL_KEYS:
        KYC_NATIONAL_KEYS = "test:" + "dGVzdC1vbmx5LW5hdGlvbmFsLWtleS0zMi1ieXRlcyE="
    if not COREBANK_STUB_KEYS:
        COREBANK_STUB_KEYS = "test:" + "dGVzdC1vbmx5LWNvcmViYW5rLXN0dWIta2V5LTMyYnk="
