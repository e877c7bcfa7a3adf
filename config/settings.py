"""Settings, read only from the environment (django-environ).

A `.env` file in the project root is read when present (see `.env.example`). Nothing here is
a secret: secrets come from the environment. With DEBUG off (the default) the security
settings default to what `manage.py check --deploy` asks for; DEBUG on is for the demo and
local work only.
"""

import datetime
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Insecure defaults exist only for DEBUG; production must set these (checks in config/checks.py).
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# django-fernet-encrypted-fields derives its keys from SECRET_KEY (+ fallbacks) and SALT_KEY.
# A list lets an operator rotate the salt too: the first entry encrypts, all decrypt.
SALT_KEY = env.list("SALT_KEY", default=["dev-only-salt"] if DEBUG else [])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Public base URL of this installation, used to build webhook and OAuth callback URLs that
# are handed to Exact Online and GoCardless (they must be reachable from the internet).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "axes",
    "config.apps.ConfigAppConfig",
    "core.apps.CoreConfig",
    "tenants",
    "exact",
    "gocardless",
    "reconciliation",
    "reconciliation.customers.apps.CustomersConfig",
    "reconciliation.collection.apps.CollectionConfig",
    "reconciliation.bookings.apps.BookingsConfig",
    "reconciliation.workspace.apps.WorkspaceConfig",
    "simulators.apps.SimulatorsConfig",
]
# The demo scenario (`manage.py demo_run`) resets tenants' data: installed only where asked
# for (DEBUG, as `make demo` runs, or DEMO_ENABLED), never by default in production.
DEMO_ENABLED = env.bool("DEMO_ENABLED", default=DEBUG)
if DEMO_ENABLED:
    INSTALLED_APPS.append("demo.apps.DemoConfig")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# SQLite is the zero-setup default; production uses PostgreSQL (postgres://...).
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
# A kept connection (DB_CONN_MAX_AGE > 0) is checked before a request or a task first uses it:
# after a database restart, each process's first request would otherwise fail on its dead
# connection (docs/gocardless.md, "Intake during a database outage"). Costs nothing at 0.
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Worker processes and web requests share the file; wait for a lock rather than fail.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

# --- e-mail (EMAIL_URL, e.g. smtp+tls://user:pass@host:587) -----------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(_email)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ml-connector <noreply@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- security: secure by default unless DEBUG --------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=not DEBUG) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# /healthz is probed by load balancers over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# GET /metrics (Prometheus) names tenants and their volumes: keep it on the internal network.
# When set, a scrape must also send `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the
# outermost of ours saw (X-Forwarded-For counted from the right: the left part is whatever
# the client sent). Used by login throttling and the webhook delivery log (core/http.py).
TRUSTED_PROXY_COUNT = env.int(
    "TRUSTED_PROXY_COUNT", default=1 if SECURE_PROXY_SSL_HEADER else 0
)

# --- login throttling (django-axes) ---------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one username, or from one address, further
# attempts are refused (429) for AXES_COOLOFF_TIME, even with the right password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.http.client_address"
AXES_VERBOSE = False

# --- Content-Security-Policy (django-csp) ---------------------------------------------------
# Strict: scripts, styles, images and fonts from this origin only, no inline code, no frames.
# Forms may post to the OAuth consent pages the Connect buttons redirect to (a form's
# redirect is checked against form-action): the Exact region hosts of exact/models.py and
# GoCardless' connect hosts of gocardless/connect.py (tests/config/test_security_headers.py
# keeps this list equal to those tables), and in DEBUG the local simulators.
OAUTH_FORM_TARGETS = [
    "https://start.exactonline.nl",
    "https://start.exactonline.be",
    "https://start.exactonline.co.uk",
    "https://start.exactonline.de",
    "https://start.exactonline.fr",
    "https://start.exactonline.es",
    "https://start.exactonline.com",
    "https://connect.gocardless.com",
    "https://connect-sandbox.gocardless.com",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": [
            "'self'",
            *OAUTH_FORM_TARGETS,
            *(["http://127.0.0.1:*", "http://localhost:*"] if DEBUG else []),
        ],
    },
}

# --- django-q2 ----------------------------------------------------------------------------
# `retry` is the broker's visibility timeout: a task still running after `retry` seconds is
# handed to another worker. It must exceed `timeout` (checked in config/checks.py).
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="ml-connector"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=360),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    # One run of a periodic job covers every missed slot; never replay a backlog.
    "catch_up": False,
    "time_zone": TIME_ZONE,
    "save_limit": env.int("Q_SAVE_LIMIT", default=1000),
    "ack_failures": True,
    "sync": env.bool("Q_SYNC", default=False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- DRF: only the webhook endpoints use it; they authenticate by signature ---------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

# --- Exact Online app credentials (one app for the installation) --------------------------
EXACT_CLIENT_ID = env.str("EXACT_CLIENT_ID", default="")
EXACT_CLIENT_SECRET = env.str("EXACT_CLIENT_SECRET", default="")
EXACT_REDIRECT_URI = env.str(
    "EXACT_REDIRECT_URI", default=f"{PUBLIC_BASE_URL}/connect/exact/callback/"
)
EXACT_WEBHOOK_SECRET = env.str("EXACT_WEBHOOK_SECRET", default="")
# Region "custom" (any base URL, for the simulators): where a custom URL is allowed, a token
# and the app's client secret can be sent to it, so it is off unless DEBUG (check mlc.E011)
# and only superusers may set it.
EXACT_ALLOW_CUSTOM_BASE_URL = env.bool("EXACT_ALLOW_CUSTOM_BASE_URL", default=DEBUG)
# The inbound webhook log: pruned after this many days; at most this many bytes stored per
# company endpoint per hour (beyond it: 429, Exact retries later).
EXACT_DELIVERY_RETENTION_DAYS = env.int("EXACT_DELIVERY_RETENTION_DAYS", default=30)
EXACT_DELIVERY_MAX_BYTES_PER_HOUR = env.int(
    "EXACT_DELIVERY_MAX_BYTES_PER_HOUR", default=4 * 1024 * 1024
)

# --- GoCardless partner app (optional: tenants may paste an access token instead) ---------
GOCARDLESS_CLIENT_ID = env.str("GOCARDLESS_CLIENT_ID", default="")
GOCARDLESS_CLIENT_SECRET = env.str("GOCARDLESS_CLIENT_SECRET", default="")
GOCARDLESS_REDIRECT_URI = env.str(
    "GOCARDLESS_REDIRECT_URI", default=f"{PUBLIC_BASE_URL}/connect/gocardless/callback/"
)
GOCARDLESS_WEBHOOK_SECRET = env.str("GOCARDLESS_WEBHOOK_SECRET", default="")

# --- exact/ settings (owned by the Exact Online integration) ------------------------------
# Seconds. API calls time out quickly (GETs are retried); the token call is generous because
# a lost token response costs the whole refresh-token chain (docs/exact.md).
EXACT_HTTP_TIMEOUT = env.float("EXACT_HTTP_TIMEOUT", default=30.0)
EXACT_TOKEN_TIMEOUT = env.float("EXACT_TOKEN_TIMEOUT", default=60.0)
# How often each tenant's incremental sync runs (django-q2 schedule, minutes).
EXACT_SYNC_EVERY_MINUTES = env.int("EXACT_SYNC_EVERY_MINUTES", default=15)
# --- end exact/ settings --------------------------------------------------------------------

# --- gocardless/ settings (owned by the GoCardless integration) -----------------------------
# Every outbound call has a timeout (seconds); the SDK's own default is 60.
GOCARDLESS_HTTP_TIMEOUT = env.float("GOCARDLESS_HTTP_TIMEOUT", default=10.0)
# 429: wait until RateLimit-Reset at most this many times, and never longer than this.
GOCARDLESS_RATE_LIMIT_RETRIES = env.int("GOCARDLESS_RATE_LIMIT_RETRIES", default=3)
GOCARDLESS_RATE_LIMIT_MAX_WAIT = env.float("GOCARDLESS_RATE_LIMIT_MAX_WAIT", default=65.0)
# Partner OAuth host; empty = connect(-sandbox).gocardless.com by the connection's environment.
GOCARDLESS_CONNECT_URL = env.str("GOCARDLESS_CONNECT_URL", default="").rstrip("/")
# A custom GoCardless API base URL (the simulators) sends access tokens where it points: off
# unless DEBUG (check mlc.E010), set by superusers only.
GOCARDLESS_ALLOW_CUSTOM_BASE_URL = env.bool("GOCARDLESS_ALLOW_CUSTOM_BASE_URL", default=DEBUG)
# The webhook intake log: pruned after this many days; bytes stored per tenant per hour for
# signed deliveries and, separately, for unsigned/refused ones (beyond either: 429).
GOCARDLESS_DELIVERY_RETENTION_DAYS = env.int("GOCARDLESS_DELIVERY_RETENTION_DAYS", default=30)
GOCARDLESS_DELIVERY_MAX_BYTES_PER_HOUR = env.int(
    "GOCARDLESS_DELIVERY_MAX_BYTES_PER_HOUR", default=64 * 1024 * 1024
)
GOCARDLESS_UNSIGNED_DELIVERY_MAX_BYTES_PER_HOUR = env.int(
    "GOCARDLESS_UNSIGNED_DELIVERY_MAX_BYTES_PER_HOUR", default=4 * 1024 * 1024
)
GOCARDLESS_OAUTH_SCOPE = env.str("GOCARDLESS_OAUTH_SCOPE", default="read_write")
# Event processing: failed events are retried with exponential backoff up to this many times.
GOCARDLESS_EVENT_MAX_ATTEMPTS = env.int("GOCARDLESS_EVENT_MAX_ATTEMPTS", default=10)
GOCARDLESS_EVENT_RETRY_BASE_SECONDS = env.int("GOCARDLESS_EVENT_RETRY_BASE_SECONDS", default=60)
GOCARDLESS_EVENT_RETRY_MAX_SECONDS = env.int("GOCARDLESS_EVENT_RETRY_MAX_SECONDS", default=6 * 3600)
# An unprocessed event older than this with no failure recorded is treated as lost by the
# queue and picked up by the sweeper.
GOCARDLESS_EVENT_STALE_SECONDS = env.int("GOCARDLESS_EVENT_STALE_SECONDS", default=300)
# Polling fallback: the first run (no cursor yet) looks back this many days; 0 = everything.
GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS = env.int("GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS", default=7)
GOCARDLESS_POLL_PAGE_SIZE = env.int("GOCARDLESS_POLL_PAGE_SIZE", default=500)
# --- end gocardless/ settings ---------------------------------------------------------------

# --- collection (reconciliation.collection) -----------------------------------------------
# A run collects from our copy of Exact's open invoices. It refuses to send payments when
# Exact is not usable (needs re-authorisation, paused, disconnected) or the last successful
# sync of the receivables is older than this many minutes: an invoice paid by bank transfer
# or credited in Exact since then would otherwise be charged. Default: 8 sync intervals.
COLLECTION_EXACT_MAX_AGE_MINUTES = env.int(
    "COLLECTION_EXACT_MAX_AGE_MINUTES", default=8 * EXACT_SYNC_EVERY_MINUTES
)

# --- limits -------------------------------------------------------------------------------
# Webhook bodies above this are refused before parsing (GoCardless batches stay far below).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(WEBHOOK_MAX_BODY_BYTES, 2_621_440)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The simulators' request log; `manage.py simulate` turns it back on.
        "werkzeug": {"level": "WARNING"},
    },
}
