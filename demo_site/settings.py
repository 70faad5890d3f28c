"""Settings of the demo site: everything comes from the environment (django-environ).

Every variable has a default that works for local use against the embedded
sandbox; see .env.example. Real client credentials only ever come from the
environment or a git-ignored .env file.
"""

import base64
import hashlib
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
# Local development default only; refused below when DEBUG is off.
_DEV_SECRET_KEY = "django-insecure-ftauth-demo-local-only"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise environ.ImproperlyConfigured("Set SECRET_KEY when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

FTAUTH_SANDBOX = env.bool("FTAUTH_SANDBOX", default=True)
# Empty (the default): the sandbox's URLs are paths, completed by ftauth with the
# address each request came to, so the demo works on any host and port.
SANDBOX_URL = env.str("FT_SANDBOX_URL", default="").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ftauth",
]
if FTAUTH_SANDBOX:
    INSTALLED_APPS.append("ftauth.sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files under gunicorn, with no front server (docs/deployment.md); runserver
    # serves them itself with DEBUG on.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ftauth.middleware.ConsentMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several workers on one SQLite file (gunicorn -w 4): WAL lets readers go on
    # while one writes; IMMEDIATE takes the write lock when a transaction starts,
    # so two writers queue on the busy timeout instead of one failing with
    # "database is locked" when it upgrades a read lock; 20 s of busy timeout
    # covers a burst of sign-ins. synchronous=NORMAL is safe under WAL.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://ftauth-demo")}
# django-environ reads ?key_prefix= under a name Django ignores: several sites (or test
# runs) sharing one Redis keep apart only with KEY_PREFIX.
if "key_prefix" in CACHES["default"]:
    CACHES["default"]["KEY_PREFIX"] = CACHES["default"].pop("key_prefix")

AUTHENTICATION_BACKENDS = [
    "ftauth.backends.FranceTravailBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
# The demo's own strings (templates/, demo_site/); ftauth ships its catalogue itself.
LOCALE_PATHS = [BASE_DIR / "demo_site" / "locale"]
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the files WhiteNoise serves (scripts/serve.sh runs it).
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
LOGIN_URL = "/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _dev_token_key() -> str:
    """A Fernet key derived from SECRET_KEY, for local use when none is given."""
    digest = hashlib.sha256(b"ftauth-demo-token-key:" + SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


_sandbox_servers = {
    "individu": f"{SANDBOX_URL}/sandbox/authentification-candidat",
    "entreprise": f"{SANDBOX_URL}/sandbox/entreprise",
    "api": f"{SANDBOX_URL}/sandbox/api",
}
_individu_url = env.str(
    "FT_INDIVIDU_URL",
    default=_sandbox_servers["individu"]
    if FTAUTH_SANDBOX
    else "https://authentification-candidat.francetravail.fr",
)
_entreprise_url = env.str(
    "FT_ENTREPRISE_URL",
    default=_sandbox_servers["entreprise"]
    if FTAUTH_SANDBOX
    else "https://entreprise.francetravail.fr",
)
_partenaire_url = env.str("FT_PARTENAIRE_URL", default=_entreprise_url)
_api_url = env.str(
    "FT_API_URL",
    default=_sandbox_servers["api"] if FTAUTH_SANDBOX else "https://api.francetravail.io",
)

FTAUTH = {
    # The sandbox registers whatever client the demo uses; real credentials come
    # from the environment only.
    "CLIENT_ID": env.str("FT_CLIENT_ID", default="ftauth-demo" if FTAUTH_SANDBOX else ""),
    "CLIENT_SECRET": env.str(
        "FT_CLIENT_SECRET", default="sandbox-secret-local-only" if FTAUTH_SANDBOX else ""
    ),
    "API_URL": _api_url,
    "REALMS": {
        "individu": {
            "server": _individu_url,
            "scopes": env.list(
                "FT_INDIVIDU_SCOPES",
                default=["api_peconnect-individuv1", "openid", "profile", "email"],
            ),
        },
        "employeur": {"server": _entreprise_url},
        "partenaire": {"server": _partenaire_url},
    },
    "TOKEN_KEYS": env.list("FTAUTH_TOKEN_KEYS", default=[_dev_token_key()]),
    # The /offres/ page searches with an application token (client credentials).
    "APPLICATION_SCOPES": ["api_offresdemploiv2", "o2dsoffre"],
    "CONSENT_CHECK_INTERVAL": env.int("FTAUTH_CONSENT_CHECK_INTERVAL", default=300),
    "SANDBOX": FTAUTH_SANDBOX,
    "LOGIN_REDIRECT_URL": "/profile/",
    "LOGOUT_REDIRECT_URL": "/",
}

# ProConnect (professionals, France Travail advisors): enabled by its own registration,
# from the environment only (docs/proconnect.md).
if env.str("PROCONNECT_CLIENT_ID", default=""):
    FTAUTH["REALMS"]["proconnect"] = {
        "environment": env.str("PROCONNECT_ENVIRONMENT", default="integration"),
        "client_id": env.str("PROCONNECT_CLIENT_ID"),
        "client_secret": env.str("PROCONNECT_CLIENT_SECRET", default=""),
        "idp_hint": env.str("PROCONNECT_IDP_HINT", default=""),
        "acr_values": env.list("PROCONNECT_ACR_VALUES", default=[]),
    }

# Request lines carry the callback's code and state and the end-session URL's
# id_token_hint: ftauth's filter blanks them before any handler sees them
# (docs/security.md). django.server is Django's own default, restated with it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ftauth_redact": {"()": "ftauth.log.RedactSecrets"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "loggers": {
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["ftauth_redact"],
        },
        "django.request": {"filters": ["ftauth_redact"]},
        "ftauth": {
            "handlers": ["console"],
            "level": env.str("FTAUTH_LOG_LEVEL", "INFO"),
            "filters": ["ftauth_redact"],
        },
    },
}
