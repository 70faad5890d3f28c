"""A minimal Django project signing in with ftauth, built like ``bench.mozilla_site``
(same apps but ``ftauth`` for ``mozilla_django_oidc``, same middleware plus ftauth's
``ConsentMiddleware``, same database options, a ``/profile/`` page), in a production
configuration (sandbox off) against ``bench.idp``. ``bench.signin`` serves it beside the
demo and the anchor, with the same sign-ins, to split the RSS per worker between ftauth
(this site minus the anchor) and the demo around it (the demo minus this site); never
shipped.

Environment (set by ``bench.signin``): ``BENCH_IDP_URL``, ``DATABASE_URL``,
``CACHE_URL``, ``SECRET_KEY``, ``FTAUTH_TOKEN_KEYS`` (a Fernet key the bench makes).
"""

import os

import environ

from bench.idp import CLIENT_ID, CLIENT_SECRET, HOST

env = environ.Env()
IDP = os.environ.get("BENCH_IDP_URL", "http://127.0.0.1:9")

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="bench-ftauth-local-only")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "ftauth",
]
MIDDLEWARE = [
    "bench.instrument.QueryCount",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ftauth.middleware.ConsentMiddleware",
]
ROOT_URLCONF = "bench.ftauth_site.urls"
WSGI_APPLICATION = "bench.ftauth_site.wsgi.application"
# ftauth's own pages (an error, the link confirmation) are templates.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:////tmp/ftauth-bench-ft.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # As demo_site.settings: several workers on one SQLite file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://ftauth-bench-ft")}
if "key_prefix" in CACHES["default"]:  # as demo_site.settings
    CACHES["default"]["KEY_PREFIX"] = CACHES["default"].pop("key_prefix")

AUTHENTICATION_BACKENDS = [
    "ftauth.backends.FranceTravailBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# As the demo with the sandbox off, only the realm the bench signs in with.
FTAUTH = {
    "CLIENT_ID": CLIENT_ID,
    "CLIENT_SECRET": CLIENT_SECRET,
    "API_URL": f"{IDP}/api",
    "REALMS": {
        "individu": {
            "server": f"{IDP}{HOST}",
            "scopes": ["api_peconnect-individuv1", "openid", "profile", "email"],
        },
    },
    "TOKEN_KEYS": env.list("FTAUTH_TOKEN_KEYS"),
    "LOGIN_REDIRECT_URL": "/profile/",
    "LOGOUT_REDIRECT_URL": "/",
}

USE_TZ = True
TIME_ZONE = "Europe/Paris"
LANGUAGE_CODE = "fr"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
