"""Settings shared by every profile. Every variable is documented in ``.env.example``."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("VIDEOBANK_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "videobank.apps.VideobankAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "videobank",
    "signaling",
    "queueing",
    "recordings",
    "kyc",
    "kyc.national",
    "kyc.national_stub",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "videobank.urls"
ASGI_APPLICATION = "videobank.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "videobank.i18n.language_context",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "zh-hans"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/console/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/console/login/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

# --- signaling -------------------------------------------------------------------------------
SIGNALING_MAX_FRAME_BYTES = 64 * 1024
# How long a customer token stays valid after the call was placed.
CUSTOMER_TOKEN_MAX_AGE_S = env.int("CUSTOMER_TOKEN_MAX_AGE_S", default=4 * 3600)

# ICE servers handed to browsers and to the media worker. JSON list of RTCIceServer dicts, e.g.
# [{"urls": ["turn:turn.bank.example:3478"], "username": "u", "credential": "p"}]
ICE_SERVERS = env.json("ICE_SERVERS", default=[])

# --- media -----------------------------------------------------------------------------------
# A media worker is considered alive while its heartbeat is younger than this.
MEDIA_WORKER_HEARTBEAT_S = 2.0
MEDIA_WORKER_STALE_S = 10.0

# --- recordings ------------------------------------------------------------------------------
RECORDING_DIR = Path(env.str("RECORDING_DIR", default=str(VAR_DIR / "recordings")))
RECORDING_SEGMENT_SECONDS = env.float("RECORDING_SEGMENT_SECONDS", default=10.0)
RECORDING_VIDEO_SIZE = (640, 480)
RECORDING_VIDEO_FPS = 15
RECORDING_KEY_BACKEND = env.str(
    "RECORDING_KEY_BACKEND", default="recordings.backends.keys.SettingsMasterKeys"
)
# Master keys: "id:base64key,id2:base64key2". The first is used to wrap new data keys; the others
# still unwrap older recordings (key rotation).
RECORDING_MASTER_KEYS = env.str("RECORDING_MASTER_KEYS", default="")

# --- demo --------------------------------------------------------------------------------------
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="videobank-demo")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}

# --- queue and routing -------------------------------------------------------------------------
QUEUE_OFFER_TIMEOUT_S = env.float("QUEUE_OFFER_TIMEOUT_S", default=15.0)
QUEUE_MAX_MISSED_OFFERS = env.int("QUEUE_MAX_MISSED_OFFERS", default=2)  # in a row → break
QUEUE_WRAP_UP_S = env.float("QUEUE_WRAP_UP_S", default=10.0)
QUEUE_MAX_WAIT_S = env.float("QUEUE_MAX_WAIT_S", default=300.0)  # then offer a callback
QUEUE_PREFER_SAME_TELLER_S = env.float("QUEUE_PREFER_SAME_TELLER_S", default=120.0)
# A teller who declined or missed a call is not offered that same call again for this long.
QUEUE_REOFFER_AFTER_S = env.float("QUEUE_REOFFER_AFTER_S", default=60.0)
QUEUE_DEFAULT_HANDLE_S = env.float("QUEUE_DEFAULT_HANDLE_S", default=180.0)
QUEUE_TICK_S = env.float("QUEUE_TICK_S", default=0.5)
# Where the queue ticker runs: "server" (a loop inside each daphne process: the embedded
# profile), "process" (its own process, `manage.py queue_ticker`: production, so that servers
# spend their time on what users wait for), "off" (tests that move time themselves).
QUEUE_TICKER = env.str("QUEUE_TICKER", default="server")
QUEUE_SERVICE_LEVEL_S = 20
