"""Settings for the test suite. DATABASE_URL and CACHE_URL pick the backends."""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

SECRET_KEY = "tests-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ftauth",
    "ftauth.sandbox",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ftauth.middleware.ConsentMiddleware",
]
ROOT_URLCONF = "demo_site.urls"
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
DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///:memory:")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("FTAUTH_TEST_SQLITE")
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://ftauth-tests")}
AUTHENTICATION_BACKENDS = [
    "ftauth.backends.FranceTravailBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Europe/Paris"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A fixed test key (Fernet, 32 bytes base64url). Tests that need others make them.
TEST_TOKEN_KEY = "x4ZRQHYpLhJQm1OXeTdsn_wN1mR83ao0UMIQv8fEqU0="

# Tests point the realms at the sandbox of their live server (tests/conftest.py).
FTAUTH = {
    "CLIENT_ID": "ftauth-tests",
    "CLIENT_SECRET": "tests-client-secret",
    "API_URL": "http://127.0.0.1:9/sandbox/api",
    "REALMS": {
        "individu": {"server": "http://127.0.0.1:9/sandbox/authentification-candidat"},
        "employeur": {"server": "http://127.0.0.1:9/sandbox/entreprise"},
        "partenaire": {"server": "http://127.0.0.1:9/sandbox/entreprise"},
    },
    "TOKEN_KEYS": [TEST_TOKEN_KEY],
    "SANDBOX": True,
    # pytest-django runs every test with DEBUG = False: the sandbox is on on purpose.
    "SANDBOX_ALLOW_WITHOUT_DEBUG": True,
    "LOGIN_REDIRECT_URL": "/profile/",
}
