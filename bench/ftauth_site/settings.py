"""A minimal Django project signing in with ftauth, built from ``bench.mozilla_site``'s
settings (the same apps with ``ftauth`` for ``mozilla_django_oidc``, the same middleware
plus ftauth's ``ConsentMiddleware``, the same database options, a ``/profile/`` page), in
a production configuration (sandbox off) against ``bench.idp``. ``bench.signin`` serves
it beside the demo and the anchor, with the same sign-ins, to split the RSS per worker
between ftauth (this site minus the anchor) and the demo around it (the demo minus this
site); never shipped.

Environment (set by ``bench.signin``): ``BENCH_IDP_URL``, ``DATABASE_URL``,
``CACHE_URL``, ``SECRET_KEY``, ``FTAUTH_TOKEN_KEYS`` (a Fernet key the bench makes).
"""

from bench.idp_names import CLIENT_ID, CLIENT_SECRET, HOST
from bench.mozilla_site.settings import *  # noqa: F403
from bench.mozilla_site.settings import IDP, INSTALLED_APPS, MIDDLEWARE, env

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "mozilla_django_oidc"] + ["ftauth"]
MIDDLEWARE = [*MIDDLEWARE, "ftauth.middleware.ConsentMiddleware"]
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
# ftauth's pacing, locks and quota need a cache every worker shares (the bench gives
# Redis on PostgreSQL); the anchor has none.
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
