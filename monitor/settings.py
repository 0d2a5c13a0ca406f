"""Argus settings: everything a deployment changes comes from the environment (see .env.example)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from monitor.csp import CSP
from monitor.env import env_bool, env_choice, env_float, env_int, env_list, env_secret, env_str, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
load_env_file(BASE_DIR / env_str("ARGUS_ENV_FILE", ".env"))
VAR_DIR = Path(env_str("ARGUS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# A fixed key is only acceptable for local runs; production must set SECRET_KEY or SECRET_KEY_FILE.
SECRET_KEY = env_secret("SECRET_KEY", "insecure-dev-key-change-me" if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is empty; set it (or SECRET_KEY_FILE), see .env.example")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",  # API tokens for integrations (ships its own migration)
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, no CDN
    "monitor",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "monitor.csp.ContentSecurityPolicyMiddleware",  # Django 6.0's own once Argus is on Python 3.12
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "monitor.urls"
ASGI_APPLICATION = "monitor.asgi.application"
WSGI_APPLICATION = "monitor.wsgi.application"

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
                "monitor.csp.context_processor",  # csp_nonce
            ],
        },
    },
]

# Postgres via psycopg 3 when DATABASE_URL is set; an SQLite file otherwise (the embedded default).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'argus.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        # A persistent connection is checked before a request reuses it, so one that died with a
        # database restart is replaced instead of failing the request (0 = a new one per request).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite cannot create the folder of its file
    # Worker, web and test processes share the file: wait for locks instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # A file (not :memory:) so that test servers in other processes see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-argus.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The API (dashboard/api/): tokens for integrations, the dashboard's session (CSRF-checked) for
# browsers. Token first, so an anonymous call gets 401 with a WWW-Authenticate header.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every API view narrows this to site roles (dashboard.api.scoping.SiteRolePermission).
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser, but NaN, 1e999 and 10,000-deep nesting are a 400 instead of a 500.
    "DEFAULT_PARSER_CLASSES": ["dashboard.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "dashboard.api.pagination.NewestFirst",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Argus API",
    "DESCRIPTION": "Cameras, zones, rules, incidents, events and notifications of the sites you belong to.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,  # write-only fields (webhook secrets) only in request schemas
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Login brute-force protection (dashboard/auth.py): failures per client address and username.
ARGUS_LOGIN_MAX_FAILURES = env_int("ARGUS_LOGIN_MAX_FAILURES", 5, minimum=1)
ARGUS_LOGIN_LOCKOUT_SECONDS = env_int("ARGUS_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# How many proxies in front of Argus append to X-Forwarded-For (0: trust none, use the peer address).
ARGUS_TRUSTED_PROXY_HOPS = env_int("ARGUS_TRUSTED_PROXY_HOPS", 0, minimum=0)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
# Serve static files from the app folders too, so a run without `collectstatic` still has its CSS/JS.
WHITENOISE_USE_FINDERS = True
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.vendor.VendorFinder",  # plotly.min.js from the pinned plotly package, no CDN
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Redis is both the Celery broker and the Channels layer.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Shared by every web process (login failure counters).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

CHANNEL_LAYERS = {
    "default": {
        # See monitor/channel_layer.py: a receive that blocks less than redis-py's read timeout.
        "BACKEND": "monitor.channel_layer.ArgusChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 500, "expiry": 30},
    }
}

# Celery: see monitor/celery.py for why each of these matters when a worker is killed.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
ARGUS_TASK_MAX_DELIVERIES = env_int("ARGUS_TASK_MAX_DELIVERIES", 3, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than the longest task (a camera slice), else Redis redelivers a task still running.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    # Priorities 0 (first) to 9 within a queue: live cameras, then re-runs, then new video jobs.
    "priority_steps": list(range(10)),
    "queue_order_strategy": "priority",
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Camera slices and video jobs hold a pool slot for minutes; on their own queue they cannot keep
# beat's short tasks (dispatch, sweeps, notifications) waiting. A worker started without -Q
# consumes both; runstack and docker-compose run one worker per queue.
ARGUS_ANALYSIS_QUEUE = env_str("ARGUS_ANALYSIS_QUEUE", "analysis")
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(ARGUS_ANALYSIS_QUEUE))
CELERY_TASK_ROUTES = {
    "detection.tasks.analyse_camera": {"queue": ARGUS_ANALYSIS_QUEUE},
    "detection.tasks.analyse_video": {"queue": ARGUS_ANALYSIS_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "dispatch-cameras": {
        "task": "detection.tasks.dispatch_cameras",
        "schedule": env_float("ARGUS_DISPATCH_EVERY_SECONDS", 5.0),
    },
    "sweep-video-jobs": {
        "task": "detection.tasks.sweep_video_jobs",
        "schedule": env_float("ARGUS_DISPATCH_EVERY_SECONDS", 5.0),
    },
    "apply-retention": {
        "task": "monitor.tasks.apply_retention",
        "schedule": env_float("ARGUS_RETENTION_EVERY_SECONDS", 3600.0),
    },
    "relay-notifications": {
        "task": "monitor.tasks.relay_notifications",
        "schedule": env_float("ARGUS_RELAY_EVERY_SECONDS", 5.0, minimum=0.5),
        # A pass still queued when the next one is due is useless: drop it rather than pile up.
        "options": {"expires": env_float("ARGUS_RELAY_EVERY_SECONDS", 5.0, minimum=0.5)},
    },
}

# Camera analysis.
# auto: the localizer (detection/localizer) when its default checkpoint loads in the worker, else
# ssdlite, else hog, each fallback logged; the web process never loads a model to decide it.
ARGUS_DETECTOR = env_str("ARGUS_DETECTOR", "auto")
# The localizer checkpoint the worker loads (relative: to BASE_DIR); empty: the committed default. E.g. one written by
# `python -m detection.calibrate rec.mp4 --write ours.pt` (start score tuned on your cameras).
ARGUS_LOCALIZER_CHECKPOINT = env_str("ARGUS_LOCALIZER_CHECKPOINT", "")
# Compute threads (torch, OpenCV) per worker process. One: a worker runs one process per camera,
# and processes that each spread over every core slow each other down (measured in BENCHMARKS.md).
# Raise it only for a worker with one process and cores to spare.
ARGUS_WORKER_THREADS = env_int("ARGUS_WORKER_THREADS", 1, minimum=1)
ARGUS_CAMERA_SLICE_SECONDS = env_int("ARGUS_CAMERA_SLICE_SECONDS", 300, minimum=5)
ARGUS_CAMERA_LEASE_SECONDS = env_int("ARGUS_CAMERA_LEASE_SECONDS", 30, minimum=5)
ARGUS_CAMERA_RETRY_MAX_SECONDS = env_int("ARGUS_CAMERA_RETRY_MAX_SECONDS", 300, minimum=1)
# Recorded videos (monitor/video_jobs.py): a run renews its lease this often / 3; a job whose worker
# died this many times is failed; a queued job nobody took within REQUEUE seconds is sent again.
ARGUS_VIDEO_JOB_LEASE_SECONDS = env_int("ARGUS_VIDEO_JOB_LEASE_SECONDS", 30, minimum=3)
ARGUS_VIDEO_JOB_MAX_ATTEMPTS = env_int("ARGUS_VIDEO_JOB_MAX_ATTEMPTS", 3, minimum=1)
ARGUS_VIDEO_JOB_REQUEUE_SECONDS = env_int("ARGUS_VIDEO_JOB_REQUEUE_SECONDS", 300, minimum=1)
# How long a worker waits for an unreachable database (retrying, holding its place in the video)
# before it gives the run up; the run is re-queued once the database is back.
ARGUS_DB_OUTAGE_TOLERANCE_SECONDS = env_float("ARGUS_DB_OUTAGE_TOLERANCE_SECONDS", 120.0, minimum=0.0)
# A worker reconnects a dropped camera itself, waiting at most this long between attempts (full
# jitter below it), so a camera is back within a few seconds of its server's return.
ARGUS_CAMERA_RECONNECT_MAX_SECONDS = env_float("ARGUS_CAMERA_RECONNECT_MAX_SECONDS", 3.0, minimum=0.1)
# Opening a stream gives up after this (reads give up after the camera's stall timeout).
ARGUS_SOURCE_OPEN_TIMEOUT_SECONDS = env_float("ARGUS_SOURCE_OPEN_TIMEOUT_SECONDS", 10.0, minimum=0.5)
# A video whose declared picture (width * height) is larger than this is refused before decoding
# (a hostile or broken header could make the decoder allocate gigabytes). Default: 8K UHD.
ARGUS_MAX_SOURCE_PIXELS = env_int("ARGUS_MAX_SOURCE_PIXELS", 7680 * 4320, minimum=1)
# RTSP over tcp (survives NAT and loss) or udp; a server that refuses TCP is retried over UDP.
ARGUS_RTSP_TRANSPORT = env_choice("ARGUS_RTSP_TRANSPORT", "tcp", ("tcp", "udp"))
# Hardware decoding on GPU workers: an FFmpeg device type (cuda, vaapi, qsv, ...); empty = software.
# A device this worker cannot use falls back to software decoding, with a warning.
ARGUS_HWACCEL = env_str("ARGUS_HWACCEL", "")

# Retention (monitor/retention.py). Ages and disk budgets are per site (Site.retention_days,
# Site.media_budget_mb); this guards the media filesystem as a whole: below it, oldest media goes.
ARGUS_MEDIA_MIN_FREE_MB = env_int("ARGUS_MEDIA_MIN_FREE_MB", 2048, minimum=0)

# Uploaded videos for analysis (admin "Or upload a video").
ARGUS_MAX_UPLOAD_MB = env_int("ARGUS_MAX_UPLOAD_MB", 2048, minimum=1)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "argus@localhost")
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.5)

# Notifications (monitor/notify/, README "Notifications").
# Links in emails and webhooks point here (the dashboard as its users reach it).
ARGUS_PUBLIC_URL = env_str("ARGUS_PUBLIC_URL", "http://127.0.0.1:8000")
ARGUS_WEBHOOK_CONNECT_TIMEOUT_SECONDS = env_float("ARGUS_WEBHOOK_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1)
ARGUS_WEBHOOK_READ_TIMEOUT_SECONDS = env_float("ARGUS_WEBHOOK_READ_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# Webhooks may not reach private, loopback, link-local, CGNAT, multicast or reserved addresses
# (SSRF). A deployment-wide switch, not a site setting: site admins must not be able to lift it.
ARGUS_WEBHOOK_ALLOW_PRIVATE = env_bool("ARGUS_WEBHOOK_ALLOW_PRIVATE", False)
# Retries: exponential backoff with jitter from BASE to MAX between attempts, dead after GIVE_UP_HOURS.
ARGUS_NOTIFY_RETRY_BASE_SECONDS = env_float("ARGUS_NOTIFY_RETRY_BASE_SECONDS", 30.0, minimum=0.01)
ARGUS_NOTIFY_RETRY_MAX_SECONDS = env_float("ARGUS_NOTIFY_RETRY_MAX_SECONDS", 7200.0, minimum=0.01)
ARGUS_NOTIFY_GIVE_UP_HOURS = env_float("ARGUS_NOTIFY_GIVE_UP_HOURS", 24.0, minimum=0.0)
# A claimed row comes back to the relays after this (its sender died); longer than any one send.
ARGUS_NOTIFY_LEASE_SECONDS = env_float("ARGUS_NOTIFY_LEASE_SECONDS", 60.0, minimum=0.5)
_LONGEST_SEND_S = max(EMAIL_TIMEOUT, ARGUS_WEBHOOK_CONNECT_TIMEOUT_SECONDS + ARGUS_WEBHOOK_READ_TIMEOUT_SECONDS)
if _LONGEST_SEND_S >= ARGUS_NOTIFY_LEASE_SECONDS:
    raise ImproperlyConfigured("ARGUS_NOTIFY_LEASE_SECONDS must exceed the email and webhook timeouts")
# A beat pass stops claiming rows after this long and leaves the rest to the next pass.
ARGUS_RELAY_PASS_SECONDS = env_float("ARGUS_RELAY_PASS_SECONDS", 60.0, minimum=1.0)

# HTTPS (`manage.py check --deploy` passes with the defaults). Users reach Argus over HTTPS,
# directly or through a TLS proxy, unless DEBUG; SECURE_COOKIES=0, the older switch for a plain-HTTP
# demo, turns HTTPS off as well.
ARGUS_HTTPS = env_bool("ARGUS_HTTPS", env_bool("SECURE_COOKIES", not DEBUG))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", ARGUS_HTTPS)
# A proxy in front ends TLS and says so in X-Forwarded-Proto (it must overwrite the client's).
# Believed by default when Argus was told a proxy is there (ARGUS_TRUSTED_PROXY_HOPS).
if env_bool("ARGUS_TLS_PROXY", ARGUS_TRUSTED_PROXY_HOPS > 0):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS: a year, this host and the hosts under it. The preload directive alone enrols nothing:
# submitting the domain to the browsers' list does.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if ARGUS_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = ARGUS_HTTPS
SESSION_COOKIE_HTTPONLY = True
# The dashboard's scripts read the token from the page's form, never from the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# The WebSocket re-checks its session, user and membership this often (a disabled account's
# sockets are closed at once by monitor.accounts; this catches everything else).
ARGUS_WS_RECHECK_SECONDS = env_float("ARGUS_WS_RECHECK_SECONDS", 30.0, minimum=0.1)

# Content-Security-Policy (monitor/csp.py): only our own scripts, styles and connections, plus
# inline ones that carry the page's nonce; no eval, no plugins, no framing.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "media-src": [CSP.SELF, "blob:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],  # fetch, and the site WebSocket (ws:/wss: of the same host)
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SECURE_CSP_REPORT_ONLY: dict[str, list[str]] = {}
# Report-only: browsers log what the policy would block, and block nothing (for a cautious rollout).
if env_bool("ARGUS_CSP_REPORT_ONLY", False):
    SECURE_CSP, SECURE_CSP_REPORT_ONLY = {}, SECURE_CSP

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
