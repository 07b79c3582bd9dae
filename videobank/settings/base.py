"""Settings shared by every profile. Every variable is documented in ``.env.example``."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("VIDEOBANK_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Django's debug page (tracebacks, settings) only when asked for, on every profile.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# Other origins (scheme://host[:port]) trusted for forms and for the signaling sockets.
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
    "csp",
    "axes",
    "videobank",
    "signaling",
    "queueing",
    "recordings",
    "kyc",
    "kyc.national",
    "kyc.national_stub",
    "workflows",
    "workflows.corebank",
    "workflows.corebank_stub",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "videobank.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A refusal a view raises (videobank/errors.py AppError) answered in words, JSON or a page.
    "videobank.http_errors.AppErrorMiddleware",
    # Last: turns a locked-out sign-in into the sign-in page saying so (see "staff sign-in").
    "axes.middleware.AxesMiddleware",
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
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- staff sign-in and sessions ---------------------------------------------------------------
# Only staff sign in (customers are anonymous, bound to their call by a token). Repeated wrong
# passwords lock that user name from that address for a while (django-axes; the sign-in page
# says so in words); a successful sign-in clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("STAFF_LOGIN_FAILURE_LIMIT", default=5)
# Minutes a lock lasts (each further try during it starts it again); 0: until an admin unlocks
# it (admin: Access attempts, or `manage.py axes_reset_username`).
_login_cooloff_min = env.int("STAFF_LOGIN_COOLOFF_MIN", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=_login_cooloff_min) if _login_cooloff_min > 0 else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "signaling.views.login_locked"
# A staff session ends after this long without a request (or a message on a staff socket);
# the cookie lives as long as the browser, the server's expiry date is the idle clock.
STAFF_SESSION_IDLE_S = env.int("STAFF_SESSION_IDLE_S", default=1800)
SESSION_COOKIE_AGE = STAFF_SESSION_IDLE_S
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

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

# --- HTTP request bodies ---------------------------------------------------------------------
# Bodies over this are refused (413, in words) by an ASGI guard before Django reads them
# (videobank/body_limit.py): a declared Content-Length at once, a chunked body as it streams.
# Room for the 10 MB card picture of /kyc/upload/ and its form.
HTTP_BODY_MAX_BYTES = env.int("HTTP_BODY_MAX_BYTES", default=12 * 1024 * 1024)
# Django's own limits, a second line: form fields and request.body reads above this are refused;
# uploaded files above this are spooled to a temporary file instead of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# --- HTTP security headers ----------------------------------------------------------------------
# HTTPS itself (redirect, HSTS, secure cookies) is the production profile's; these hold everywhere.
X_FRAME_OPTIONS = "DENY"  # nothing (the PIN pad least of all) can be framed by another site
SECURE_REFERRER_POLICY = "same-origin"  # receipts, whose address holds a token: no-referrer
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (the header the proxy sets,
# and its value for HTTPS). Trusted for requests and for the sockets' Origin check alike.
_proxy_ssl_header = env.list("DJANGO_SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None
USE_X_FORWARDED_HOST = env.bool("DJANGO_USE_X_FORWARDED_HOST", default=False)
# Content-Security-Policy (django-csp), on every page: scripts, styles and everything else from
# this site only, no inline script or style; the signaling socket of this host is added per
# request (videobank/csp.py). No page may be framed, nor post a form elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],  # data: for the empty favicon
        "media-src": ["'self'"],  # the QA replay; live video is a MediaStream (no URL)
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- signaling -------------------------------------------------------------------------------
SIGNALING_MAX_FRAME_BYTES = 64 * 1024
# How long a customer token stays valid after the call was placed.
CUSTOMER_TOKEN_MAX_AGE_S = env.int("CUSTOMER_TOKEN_MAX_AGE_S", default=4 * 3600)
# ... and after its call ended: then it resumes, uploads, reads nothing (queueing/access.py).
CUSTOMER_TOKEN_AFTER_END_S = env.int("CUSTOMER_TOKEN_AFTER_END_S", default=120)

# Signed app claims (signaling/access.py): the bank's app backend signs, per call, "this is our
# app on device D, VIP yes/no" with HMAC-SHA256; only such a claim makes a call `app` (and VIP).
# "id:base64key,id2:base64key2" (keys of 32+ bytes), newest first: the first signs, all verify.
# Empty: no app claims are taken (the embedded profile keeps its own key in VAR_DIR for the demo).
APP_CLAIM_KEYS = env.str("APP_CLAIM_KEYS", default="")
# The longest validity a claim may carry (iat to exp); a longer one is refused.
APP_CLAIM_MAX_TTL_S = env.int("APP_CLAIM_MAX_TTL_S", default=300)

# ICE (signaling/ice.py). STUN needs no credential: its URLs go to every socket and to the media
# worker. TURN relays media, so its credentials are short-lived (the TURN REST API as coturn
# implements it with use-auth-secret: user name "<expiry>:<call id>", password
# base64(HMAC-SHA1(TURN_SECRET, user name))) and handed only to the two sides of a call being
# connected, never in `hello`.
STUN_URLS = env.list("STUN_URLS", default=[])
TURN_URLS = env.list("TURN_URLS", default=[])
TURN_SECRET = env.str("TURN_SECRET", default="")
TURN_TTL_S = env.int("TURN_TTL_S", default=600)  # at most 600 (a system check says so)

# --- media -----------------------------------------------------------------------------------
# The media engine (dotted path of its worker class): it speaks the contract of
# videobank/media_contract.py (docs/media-engine.md). The aiortc engine on both profiles.
MEDIA_ENGINE = env.str("MEDIA_ENGINE", default="signaling.media.worker.MediaWorker")
# A media worker beats every HEARTBEAT_S and is considered alive while its last beat is younger
# than STALE_S: how soon its calls stop being routed to it and its recordings are swept after it
# died. STALE_S must cover three beats (a busy worker's beat can be late; a system check says so).
MEDIA_WORKER_HEARTBEAT_S = env.float("MEDIA_WORKER_HEARTBEAT_S", default=2.0)
MEDIA_WORKER_STALE_S = env.float("MEDIA_WORKER_STALE_S", default=10.0)

# --- recordings ------------------------------------------------------------------------------
RECORDING_DIR = Path(env.str("RECORDING_DIR", default=str(VAR_DIR / "recordings")))
RECORDING_SEGMENT_SECONDS = env.float("RECORDING_SEGMENT_SECONDS", default=10.0)
RECORDING_VIDEO_SIZE = (640, 480)
RECORDING_VIDEO_FPS = 15
RECORDING_KEY_BACKEND = env.str(
    "RECORDING_KEY_BACKEND", default="videobank.keys.SettingsMasterKeys"
)
# Master keys: "id:base64key,id2:base64key2". The first is used to wrap new data keys; the others
# still unwrap older recordings (key rotation).
RECORDING_MASTER_KEYS = env.str("RECORDING_MASTER_KEYS", default="")
# QA replay (recordings/replay.py): a side is decrypted into memory once and kept this long / up
# to this many bytes in all (per server process), so seeking does not decrypt it again.
REPLAY_CACHE_S = env.int("REPLAY_CACHE_S", default=300)
REPLAY_CACHE_BYTES = env.int("REPLAY_CACHE_BYTES", default=256 * 1024 * 1024)
# A replay link (the media URLs in the QA console's page) is good for this long.
REPLAY_GRANT_S = env.int("REPLAY_GRANT_S", default=3600)
# The recordings sweep (a housekeeping job of the queue ticker, videobank/events.py) seals as
# incomplete, with the reason, a recording left open: its call ended RECORDING_SWEEP_GRACE_S ago
# (at once if its media worker's heartbeat is stale), or its call is open but its media worker
# has been silent RECORDING_SWEEP_STALE_S.
RECORDING_SWEEP_GRACE_S = env.float("RECORDING_SWEEP_GRACE_S", default=60.0)
RECORDING_SWEEP_STALE_S = env.float("RECORDING_SWEEP_STALE_S", default=600.0)

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
        # django-axes announces its configuration at every start; its lockouts are warnings.
        "axes.apps": {"level": "WARNING"},
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
# How often the ticker runs the other apps' housekeeping (a dead media worker's recordings
# sealed, expired grants dropped...).
QUEUE_HOUSEKEEPING_S = env.float("QUEUE_HOUSEKEEPING_S", default=10.0)
# Where the queue ticker runs: "server" (a loop inside each daphne process: the embedded
# profile), "process" (its own process, `manage.py queue_ticker`: production, so that servers
# spend their time on what users wait for), "off" (tests that move time themselves).
QUEUE_TICKER = env.str("QUEUE_TICKER", default="server")
QUEUE_SERVICE_LEVEL_S = 20

# --- the anonymous side's limits (queueing/limits.py; counted in Redis on production) -------------
# `call.request`s admitted per client address (IPv6: per /64) and per device, in any window of
# QUEUE_CALL_REQUEST_WINDOW_S seconds; 0 = no limit. Behind a load balancer, daphne must see the
# customer's address (`daphne --proxy-headers`), or every customer shares the balancer's.
QUEUE_CALL_REQUESTS_PER_IP = env.int("QUEUE_CALL_REQUESTS_PER_IP", default=3)
QUEUE_CALL_REQUESTS_PER_DEVICE = env.int("QUEUE_CALL_REQUESTS_PER_DEVICE", default=3)
QUEUE_CALL_REQUEST_WINDOW_S = env.int("QUEUE_CALL_REQUEST_WINDOW_S", default=60)
# Calls open at once (waiting, ringing or connected) per client address and per device; 0 = no
# limit.
QUEUE_OPEN_CALLS_PER_IP = env.int("QUEUE_OPEN_CALLS_PER_IP", default=1)
QUEUE_OPEN_CALLS_PER_DEVICE = env.int("QUEUE_OPEN_CALLS_PER_DEVICE", default=1)
# Waiting calls in all; beyond it a customer is offered a callback instead of a place.
QUEUE_MAX_WAITING = env.int("QUEUE_MAX_WAITING", default=1000)
# Elderly/accessibility claims honoured per client address in any window of
# QUEUE_PRIORITY_CLAIM_WINDOW_S; more are queued as normal calls (and told so).
QUEUE_PRIORITY_CLAIMS_PER_IP = env.int("QUEUE_PRIORITY_CLAIMS_PER_IP", default=2)
QUEUE_PRIORITY_CLAIM_WINDOW_S = env.int("QUEUE_PRIORITY_CLAIM_WINDOW_S", default=3600)
# The identity check's birth date confirms an elderly claim from this age, withdraws it below.
QUEUE_PRIORITY_MIN_AGE = env.int("QUEUE_PRIORITY_MIN_AGE", default=60)
# A teller's waiting list shows the first N calls and the count per business, never the whole
# queue.
QUEUE_SNAPSHOT_CALLS = env.int("QUEUE_SNAPSHOT_CALLS", default=20)

# --- identity checks (kyc/) -------------------------------------------------------------------
# OCR engine: PP-OCR models through ONNX Runtime (rapidocr wheel, offline), or PaddleOCR itself
# with local model directories (`pip install .[paddle]`, then KYC_PADDLE_MODEL_DIR).
KYC_OCR_BACKEND = env.str("KYC_OCR_BACKEND", default="kyc.backends.ocr_rapid.RapidOcrEngine")
# Threads one OCR reading may use (ONNX Runtime's intra-op threads); 0: as many as there are
# cores. Where several processes analyse at once (Celery workers, parallel tests) 1 is faster:
# two readings at once on 2 cores took 1.09 s each with 0 and 0.67 s with 1.
KYC_OCR_THREADS = env.int("KYC_OCR_THREADS", default=0)
KYC_PADDLE_MODEL_DIR = env.str("KYC_PADDLE_MODEL_DIR", default="")
KYC_PADDLE_DET_MODEL = env.str("KYC_PADDLE_DET_MODEL", default="PP-OCRv5_mobile_det")
KYC_PADDLE_REC_MODEL = env.str("KYC_PADDLE_REC_MODEL", default="PP-OCRv5_mobile_rec")
# Face match (kyc/faces.py; the threshold is measured by bench/face_threshold.py).
KYC_FACE_BACKEND = env.str("KYC_FACE_BACKEND", default="kyc.backends.face_dlib.DlibFaceEngine")
KYC_FACE_MATCH_THRESHOLD = env.float("KYC_FACE_MATCH_THRESHOLD", default=0.52)
KYC_FACE_MATCH_CEILING = env.float("KYC_FACE_MATCH_CEILING", default=0.60)
KYC_FACE_MIN_FRAMES = env.int("KYC_FACE_MIN_FRAMES", default=3)
KYC_FACE_MIN_SIZE_PX = env.int("KYC_FACE_MIN_SIZE_PX", default=80)
KYC_FACE_CARD_MIN_SIZE_PX = env.int("KYC_FACE_CARD_MIN_SIZE_PX", default=48)
KYC_LIVENESS_SECONDS = env.float("KYC_LIVENESS_SECONDS", default=15.0)
# A passed identity check serves the call's businesses for this long.
KYC_RESULT_TTL_S = env.float("KYC_RESULT_TTL_S", default=1800.0)
# A call's card uploads (/kyc/upload/) counted in the database over a sliding minute: beyond this
# the customer is told to wait (429, in words) and nothing is decoded.
KYC_UPLOAD_MAX_PER_MINUTE = env.int("KYC_UPLOAD_MAX_PER_MINUTE", default=6)
# Face match: this many frames, at random moments within the next KYC_FACE_SPREAD_S seconds
# (KYC_FACE_MIN_FRAMES of them must show one clear face: one bad frame is forgiven).
KYC_FACE_FRAMES = env.int("KYC_FACE_FRAMES", default=4)
KYC_FACE_SPREAD_S = env.float("KYC_FACE_SPREAD_S", default=3.0)
# Liveness: frames per second sampled during the challenge, after a neutral lead-in.
KYC_LIVENESS_FPS = env.int("KYC_LIVENESS_FPS", default=5)
KYC_LIVENESS_LEAD_IN_MS = env.int("KYC_LIVENESS_LEAD_IN_MS", default=1500)
# ...and this long after the last prompt: a slow link or a busy encoder delays the video that
# much, and the customer's last move must still be in the frames looked at.
KYC_LIVENESS_TAIL_MS = env.int("KYC_LIVENESS_TAIL_MS", default=1500)
# Businesses for which a cached national-ID pass is never reused.
KYC_HIGH_RISK_BUSINESSES = env.list(
    "KYC_HIGH_RISK_BUSINESSES", default=["corporate_account", "account_change", "transfer"]
)
# The kiosk page's simulated peripherals (card reader, printer...): for demos and tests only.
KIOSK_SIMULATOR = env.bool("KIOSK_SIMULATOR", default=True)

# --- businesses in the call (workflows/) -------------------------------------------------------
# A high-risk business needs a face match younger than this (else one is requested at once).
KYC_FACE_FRESH_S = env.float("KYC_FACE_FRESH_S", default=300.0)
# Transfers above this amount (CNY) are high-risk.
WORKFLOW_TRANSFER_FACE_LIMIT = env.str("WORKFLOW_TRANSFER_FACE_LIMIT", default="50000.00")
# "I have read and agree" is refused sooner than this after the agreement is shown.
WORKFLOW_AGREEMENT_MIN_READ_MS = env.int("WORKFLOW_AGREEMENT_MIN_READ_MS", default=2000)
# Keys of the receipts' verification codes, integrity seals and link tokens (videobank/keyring.py:
# "id:base64(32 bytes)", newest first, older ones still verify). Empty: the embedded profile keeps
# a random key in VAR_DIR; production refuses. Never derived from SECRET_KEY.
WORKFLOW_RECEIPT_KEYS = env.str("WORKFLOW_RECEIPT_KEYS", default="")
# A receipt's link on the customer's screen (its own token, not the call's) opens it this long.
WORKFLOW_RECEIPT_LINK_MAX_AGE_S = env.int("WORKFLOW_RECEIPT_LINK_MAX_AGE_S", default=24 * 3600)
# The bank's core system (an outside service; workflows/corebank_stub is its stand-in). Every
# submission carries an idempotency key; during an outage it is retried with back-off.
# No defaults here: the embedded profile points them at the stub it mounts; production refuses to
# start without them (videobank/checks.py).
COREBANK_URL = env.str("COREBANK_URL", default="")
COREBANK_API_KEY = env.str("COREBANK_API_KEY", default="")
COREBANK_TIMEOUT_S = env.float("COREBANK_TIMEOUT_S", default=3.0)
COREBANK_RETRY_BACKOFF_S = env.float("COREBANK_RETRY_BACKOFF_S", default=1.0)
COREBANK_RETRY_MAX_BACKOFF_S = env.float("COREBANK_RETRY_MAX_BACKOFF_S", default=60.0)
COREBANK_MAX_RETRIES = env.int("COREBANK_MAX_RETRIES", default=15)
# Within one attempt (videobank/outside/http.py): tries more of a transient failure (a lookup, an
# operation under its key; never a PIN challenge or entry after it was sent), from this back-off.
COREBANK_HTTP_RETRIES = env.int("COREBANK_HTTP_RETRIES", default=0)
COREBANK_HTTP_RETRY_BACKOFF_S = env.float("COREBANK_HTTP_RETRY_BACKOFF_S", default=0.2)
# The core's circuit breaker (per process): open after this many missed answers in a row (0: no
# breaker); calls then fail at once, in words, until a trial call after the cool-down.
COREBANK_BREAKER_FAILURES = env.int("COREBANK_BREAKER_FAILURES", default=5)
COREBANK_BREAKER_COOLDOWN_S = env.float("COREBANK_BREAKER_COOLDOWN_S", default=30.0)
# The stub's own keys (read by the stub, mounted or as its own process): the key its callers
# present, and the admin key of its developer endpoints (fault switches, the last one-time code).
COREBANK_STUB_API_KEY = env.str("COREBANK_STUB_API_KEY", default="")
COREBANK_STUB_ADMIN_KEY = env.str("COREBANK_STUB_ADMIN_KEY", default="")
COREBANK_STUB_LATENCY_MS = env.int("COREBANK_STUB_LATENCY_MS", default=100)
COREBANK_STUB_JITTER_MS = env.int("COREBANK_STUB_JITTER_MS", default=30)
COREBANK_STUB_ERROR_RATE = env.float("COREBANK_STUB_ERROR_RATE", default=0.0)
# The core-bank stub's own keys: its PIN key pair and SMS outbox at rest (same form and rules).
COREBANK_STUB_KEYS = env.str("COREBANK_STUB_KEYS", default="")
# The national online ID check (an outside service; kyc/national_stub is its stand-in): two
# channels, tried in order. The embedded profile points them at the stub it mounts at
# /ext/national-id/; production refuses to start without them.
KYC_NATIONAL_CHANNELS = env.list("KYC_NATIONAL_CHANNELS", default=[])
KYC_NATIONAL_API_KEY = env.str("KYC_NATIONAL_API_KEY", default="")
KYC_NATIONAL_TIMEOUT_S = env.float("KYC_NATIONAL_TIMEOUT_S", default=2.0)
KYC_NATIONAL_RETRY_BACKOFF_S = env.float("KYC_NATIONAL_RETRY_BACKOFF_S", default=0.5)
KYC_NATIONAL_MAX_RETRIES = env.int("KYC_NATIONAL_MAX_RETRIES", default=3)
# Within one attempt, per channel: tries more of a transient failure before failing over (0: the
# next channel is the quick retry), and a circuit breaker per channel (per process): a channel
# that missed this many answers in a row is skipped at once until a trial after the cool-down.
KYC_NATIONAL_HTTP_RETRIES = env.int("KYC_NATIONAL_HTTP_RETRIES", default=0)
KYC_NATIONAL_HTTP_RETRY_BACKOFF_S = env.float("KYC_NATIONAL_HTTP_RETRY_BACKOFF_S", default=0.2)
KYC_NATIONAL_BREAKER_FAILURES = env.int("KYC_NATIONAL_BREAKER_FAILURES", default=5)
KYC_NATIONAL_BREAKER_COOLDOWN_S = env.float("KYC_NATIONAL_BREAKER_COOLDOWN_S", default=30.0)
KYC_NATIONAL_CACHE_S = env.float("KYC_NATIONAL_CACHE_S", default=600.0)
# Keys that seal a national check's query until it is answered and key the hashes that match a
# person (same form and rules as WORKFLOW_RECEIPT_KEYS).
KYC_NATIONAL_KEYS = env.str("KYC_NATIONAL_KEYS", default="")
# The stub's own knobs (its process reads them; tests and demos flip them at run time through
# its /v1/_control developer endpoint, which needs NATIONAL_STUB_ADMIN_KEY).
NATIONAL_STUB_API_KEY = env.str("NATIONAL_STUB_API_KEY", default="")
NATIONAL_STUB_ADMIN_KEY = env.str("NATIONAL_STUB_ADMIN_KEY", default="")
NATIONAL_STUB_LATENCY_MS = env.int("NATIONAL_STUB_LATENCY_MS", default=300)
NATIONAL_STUB_JITTER_MS = env.int("NATIONAL_STUB_JITTER_MS", default=100)
NATIONAL_STUB_ERROR_RATE = env.float("NATIONAL_STUB_ERROR_RATE", default=0.0)
