"""Settings driven by the environment (and `.env` if present). See README.md, "Production"."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured

from aios_site.paths import BASE_DIR, data_dir, read_or_create_secret

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = data_dir()
DEBUG = env.bool("AIOS_DEBUG", default=False)
SECRET_KEY = env("AIOS_SECRET_KEY", default=None) or read_or_create_secret(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env.list("AIOS_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("AIOS_CSRF_TRUSTED_ORIGINS", default=[])


def _required_url(name: str) -> str:
    value = env(name, default=None)
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Start AIOS with `aios up` (embedded services), run the command "
            f"through `aios …`, or set DATABASE_URL and REDIS_URL."
        )
    return value


def _database(url: str) -> dict:
    config = environ.Env.db_url_config(url)
    # A Unix socket directory is written percent-encoded in the host part of the URL.
    config["HOST"] = unquote(config["HOST"])
    if env.bool("AIOS_DB_POOL", default=False):
        # The web process: Django's ASGI handler gives every request a thread of its own, so
        # a per-thread persistent connection would be a new PostgreSQL backend per request.
        # A pool hands each request an open one instead. While the database is down, a
        # request waits TIMEOUT seconds for a connection, then answers 503 (errors.py).
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "pool": {
                "min_size": 2,
                "max_size": env.int("AIOS_DB_POOL_SIZE", default=8),
                "timeout": env.float("AIOS_DB_POOL_TIMEOUT", default=10.0),
            }
        }
        return config
    config["CONN_MAX_AGE"] = env.int("AIOS_DB_CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": _database(_required_url("DATABASE_URL"))}
REDIS_URL = _required_url("REDIS_URL")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "channels",
    "django_celery_beat",
    "ninja",
    "aios_site.accounts",
    "agents",
    "memory",
    "approvals",
    "catalog",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "aios_site.errors.refuse_nul_in_query",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "aios_site.accounts.middleware.MemberLocale",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "aios_site.guards.api_guards",
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "aios_site.urls"
ASGI_APPLICATION = "aios_site.asgi.application"
WSGI_APPLICATION = "aios_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "aios_site.accounts.context_processors.workspace_nav",
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling (django-axes; see aios_site/accounts/lockouts.py). Failures count per
# account and, separately, per address; the lock lifts by itself after the cool-off, and a
# refused attempt during it does not prolong it (or anyone could keep an owner out for good).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AIOS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AIOS_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "aios_site.accounts.lockouts.lockout_response"
AXES_CLIENT_IP_CALLABLE = "aios_site.accounts.lockouts.client_address"
AXES_USERNAME_CALLABLE = "aios_site.accounts.lockouts.username_key"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
LANGUAGES = [
    ("en", "English"),
    ("en-gb", "English (UK)"),
    ("es", "Español"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("it", "Italiano"),
    ("pt", "Português"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Only for `collectstatic` in deployments that serve static files from elsewhere.
STATIC_ROOT = env("AIOS_STATIC_ROOT", default=None)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the source folders: no collectstatic step before `aios up`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "aios",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # A consumer waits for its next message in a 5 s blocking pop; redis-py 8 gives up
        # reading after 5 s by default, which closed every quiet websocket (error 1011).
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": "aios:channels",
        },
    }
}

# Security: production values unless AIOS_DEBUG is on. See `manage.py check --deploy`.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_HTTPS = env.bool("AIOS_HTTPS", default=False)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = env.bool("AIOS_SSL_REDIRECT", default=SECURE_HTTPS)
# Load balancers (and `aios up`) probe health over plain HTTP, straight to the process.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/healthz$"]
SECURE_HSTS_SECONDS = env.int("AIOS_HSTS_SECONDS", default=31536000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
AIOS_BEHIND_PROXY = env.bool("AIOS_BEHIND_PROXY", default=False)
if AIOS_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Models (the gateway reads these; unset means "no model configured", said so in the UI).
AIOS_LLM_BASE_URL = env("AIOS_LLM_BASE_URL", default="")
AIOS_LLM_API_KEY = env("AIOS_LLM_API_KEY", default="")
AIOS_LLM_MODEL_SMALL = env("AIOS_LLM_MODEL_SMALL", default="")
AIOS_LLM_MODEL_LARGE = env("AIOS_LLM_MODEL_LARGE", default="")
AIOS_LLM_TIMEOUT = env.float("AIOS_LLM_TIMEOUT", default=60.0)
# Model endpoints (agents/llm/endpoints.py): how many calls the settings' provider serves at
# once (0: by its kind, one for a server on a private address), how long a call waits its
# turn, and the circuit breaker: failures in a row that open it, its first and longest probe
# interval, and how long runs wait for an endpoint that stays down before their steps fail.
AIOS_LLM_CONCURRENCY = env.int("AIOS_LLM_CONCURRENCY", default=0)
AIOS_LLM_QUEUE_SECONDS = env.float("AIOS_LLM_QUEUE_SECONDS", default=120.0)
AIOS_LLM_BREAKER_FAILURES = env.int("AIOS_LLM_BREAKER_FAILURES", default=3)
AIOS_LLM_BREAKER_SECONDS = env.float("AIOS_LLM_BREAKER_SECONDS", default=5.0)
AIOS_LLM_BREAKER_MAX_SECONDS = env.float("AIOS_LLM_BREAKER_MAX_SECONDS", default=120.0)
AIOS_LLM_OUTAGE_WAIT_SECONDS = env.float("AIOS_LLM_OUTAGE_WAIT_SECONDS", default=24 * 3600.0)
# Sent as max_tokens when a step does not say; it bounds the worst case a budget reserves.
AIOS_LLM_DEFAULT_MAX_TOKENS = env.int("AIOS_LLM_DEFAULT_MAX_TOKENS", default=1024)
AIOS_LLM_CACHE_SECONDS = env.int("AIOS_LLM_CACHE_SECONDS", default=24 * 3600)
AIOS_LOCAL_LM_PATH = env("AIOS_LOCAL_LM_PATH", default="")
# Encrypts provider keys and store tokens at rest; derived from SECRET_KEY when unset.
AIOS_ENCRYPTION_KEY = env("AIOS_ENCRYPTION_KEY", default="")
# Where the audit log's signed chain heads are appended (one file a day): outside the
# database, so whoever can write the table cannot rewind it unseen. Default: DATA_DIR/audit-heads.
AIOS_AUDIT_HEADS_DIR = env("AIOS_AUDIT_HEADS_DIR", default="")

# Celery. Long tasks: a message is acknowledged only after its task ends (acks_late), given
# back if the worker dies (reject_on_worker_lost), one at a time per process (prefetch 1),
# and Redis redelivers an unacknowledged message only after a visibility timeout that is
# longer than any task may run.
AIOS_TASK_TIME_LIMIT = env.int("AIOS_TASK_TIME_LIMIT", default=15 * 60)
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": AIOS_TASK_TIME_LIMIT * 2,
    "socket_connect_timeout": 5,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = AIOS_TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = AIOS_TASK_TIME_LIMIT - 30
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery closes Django's database connection around every task unless told to reuse it;
# reconnecting costs more than a whole step. CONN_MAX_AGE and health checks still apply.
CELERY_DB_REUSE_MAX = env.int("AIOS_CELERY_DB_REUSE_MAX", default=1000)

# The run engine. A worker executes a run a SLICE seconds at a time (then lets other runs
# have it) under the run's lease (aios_site/core/lease.py), which lasts STALE seconds and is
# renewed every third of that. The sweeper (every SWEEP seconds) sends again runs whose lease
# ran out and queued runs whose message has been missing for QUEUED_STALE. A run whose
# MAX_CLAIMS claims in a row each ended without committing a step (its worker died or lost
# it: a poison run) fails.
AIOS_RUN_STALE_SECONDS = env.float("AIOS_RUN_STALE_SECONDS", default=30.0)
AIOS_RUN_QUEUED_STALE_SECONDS = env.float("AIOS_RUN_QUEUED_STALE_SECONDS", default=60.0)
AIOS_RUN_SLICE_SECONDS = env.float("AIOS_RUN_SLICE_SECONDS", default=30.0)
AIOS_RUN_MAX_CLAIMS = env.int("AIOS_RUN_MAX_CLAIMS", default=20)
# Steps one run may take (retries of a step do not count): a looping pipeline stops here.
AIOS_RUN_MAX_STEPS = env.int("AIOS_RUN_MAX_STEPS", default=200)
AIOS_RUN_RETENTION_DAYS = env.int("AIOS_RUN_RETENTION_DAYS", default=30)
AIOS_SWEEP_SECONDS = env.float("AIOS_SWEEP_SECONDS", default=5.0)
# Leased work (aios_site/core/lease.py): a holder has it for LEASE seconds, renewed by its
# renewer process every third of that, for at most MAX_HOLD seconds in all (a hung worker
# lets go). A proposal's commit is claimed at most COMMIT_MAX_ATTEMPTS times, whatever the
# number of sweeps, workers and task retries; then it fails with the last error.
AIOS_LEASE_SECONDS = env.float("AIOS_LEASE_SECONDS", default=30.0)
# A webhook batch is leased by its transaction: one idle longer than this between two of its
# statements (its worker paused or hung) is ended by PostgreSQL, and another worker takes it.
AIOS_WEBHOOK_BATCH_IDLE_SECONDS = env.float("AIOS_WEBHOOK_BATCH_IDLE_SECONDS", default=30.0)
AIOS_LEASE_MAX_HOLD_SECONDS = env.float("AIOS_LEASE_MAX_HOLD_SECONDS", default=900.0)
AIOS_COMMIT_MAX_ATTEMPTS = env.int("AIOS_COMMIT_MAX_ATTEMPTS", default=5)
# A proposal nobody decided within this many hours expires (and its run hears so).
AIOS_PROPOSAL_TTL_HOURS = env.float("AIOS_PROPOSAL_TTL_HOURS", default=72.0)
# A person's review of a card counts at most this long (a card left open over lunch is not
# an hour of work); see approvals/outcomes.py.
AIOS_REVIEW_CAP_MINUTES = env.float("AIOS_REVIEW_CAP_MINUTES", default=10.0)
# An OTLP/HTTP collector (e.g. http://collector:4318); finished runs are exported to it.
AIOS_OTEL_ENDPOINT = env("AIOS_OTEL_ENDPOINT", default="")
# How often the inventory agent looks at every variant's days of cover (besides on each
# inventory webhook), and below how many days it raises an alert.
AIOS_STOCK_SWEEP_SECONDS = env.float("AIOS_STOCK_SWEEP_SECONDS", default=3600.0)
AIOS_STOCK_COVER_DAYS = env.float("AIOS_STOCK_COVER_DAYS", default=7.0)
# Pages a brief lists are read by the server: by default only public addresses, never the
# server's own network (loopback, private ranges, the cloud's metadata service).
AIOS_FETCH_PRIVATE_ADDRESSES = env.bool("AIOS_FETCH_PRIVATE_ADDRESSES", default=False)
# Networks reachable even so, e.g. "10.0.0.5/32" for a model server on the shop's own network.
AIOS_FETCH_ALLOWED_NETWORKS = env.list("AIOS_FETCH_ALLOWED_NETWORKS", default=[])
# Content: how often due posts are published, and the hour (local time) of a brief's post
# when it gives no due time and the writer picks the next free day.
AIOS_CONTENT_PUBLISH_SECONDS = env.float("AIOS_CONTENT_PUBLISH_SECONDS", default=30.0)
AIOS_CONTENT_PUBLISH_HOUR = env.int("AIOS_CONTENT_PUBLISH_HOUR", default=9)
# Housekeeping goes to the bulk queue; the sweeper must not wait behind long runs.
CELERY_TASK_ROUTES = {
    "agents.runs_sweep": {"queue": "interactive"},
    "agents.runs_prune": {"queue": "bulk"},
    "agents.trace_export": {"queue": "bulk"},
    "agents.intent_examples_seed": {"queue": "bulk"},
    "agents.eval_execute": {"queue": "bulk"},
    "memory.embed_pending": {"queue": "bulk"},
    "memory.import_advance": {"queue": "bulk"},
}
CELERY_BEAT_SCHEDULE = {
    "agents.runs_sweep": {
        "task": "agents.runs_sweep",
        "schedule": AIOS_SWEEP_SECONDS,
        "options": {"queue": "interactive", "expires": AIOS_SWEEP_SECONDS},
    },
    "approvals.sweep": {
        "task": "approvals.sweep",
        "schedule": AIOS_SWEEP_SECONDS,
        "options": {"queue": "interactive", "expires": AIOS_SWEEP_SECONDS},
    },
    "memory.sweep": {
        "task": "memory.sweep",
        "schedule": AIOS_SWEEP_SECONDS * 6,
        "options": {"queue": "bulk", "expires": AIOS_SWEEP_SECONDS * 6},
    },
    "catalog.webhook_sweep": {
        "task": "catalog.webhook_sweep",
        "schedule": AIOS_SWEEP_SECONDS * 6,
        "options": {"expires": AIOS_SWEEP_SECONDS * 6},
    },
    "agents.runs_prune": {
        "task": "agents.runs_prune",
        "schedule": 3600.0,
        "options": {"queue": "bulk"},
    },
    "catalog.stock_sweep": {
        "task": "catalog.stock_sweep",
        "schedule": AIOS_STOCK_SWEEP_SECONDS,
        "options": {"queue": "bulk", "expires": AIOS_STOCK_SWEEP_SECONDS},
    },
    "catalog.content_publish_due": {
        "task": "catalog.content_publish_due",
        "schedule": AIOS_CONTENT_PUBLISH_SECONDS,
        "options": {"expires": AIOS_CONTENT_PUBLISH_SECONDS},
    },
}
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("AIOS_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # One line per model request is noise; errors still show.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}
