"""Production profile: Postgres, Redis channel layer, Celery workers, separate media workers."""

from typing import Any

import dj_database_url

from .base import *  # noqa: F403
from .base import env

PROFILE = "production"
# Keys, outside systems: no defaults. Every process refuses to start (a system check error naming
# the setting: videobank/checks.py) while one is unset, a published value or a stub path. The
# test harness gives its processes random keys of a session (tests/keys.py).
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")

# --- HTTPS ------------------------------------------------------------------------------------
# Served over HTTPS only: plain HTTP is redirected (except the load balancer's health check),
# browsers are told to keep to HTTPS (HSTS) and cookies never travel in clear. Behind a
# TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER (base.py), or every request looks
# like plain HTTP and is redirected forever. Each one can be turned off (e.g. a test server on
# plain HTTP on loopback); `check --deploy` then says which.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=True)

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/videobank"),
        conn_max_age=60,
    )
}

REDIS_URL = env.str("REDIS_URL")
CHANNEL_LAYERS: dict[str, Any] = {
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
