"""System checks: misconfiguration reported at ``manage.py check``, not as a 500.

One check id per rule; the list is in docs/settings.md.
"""

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from .conf import FTAuthSettings, SettingsErrors, get_settings, is_site_relative
from .core import typed
from .core.errors import ConfigurationError, InsecureTransport
from .core.http import check_secure_url
from .core.realms import PARTENAIRE
from .internal.cache import is_per_process

BACKEND = "ftauth.backends.FranceTravailBackend"


REALM_URLS = (
    "server",
    "authorize_url",
    "token_url",
    "jwks_url",
    "discovery_url",
    "end_session_url",
    "userinfo_url",
)


def _outbound_urls(conf: FTAuthSettings):
    """(setting, URL) for every URL ftauth may call or send a browser to."""
    yield "FTAUTH['API_URL']", conf.api_url
    for realm in conf.realms.values():
        # partenaire also serves application tokens, enabled for sign-in or not.
        if realm.enabled or realm.name == PARTENAIRE:
            for key in REALM_URLS:
                yield f"FTAUTH['REALMS']['{realm.name}']['{key}']", getattr(realm, key)


def insecure_url_errors(conf: FTAuthSettings) -> list[checks.Error]:
    """One error per insecure server, naming the first setting that uses it."""
    errors, seen = [], set()
    for setting, url in _outbound_urls(conf):
        origin = urlsplit(url)[:2]
        # A path is the sandbox on this very site: as secure as the site is.
        if not url or origin in seen or is_site_relative(url):
            continue
        try:
            check_secure_url(url)
        except InsecureTransport:
            seen.add(origin)
            errors.append(
                checks.Error(
                    f"{setting} {url!r} is not HTTPS.",
                    hint="France Travail requires HTTPS; plain http:// only on loopback.",
                    id="ftauth.E004",
                )
            )
    return errors


HINT = "Fix settings.FTAUTH (see docs/settings.md)."


def _django_settings_errors(conf: FTAuthSettings) -> list[checks.Error]:
    """What the FTAUTH values name elsewhere: a cache, a class, a URL, a file."""
    errors = []
    if conf.cache_alias not in getattr(settings, "CACHES", {}):
        errors.append(
            checks.Error(
                f"FTAUTH['CACHE_ALIAS'] names {conf.cache_alias!r}, which is not in CACHES.",
                hint="Name one of the aliases of settings.CACHES (default: 'default').",
                id="ftauth.E011",
            )
        )
    try:
        import_string(conf.account_adapter)
    except ImportError as exc:
        errors.append(
            checks.Error(
                f"FTAUTH['ACCOUNT_ADAPTER'] {conf.account_adapter!r} cannot be imported "
                f"({type(exc).__name__}: {exc}).",
                hint="A dotted path to a subclass of ftauth.adapter.AccountAdapter.",
                id="ftauth.E012",
            )
        )
    try:
        resolve_url(conf.logout_redirect_url)
    except NoReverseMatch:
        errors.append(
            checks.Error(
                f"FTAUTH['LOGOUT_REDIRECT_URL'] {conf.logout_redirect_url!r} is neither a URL "
                "nor the name of one.",
                hint="A path such as '/' or a URL pattern name.",
                id="ftauth.E013",
            )
        )
    if conf.http_ca_file and not os.path.isfile(conf.http_ca_file):
        errors.append(
            checks.Error(
                f"FTAUTH['HTTP_CA_FILE'] {conf.http_ca_file!r} is not a file.",
                hint="The path of a PEM bundle of CA certificates, or leave it unset.",
                id="ftauth.E014",
            )
        )
    return errors


@checks.register(checks.Tags.security)
def check_settings(app_configs=None, **kwargs):
    try:
        conf = get_settings()
    except SettingsErrors as exc:
        return [checks.Error(str(error), hint=HINT, id=error.check_id) for error in exc.errors]
    except ConfigurationError as exc:
        return [checks.Error(str(exc), hint=HINT, id=typed.UNKNOWN_KEY)]
    errors = _django_settings_errors(conf)
    if not conf.sandbox:
        if not conf.client_id:
            errors.append(
                checks.Error(
                    "FTAUTH['CLIENT_ID'] is not set.",
                    hint="Set it from the environment (e.g. FT_CLIENT_ID); never in code.",
                    id="ftauth.E002",
                )
            )
        if not conf.client_secret:
            errors.append(
                checks.Error(
                    "FTAUTH['CLIENT_SECRET'] is not set.",
                    hint="Set it from the environment (e.g. FT_CLIENT_SECRET); never in code.",
                    id="ftauth.E003",
                )
            )
    errors += insecure_url_errors(conf)
    if BACKEND not in getattr(settings, "AUTHENTICATION_BACKENDS", []):
        errors.append(
            checks.Error(
                f"{BACKEND} is not in AUTHENTICATION_BACKENDS.",
                hint=f'Add "{BACKEND}" to AUTHENTICATION_BACKENDS.',
                id="ftauth.E005",
            )
        )
    return errors


KEY_HINT = (
    "Set FTAUTH['TOKEN_KEYS'] (FTAUTH_TOKEN_KEYS in the demo) to one or more Fernet keys, "
    "the newest first; make one once, and keep it, with "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
)


@checks.register(checks.Tags.security)
def check_token_keys(app_configs=None, **kwargs):
    """FTAUTH['TOKEN_KEYS'] present and well-formed: without it no token can be stored.

    Also run when the app loads (``FTAuthConfig.ready``), which refuses to start on
    an error here: a malformed key is a permanent fault, not a page to retry.
    """
    from .crypto import TokenKeyError, parse_keys

    try:
        keys = get_settings().token_keys
    except ConfigurationError:
        return []  # reported by check_settings
    try:
        parse_keys(keys)
    except TokenKeyError as exc:
        return [
            checks.Error(str(exc), hint=KEY_HINT, id="ftauth.E020" if not keys else "ftauth.E021")
        ]
    return []


# How many of the most recent token sets the check of stored tokens tries to decrypt:
# one indexed query and a hundred decryptions, cheap enough for every ``check``.
TOKEN_SAMPLE = 50


@checks.register()
def check_stored_tokens(app_configs=None, **kwargs):
    """Stored tokens decrypt with the configured keys: a key removed or changed too
    early is reported by ``check``, ``runserver``, ``migrate`` and ``ftauth_doctor``,
    not discovered user by user.

    Not tagged ``database`` on purpose (a plain ``check`` must say it), so it reads a
    database: one that is unreachable or not migrated yet says nothing here (the
    doctor reports it).
    """
    from django.db import DatabaseError

    from .crypto import TokenKeyError, cipher
    from .vault import is_readable

    try:
        cipher()
    except (TokenKeyError, ConfigurationError):
        return []  # reported by check_token_keys or check_settings
    from .models import Grant

    try:
        sample = list(
            Grant.objects.order_by("-obtained_at").only(
                "access_token_ciphertext", "refresh_token_ciphertext"
            )[:TOKEN_SAMPLE]
        )
    except DatabaseError:
        return []  # unreachable, or not migrated yet
    unreadable = sum(not is_readable(grant) for grant in sample)
    if not unreadable:
        return []
    return [
        checks.Error(
            f"{unreadable} of the {len(sample)} most recent grants hold tokens that cannot "
            "be decrypted with FTAUTH['TOKEN_KEYS']: their users are asked to sign in again.",
            hint=(
                "The key they were encrypted with was removed or changed. Put it back at the "
                "end of FTAUTH['TOKEN_KEYS'], run manage.py ftauth_rotate_keys, and remove it "
                "only then. If the key is lost, manage.py ftauth_rotate_keys "
                "--forget-unreadable ends those grants (their users sign in again)."
            ),
            id="ftauth.E022",
        )
    ]


@checks.register()
def check_middleware_order(app_configs=None, **kwargs):
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    ours = "ftauth.middleware.ConsentMiddleware"
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    if ours not in middleware:
        return [
            checks.Warning(
                f"{ours} is not in MIDDLEWARE.",
                hint=(
                    f"Add {ours} after {auth}: without it, a session signed in through "
                    "France Travail outlives a consent withdrawal or a sign-out elsewhere."
                ),
                id="ftauth.W015",
            )
        ]
    if (
        ours in middleware
        and auth in middleware
        and middleware.index(ours) < middleware.index(auth)
    ):
        return [
            checks.Warning(
                f"{ours} comes before {auth}.",
                hint=f"Place {ours} after {auth}: it signs users out.",
                id="ftauth.W023",
            )
        ]
    return []


@checks.register(checks.Tags.caches)
def check_shared_cache(app_configs=None, **kwargs):
    """With DEBUG off, several workers are likely: they must share one cache."""
    if settings.DEBUG:
        return []
    try:
        alias = get_settings().cache_alias
    except ConfigurationError:
        return []  # reported by check_settings
    backend = (getattr(settings, "CACHES", {}) or {}).get(alias, {}).get("BACKEND", "")
    if not is_per_process(backend):
        return []
    return [
        checks.Warning(
            f"The cache {alias!r} used by ftauth ({backend.rsplit('.', 1)[-1]}) is kept per "
            "process.",
            hint=(
                "Each worker would fetch its own application token and pace its own calls, "
                "so together they exceed France Travail's quota. Use a cache every worker and "
                "host shares (Redis), or set FTAUTH['CACHE_ALIAS'] to one."
            ),
            id="ftauth.W040",
        )
    ]


CONSENT_MIDDLEWARE = "ftauth.middleware.ConsentMiddleware"


@checks.register()
def check_sandbox(app_configs=None, **kwargs):
    """``SANDBOX`` on needs the sandbox app (and its URLs); its site-relative URLs
    are completed by ``ConsentMiddleware``."""
    try:
        conf = get_settings()
    except ConfigurationError:
        return []  # reported by check_settings
    if not conf.sandbox:
        return []
    errors = []
    if "ftauth.sandbox" not in settings.INSTALLED_APPS:
        errors.append(
            checks.Error(
                "FTAUTH['SANDBOX'] is True but 'ftauth.sandbox' is not in INSTALLED_APPS.",
                hint=(
                    'Add "ftauth.sandbox" to INSTALLED_APPS and '
                    'path("sandbox/", include("ftauth.sandbox.urls")) to your URLs, '
                    "or set FTAUTH['SANDBOX'] = False to use France Travail."
                ),
                id="ftauth.E030",
            )
        )
    realm = next(iter(conf.enabled_realms), None)
    try:
        if realm is not None:
            reverse("ftauth:callback", args=[realm])
    except NoReverseMatch:
        errors.append(
            checks.Error(
                "FTAUTH['SANDBOX'] is True but ftauth's URLs are not in the URLconf "
                "(no URL named 'ftauth:callback'): the sandbox registers ftauth's callback "
                "URLs where the URLconf puts them, so it accepts none.",
                hint='Add path("ftauth/", include("ftauth.urls")) to your URLs (any prefix).',
                id="ftauth.E032",
            )
        )
    relative = any(is_site_relative(url) for _setting, url in _outbound_urls(conf))
    if relative and CONSENT_MIDDLEWARE not in (getattr(settings, "MIDDLEWARE", None) or []):
        errors.append(
            checks.Error(
                f"The sandbox's URLs are relative to the site but {CONSENT_MIDDLEWARE} "
                "is not in MIDDLEWARE: nothing completes them with the site's address.",
                hint=f'Add "{CONSENT_MIDDLEWARE}" to MIDDLEWARE, after AuthenticationMiddleware.',
                id="ftauth.E031",
            )
        )
    return errors


@checks.register()
def check_former_servers(app_configs=None, **kwargs):
    """A former pole-emploi.fr server name works, but says so."""
    try:
        conf = get_settings()
    except ConfigurationError:
        return []
    return [
        checks.Warning(
            f"FTAUTH['REALMS']['{realm.name}']['server'] is {realm.server!r}, the former "
            "Pôle emploi name of a France Travail server.",
            hint=f"France Travail now serves it as {realm.current_server!r}: use that name.",
            id="ftauth.W032",
        )
        for realm in conf.enabled_realms.values()
        if realm.current_server
    ]


@checks.register(checks.Tags.database)
def check_atomic_requests_on_sqlite(app_configs=None, **kwargs):
    """ftauth commits what France Travail answers in a transaction of its own; on
    SQLite it cannot while a view's transaction holds the database's write lock."""
    return [
        checks.Warning(
            f"ATOMIC_REQUESTS is on for the SQLite database {alias!r}: a token refresh "
            "inside a view is rolled back with the view's transaction, and the refresh "
            "token France Travail rotated is lost with it.",
            hint=(
                "Use PostgreSQL (ftauth commits refreshes on a connection of its own), or "
                "turn ATOMIC_REQUESTS off, or call France Travail from views decorated "
                "with django.db.transaction.non_atomic_requests."
            ),
            id="ftauth.W041",
        )
        for alias, database in settings.DATABASES.items()
        if database.get("ATOMIC_REQUESTS") and database.get("ENGINE", "").endswith("sqlite3")
    ]


@checks.register()
def check_professional_realms(app_configs=None, **kwargs):
    """France Travail's ``/agent`` answers only on its internal network; ProConnect
    registers each site apart from France Travail (docs/proconnect.md)."""
    try:
        conf = get_settings()
    except ConfigurationError:
        return []
    messages = []
    for realm in conf.enabled_realms.values():
        if realm.internal_network:
            messages.append(
                checks.Info(
                    f"FTAUTH['REALMS']['{realm.name}'] is reachable only from France "
                    "Travail's internal network.",
                    hint="Outside that network, sign advisors in through ProConnect "
                    "with France Travail's idp_hint (docs/proconnect.md).",
                    id="ftauth.I042",
                )
            )
        if realm.own_registration and not conf.sandbox and not realm.client_id:
            messages.append(
                checks.Warning(
                    f"FTAUTH['REALMS']['{realm.name}'] has no client_id of its own: the "
                    "site's France Travail CLIENT_ID would be sent to ProConnect.",
                    hint="Set 'client_id' and 'client_secret' of the ProConnect "
                    "registration, from the environment (e.g. PROCONNECT_CLIENT_ID).",
                    id="ftauth.W043",
                )
            )
    return messages
