"""Settings, read from the environment.

An instance is chosen by REALIZE_HOME (keys, secrets, sockets, logs), DATABASE_URL and
REDIS_URL, so several appliances can run side by side on one machine.
"""

import hashlib
import os
from pathlib import Path

import dj_database_url
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from realize_site.lib import realize_home, secret_key


def envbool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
REALIZE_HOME = realize_home()

# Names this instance's queue and live-event groups, so that appliances that share a Redis
# database by mistake still never take each other's tasks or see each other's events.
INSTANCE = hashlib.sha256(str(REALIZE_HOME).encode()).hexdigest()[:12]

SECRET_KEY = secret_key(REALIZE_HOME)
DEBUG = envbool("REALIZE_DEBUG", False)
# An appliance is reached by whatever name or address the household gives it.
ALLOWED_HOSTS = envlist("REALIZE_ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = envlist("REALIZE_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "ninja",
    "peers",
    "areas",
    "fusemount",
    "realize_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "realize_site.urls"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "realize_site" / "templates"],
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

ASGI_APPLICATION = "realize_site.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgresql:///realize"),
        conn_max_age=60,
        conn_health_checks=True,
    )
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Seconds a read from Redis may wait: longer than the channel layer's blocking reads, short
# enough that a Redis gone silent is noticed.
REDIS_READ_TIMEOUT = 30

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # The layer waits for a message in a blocking read of 5 s; redis-py's default
        # socket timeout is as long, and the two raced: every idle websocket died.
        # After a Redis restart the pooled connections are dead: a command tries again on a
        # new one (redis-py tries once by default, and the next websocket failed).
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": REDIS_READ_TIMEOUT,
                    "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 4),
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "prefix": f"realize:{INSTANCE}",
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT = "realize_site.broker:Transport"  # survives losing Redis
CELERY_TASK_DEFAULT_QUEUE = f"realize.{INSTANCE}"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "realize_site.beat:Scheduler"  # outlives a database outage
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("REALIZE_TIME_ZONE", "UTC")
# The latest history events of each area kept even once every peer has them: the area's
# feed of recent changes (areas.index.history.trim).
REALIZE_HISTORY_KEPT = int(os.environ.get("REALIZE_HISTORY_KEPT", "500"))
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "realize_site" / "static"]
# WhiteNoise serves static files straight from the apps: there is no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("REALIZE_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
