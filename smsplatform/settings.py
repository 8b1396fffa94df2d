"""One settings module for every environment: everything that differs comes from the environment.

Local defaults are safe for a developer machine; production sets DATABASE_URL, SECRET_KEY,
ALLOWED_HOSTS, DRAMATIQ_BROKER_URL and DEBUG=false.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SMS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
# Key-encryption key for the HMAC copy of API secrets (R-TEN-2). Kept outside the database.
API_KEY_KEK = os.environ.get("API_KEY_KEK", SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

# --- Tenancy -------------------------------------------------------------------------------
# Apps listed in both SHARED_APPS and TENANT_APPS hold models of both kinds; the router
# (smsplatform.routers) places each model by its `schema_scope` (see docs/architecture.md).
SHARED_APPS = [
    "smsplatform.apps.PlatformConfig",
    "django_tenants",
    "smsplatform.apps.PlatformAdminConfig",  # django.contrib.admin, our default site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "import_export",
    "axes",
    "tenants",
    "compliance",
    "billing",
    "delivery",
]
TENANT_APPS = [
    "compliance",
    "billing",
    "delivery",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New tenants are cloned from this template schema instead of running every migration.
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_BASE_SCHEMA = "tenant_template"
# Issue 17: SET search_path only when the schema changes, not before every statement (it was
# half the statements of a single send). Safe here: no pool shares connections across threads,
# and this django-tenants forgets the cached path on rollback and savepoint rollback.
TENANT_LIMIT_SET_CALLS = env_bool("TENANT_LIMIT_SET_CALLS", True)
# Issue 17: per-process configuration caches (smsplatform/config_cache.py) re-check their
# version counters at least this often outside API requests (each API request re-checks).
CONFIG_CACHE_MAX_AGE_SECONDS = float(os.environ.get("CONFIG_CACHE_MAX_AGE_SECONDS", "1.0"))
# Ours decides per model; django-tenants insists its own router is listed too (it never disagrees).
DATABASE_ROUTERS = ["smsplatform.routers.SchemaScopeRouter", "django_tenants.routers.TenantSyncRouter"]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/smsplatform"),
        engine="django_tenants.postgresql_backend",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
    )
}
# Each request is one transaction: a refused request leaves nothing half-written.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
# Issue 21: a server that does not answer (stopped, restarting, unreachable) is noticed in seconds,
# not after the kernel's TCP timeout; requests then get a 503 and processes retry.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 3))

# --- Django --------------------------------------------------------------------------------
MIDDLEWARE = [
    # First: a database outage answers a JSON 503 before anything else touches the database.
    "smsplatform.middleware.DatabaseOutageMiddleware",
    "smsplatform.middleware.PublicSchemaMiddleware",
    # Oversized API bodies: a JSON 413 before anything reads them.
    "smsplatform.middleware.ApiBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # R-AUD-2: admin pages mask recipient numbers for users without delivery.view_full_number.
    "smsplatform.middleware.AdminNumberMaskingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it watches admin logins.
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
ROOT_URLCONF = "smsplatform.urls"
WSGI_APPLICATION = "smsplatform.wsgi.application"
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
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "noreply@smsplatform.local")
# Operators told by mail_admins (overdue rectifications, R-CMP-6): comma-separated addresses.
ADMINS = [("operators", addr.strip()) for addr in os.environ.get("ADMIN_EMAILS", "").split(",") if addr.strip()]

# --- Admin login protection (django-axes) --------------------------------------------------
# Lock the (username, IP) pair after AXES_FAILURE_LIMIT bad passwords: a stranger cannot lock a
# user out from elsewhere, and colleagues behind the same NAT are not locked with them. One IP
# guessing across many usernames stops at AXES_IP_FAILURE_LIMIT (tenants.lockout, docs/operations.md).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_IP_FAILURE_LIMIT = env_int("AXES_IP_FAILURE_LIMIT", 30)
AXES_COOLOFF_TIME = 1  # hours
AXES_VERBOSE = False
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "tenants.lockout.PairThenIpHandler"
# Only trust X-Forwarded-For when a proxy we run sets it; otherwise REMOTE_ADDR (no spoofing).
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# --- Admin import/export (R-CMP-3, R-AUD-2) ------------------------------------------------
# django-import-export lets every staff user import and export unless these are set; the admin
# site (smsplatform.admin_site) also requires add + change to import and view to export.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.IsActiveTenant"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "smsplatform.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "smsplatform.errors.api_exception_handler",
    # JSON only (a JSON parser that refuses lone surrogates: a 500 otherwise). Form bodies follow
    # HTML-form rules (an empty field is skipped, nested objects lose keys) and let data the schema
    # forbids through (issue 13): only the upload views (signature proofs, qualifications, opt-out
    # files) take multipart, and say so themselves.
    "DEFAULT_PARSER_CLASSES": ["smsplatform.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.ApiKeyRateThrottle"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SMS Platform API",
    "DESCRIPTION": "Customer API: signatures, templates, sends, receipts, opt-outs and bills.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: no CDN (machines may have no internet).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One Error component for every 4xx, and the errors every operation can give (issue 13).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "smsplatform.openapi.add_error_responses",
    ],
}
# R-TEN-2: HMAC-signed requests must be this fresh; their nonces are refused when reused.
API_HMAC_MAX_SKEW_SECONDS = env_int("API_HMAC_MAX_SKEW_SECONDS", 300)
# Per API key, fixed window (tenants.throttling); over it: 429 rate_limited with Retry-After.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "6000/minute")
# Issue 21: Retry-After of the 503 `service_unavailable` answered while the database is down.
OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 5)
# /readyz answers within this many seconds whatever its dependencies do.
READYZ_TIMEOUT_SECONDS = float(os.environ.get("READYZ_TIMEOUT_SECONDS", "0.8"))
# Writing last_used_at on every call would put a write on the hot path; once a minute is enough.
API_KEY_LAST_USED_RESOLUTION_SECONDS = env_int("API_KEY_LAST_USED_RESOLUTION_SECONDS", 60)


# --- Cache (rate limits): Redis shared by all processes, from CACHE_URL or the Redis broker --
def _cache_location() -> str | None:
    url = os.environ.get("CACHE_URL") or os.environ.get("DRAMATIQ_BROKER_URL", "")
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_location(),
            "KEY_PREFIX": "sms",
            # Redis down must cost a request milliseconds, not seconds (tenants.throttling falls back).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if _cache_location()
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Background work -----------------------------------------------------------------------
# make run / make test fill this from smsplatform/embedded.py when the environment does not.
DRAMATIQ_BROKER_URL = os.environ.get("DRAMATIQ_BROKER_URL", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"refusal_without_traceback": {"()": "smsplatform.logfilters.RefusalWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["refusal_without_traceback"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "apscheduler": {"level": "WARNING"},
        # Django's default "django" logger has its own console handler (DEBUG) and propagates to
        # root: each line printed twice. One handler, root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}

# --- billing ---
# R-TEN-4 / R-BIL-3: dormancy thresholds in days, the notice period before acting, and what to
# do with a dormant tenant ("suspend" or "terminate"; package_idle always expires the credits).
BILLING_DORMANCY_DAYS = {
    "idle": env_int("BILLING_DORMANCY_IDLE_DAYS", 90),
    "idle_expired": env_int("BILLING_DORMANCY_IDLE_EXPIRED_DAYS", 180),
    "no_login": env_int("BILLING_DORMANCY_NO_LOGIN_DAYS", 365),
    "package_idle": env_int("BILLING_PACKAGE_IDLE_DAYS", 182),
}
BILLING_DORMANCY_NOTICE_DAYS = env_int("BILLING_DORMANCY_NOTICE_DAYS", 30)
BILLING_DORMANCY_ACTIONS = {"idle": "suspend", "idle_expired": "suspend", "no_login": "suspend"}

# --- compliance ---
# R-CMP-9: numbers in this country are domestic; everything else needs an international template.
COMPLIANCE_HOME_COUNTRY = os.environ.get("COMPLIANCE_HOME_COUNTRY", "CN")
# R-CMP-6 liquidated damages (004 §7.4), in micro-units (1 CNY = 1_000_000).
COMPLIANCE_PENALTY_PER_MESSAGE = env_int("COMPLIANCE_PENALTY_PER_MESSAGE", 1000 * 1_000_000)
COMPLIANCE_PENALTY_PER_CHANNEL_CUT = env_int("COMPLIANCE_PENALTY_PER_CHANNEL_CUT", 50_000 * 1_000_000)
# R-CMP-7: hours a tenant has to answer a complaint (004 §4.2), and whether overdue ones suspend sending.
COMPLIANCE_COMPLAINT_ANSWER_HOURS = env_int("COMPLIANCE_COMPLAINT_ANSWER_HOURS", 72)
COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT = env_bool("COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT", False)
# R-CMP-6: a rectification deadline passed without being marked done: "escalate" (record + tell the
# operators) or "suspend_sending" (also suspend through the enforcement service).
COMPLIANCE_OVERDUE_RECTIFICATION_ACTION = os.environ.get("COMPLIANCE_OVERDUE_RECTIFICATION_ACTION", "escalate")
# R-CMP-9: a foreign country without a CountryRule row: "allow" (only the tenant's enabled
# countries decide) or "refuse" (reason country_disabled).
COMPLIANCE_COUNTRY_WITHOUT_RULE = os.environ.get("COMPLIANCE_COUNTRY_WITHOUT_RULE", "allow")
# R-CMP-8: hold sends when this hour's volume exceeds SPIKE_MULTIPLE x the usual hourly rate
# (mean of the previous BASELINE_HOURS hours, but never below SPIKE_MIN_HOURLY). 0 disables.
COMPLIANCE_SPIKE_MULTIPLE = float(os.environ.get("COMPLIANCE_SPIKE_MULTIPLE", "10"))
COMPLIANCE_SPIKE_BASELINE_HOURS = env_int("COMPLIANCE_SPIKE_BASELINE_HOURS", 24)
COMPLIANCE_SPIKE_MIN_HOURLY = env_int("COMPLIANCE_SPIKE_MIN_HOURLY", 1000)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "ReviewStatusEnum": "compliance.models.ReviewStatus",
        "ComplaintStatusEnum": "compliance.models.ComplaintStatus",
    }
)
# R-CMP-1: largest accepted signature proof document.
COMPLIANCE_PROOF_MAX_BYTES = env_int("COMPLIANCE_PROOF_MAX_BYTES", 10 * 1024 * 1024)

# --- delivery ---
DELIVERY_MAX_SCHEDULE_DAYS = env_int("DELIVERY_MAX_SCHEDULE_DAYS", 30)
DELIVERY_JOB_SIZE = env_int("DELIVERY_JOB_SIZE", 250)  # message ids per channel job (bench: 250 > 100, 500 no better)
DELIVERY_REQUEUE_AFTER_SECONDS = env_int("DELIVERY_REQUEUE_AFTER_SECONDS", 120)
DELIVERY_NO_CHANNEL_RETRY_SECONDS = env_int("DELIVERY_NO_CHANNEL_RETRY_SECONDS", 30)
DELIVERY_CHANNEL_DOWN_SECONDS = env_int("DELIVERY_CHANNEL_DOWN_SECONDS", 30)
DELIVERY_MAX_SUBMIT_ATTEMPTS = env_int("DELIVERY_MAX_SUBMIT_ATTEMPTS", 5)
DELIVERY_SUBMIT_TIMEOUT_SECONDS = float(os.environ.get("DELIVERY_SUBMIT_TIMEOUT_SECONDS", "15"))
# A "submitting" row older than this belongs to a dead sender: it becomes unknown_submission.
DELIVERY_SUBMITTING_STALE_SECONDS = env_int("DELIVERY_SUBMITTING_STALE_SECONDS", 120)
# Unknown submissions (sent, answer lost) wait this long for evidence (their receipt) before the
# policy of their message type applies: "resend" the unconfirmed parts (same UDH reference) or
# "fail" them. A verification code is worth little after minutes: resent fast (issue 10).
DELIVERY_RECONCILE_SECONDS = env_int("DELIVERY_RECONCILE_SECONDS", 3600)
DELIVERY_UNKNOWN_POLICY = {
    "verification": ("resend", env_int("DELIVERY_RECONCILE_SECONDS_VERIFICATION", 120)),
    "default": ("resend", DELIVERY_RECONCILE_SECONDS),
}
# How long a message may wait for a channel that takes it (outages, throttling, bind refusals do
# not use its submit attempts); past it the message fails with reason "validity_expired".
DELIVERY_VALIDITY_SECONDS = {
    "verification": env_int("DELIVERY_VALIDITY_SECONDS_VERIFICATION", 600),
    "default": env_int("DELIVERY_VALIDITY_SECONDS", 86400),
}
# A receipt whose exact carrier id is not (yet) known may match a hex/decimal variant of the same
# SMSC account only after this wait (its own submit result may still be on its way).
DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS = env_int("DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS", 10)
DELIVERY_RECEIPT_TIMEOUT_HOURS = env_int("DELIVERY_RECEIPT_TIMEOUT_HOURS", 72)
# Issue 21: a part submitted this long ago without a receipt is asked for with query_sm (on
# channels with query_sm_enabled), and asked again after as long; at most this many per channel a run.
DELIVERY_QUERY_AFTER_SECONDS = env_int("DELIVERY_QUERY_AFTER_SECONDS", 600)
DELIVERY_QUERY_BATCH = env_int("DELIVERY_QUERY_BATCH", 500)
DELIVERY_CALLBACK_TIMEOUT_SECONDS = env_int("DELIVERY_CALLBACK_TIMEOUT_SECONDS", 5)
DELIVERY_CALLBACK_BACKOFF_SECONDS = env_int("DELIVERY_CALLBACK_BACKOFF_SECONDS", 10)
DELIVERY_CALLBACK_MAX_ATTEMPTS = env_int("DELIVERY_CALLBACK_MAX_ATTEMPTS", 8)
# Senders read their bind a little longer after a job: receipts often follow the responses.
DELIVERY_RECEIPT_LINGER_SECONDS = float(os.environ.get("DELIVERY_RECEIPT_LINGER_SECONDS", "0.2"))
# Re-submit after a transient error on the last channel left: this, doubled per attempt (ms).
DELIVERY_RETRY_BACKOFF_MS = env_int("DELIVERY_RETRY_BACKOFF_MS", 1000)

# --- audit (issue 6: send log, exports, statistics, erasure) ---
# R-AUD-1: send-log retention in days. The floor is 180 (six months); the purge job refuses less.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 180)
# Exports estimated above this many rows run in the background (dramatiq) (R-AUD-2).
AUDIT_EXPORT_BACKGROUND_ROWS = env_int("AUDIT_EXPORT_BACKGROUND_ROWS", 5000)
AUDIT_EXPORT_CHUNK_ROWS = env_int("AUDIT_EXPORT_CHUNK_ROWS", 5000)
# Keyed hash of erased numbers (R-AUD-4); keep it outside the database like API_KEY_KEK.
AUDIT_ERASURE_HASH_KEY = os.environ.get("AUDIT_ERASURE_HASH_KEY", SECRET_KEY)
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["MessageStatusEnum"] = "delivery.models.MessageStatus"
# Callbacks to loopback/private addresses are refused (SSRF) except in development.
DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS = env_bool("DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS", DEBUG)
# Issue 21: receipts and replies that arrive while PostgreSQL is down are written here (durable,
# local to the process's machine) and acknowledged; the listener, the worker and a periodic job
# store them when it is back (delivery/spool.py). Keep it on a persistent disk.
DELIVERY_SPOOL_DIR = Path(os.environ.get("DELIVERY_SPOOL_DIR", VAR_DIR / "spool" / "inbound"))
# A job waits this long for a free bind when the process already has Channel.bind_count of them.
DELIVERY_BIND_WAIT_SECONDS = float(os.environ.get("DELIVERY_BIND_WAIT_SECONDS", "30"))
# Outbound calls to tenant URLs (callbacks, webhooks: smsplatform.webhooks) may reach private
# addresses only in development; production refuses them when saved and when called (SSRF).
OUTBOUND_ALLOW_PRIVATE_HOSTS = env_bool("OUTBOUND_ALLOW_PRIVATE_HOSTS", DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS)
# WebhookDelivery rows (smsplatform.webhooks; R-BIL-6 low-balance webhooks): POST timeout, retries
# after base × 2^(n-1) seconds (capped at 1 h), at most WEBHOOK_MAX_ATTEMPTS tries. The old name
# BILLING_WEBHOOK_TIMEOUT_SECONDS is still read.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", env_int("BILLING_WEBHOOK_TIMEOUT_SECONDS", 5))
WEBHOOK_BACKOFF_SECONDS = env_int("WEBHOOK_BACKOFF_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)

# --- metrics (issue 16: smsplatform/metrics.py, docs/operations.md "Metrics") ---
# GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>` when set; without a token only direct
# (unproxied) requests from these addresses/networks may scrape.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1/8,::1")
# Multiprocess mode (gunicorn + dramatiq workers of one host share it); empty: this process only.
METRICS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
