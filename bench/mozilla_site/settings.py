"""A minimal Django project signing in with mozilla-django-oidc, set up the way its
documentation says (RS256 with the JWKS endpoint, PKCE S256, nonce, userinfo),
against ``bench.idp``. The anchor of ``bench.signin``; never shipped.

Environment (set by ``bench.signin``): ``BENCH_IDP_URL``, ``DATABASE_URL``,
``SECRET_KEY``. The database options, middleware and session engine are the
demo site's, so that the two sites differ by their sign-in library only.
"""

import os

import environ

from bench.idp_names import CLIENT_ID, CLIENT_SECRET, OAUTH, USERINFO

env = environ.Env()
IDP = os.environ.get("BENCH_IDP_URL", "http://127.0.0.1:9")

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="bench-mozilla-local-only")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "mozilla_django_oidc",
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
]
ROOT_URLCONF = "bench.mozilla_site.urls"
WSGI_APPLICATION = "bench.mozilla_site.wsgi.application"
TEMPLATES = []

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:////tmp/ftauth-bench-moz.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # As demo_site.settings: several workers on one SQLite file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

AUTHENTICATION_BACKENDS = [
    "mozilla_django_oidc.auth.OIDCAuthenticationBackend",
    "django.contrib.auth.backends.ModelBackend",
]
OIDC_RP_CLIENT_ID = CLIENT_ID
OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "api_peconnect-individuv1 openid profile email"
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{IDP}{OAUTH}/authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{IDP}{OAUTH}/access_token?realm=%2Findividu"
OIDC_OP_USER_ENDPOINT = f"{IDP}{USERINFO}?schema=openid"
OIDC_OP_JWKS_ENDPOINT = f"{IDP}{OAUTH}/connect/jwk_uri?realm=/individu"
OIDC_AUTH_REQUEST_EXTRA_PARAMS = {"realm": "/individu"}
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_TIMEOUT = 15
LOGIN_REDIRECT_URL = "/profile/"
LOGIN_REDIRECT_URL_FAILURE = "/failed/"

USE_TZ = True
TIME_ZONE = "Europe/Paris"
LANGUAGE_CODE = "fr"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
