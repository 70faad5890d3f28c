"""ftauth's settings: read once from ``settings.FTAUTH`` into a typed object.

Nothing is read at import time: :func:`get_settings` builds the object on
first use and caches it, and Django's ``setting_changed`` signal (sent by
``override_settings``) clears the cache, so tests need no module reloads.
Misconfiguration is reported by ``ftauth.checks`` at ``manage.py check``.

With ``SANDBOX`` on, a server URL may be a path (``/sandbox/entreprise``, the
default then): the sandbox is served by the site itself, so such a URL is
completed with the origin of the request being served (set by
``ConsentMiddleware`` through :func:`serving`), whatever host and port the dev
server listens on. Outside a request (a management command) it stays a path
until :func:`serving_origin` names the site.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .core.errors import ConfigurationError
from .core.http import HttpClient, HttpConfig
from .core.realms import API_SERVER, ID_TOKEN_LIFETIME, Realm, build_realms

# Where the embedded sandbox serves France Travail's hosts (ftauth.sandbox.urls
# included at "sandbox/"): the default servers when FTAUTH["SANDBOX"] is on.
SANDBOX_SERVERS = {
    "individu": "/sandbox/authentification-candidat",
    "employeur": "/sandbox/entreprise",
    "partenaire": "/sandbox/entreprise",
}
SANDBOX_API_URL = "/sandbox/api"

KNOWN_KEYS = {
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REALMS",
    "API_URL",
    "TOKEN_KEYS",
    "ACCOUNT_ADAPTER",
    "LINK_BY_EMAIL",
    "CONSENT_CHECK_INTERVAL",
    "PENDING_LOGIN_TTL",
    "PENDING_LOGIN_MAX",
    "CLOCK_LEEWAY",
    "ID_TOKEN_MAX_AGE",
    "JWKS_CACHE_TTL",
    "JWKS_REFETCH_INTERVAL",
    "HTTP_CONNECT_TIMEOUT",
    "HTTP_READ_TIMEOUT",
    "HTTP_RETRIES",
    "HTTP_CA_FILE",
    "LOGIN_REDIRECT_URL",
    "LOGOUT_REDIRECT_URL",
    "SANDBOX",
    "SANDBOX_ALLOW_WITHOUT_DEBUG",
    "CACHE_ALIAS",
    "API_RATE_LIMITS",
    "API_DEFAULT_RATE",
    "API_MAX_WAIT",
    "API_MAX_RETRIES",
    "API_RETRY_AFTER_CAP",
    "API_TIME_BUDGET",
    "APPLICATION_SCOPES",
    "REFRESH_MARGIN",
    "AUDIT_RETENTION_DAYS",
}


@dataclass(frozen=True)
class FTAuthSettings:
    client_id: str
    client_secret: str = field(repr=False)
    realms: Mapping[str, Realm]
    api_url: str = API_SERVER
    token_keys: tuple[str, ...] = field(default=(), repr=False)
    account_adapter: str = "ftauth.adapter.AccountAdapter"
    # Attach a first sign-in to an existing user with the same *verified* email.
    link_by_email: bool = False
    consent_check_interval: int = 300
    pending_login_ttl: int = 600
    pending_login_max: int = 5
    clock_leeway: int = 60
    id_token_max_age: int = ID_TOKEN_LIFETIME
    jwks_cache_ttl: int = 3600
    jwks_refetch_interval: int = 60
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 10.0
    http_retries: int = 2
    http_ca_file: str | None = None
    login_redirect_url: str = "/"
    logout_redirect_url: str = "/"
    sandbox: bool = False
    sandbox_allow_without_debug: bool = False
    cache_alias: str = "default"
    # Calls per second per API name (the first path segment), e.g. {"offresdemploi": 4}.
    api_rate_limits: Mapping[str, float] = field(default_factory=dict)
    api_default_rate: float = 4.0
    api_max_wait: float = 10.0
    api_max_retries: int = 3
    api_retry_after_cap: float = 30.0
    # Seconds one API call may take in all: its turn, its retries, its answers.
    api_time_budget: float = 5.0
    application_scopes: tuple[str, ...] = ("api_offresdemploiv2", "o2dsoffre")
    # Refresh an access token this many seconds before it expires.
    refresh_margin: int = 60
    audit_retention_days: int = 365

    @property
    def enabled_realms(self) -> dict[str, Realm]:
        return {name: realm for name, realm in self.realms.items() if realm.enabled}

    def realm(self, name: str) -> Realm:
        """The realm called ``name``; :class:`KeyError` if unknown."""
        return self.realms[name]

    @property
    def http_config(self) -> HttpConfig:
        return HttpConfig(
            connect_timeout=self.http_connect_timeout,
            read_timeout=self.http_read_timeout,
            retries=self.http_retries,
            ca_file=self.http_ca_file,
        )


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.replace(",", " ").split() if v.strip())
    return tuple(str(v) for v in value)


def is_site_relative(url: str) -> bool:
    """A server URL given as a path: the sandbox, on this very site."""
    return url.startswith("/") and not url.startswith("//")


def _on_site(url: str, origin: str) -> str:
    return f"{origin}{url}" if origin and is_site_relative(url) else url


def _sandbox_realms(realms_raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Each realm's options, its server defaulting to the sandbox's and made absolute."""
    realms = {}
    for name, options in realms_raw.items():
        options = dict(options or {})
        server = options.get("server") or SANDBOX_SERVERS.get(name, "")
        if server:
            options["server"] = _on_site(str(server), origin)
        realms[name] = options
    return realms


def load_settings(raw: Mapping[str, Any], origin: str = "") -> FTAuthSettings:
    """Build the typed settings from a ``FTAUTH`` dict; raise :class:`ConfigurationError`.

    ``origin`` (``http://127.0.0.1:8001``) completes the sandbox's site-relative URLs.
    """
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise ConfigurationError(f"FTAUTH has unknown keys: {', '.join(sorted(unknown))}")
    sandbox = bool(raw.get("SANDBOX"))
    default_api = SANDBOX_API_URL if sandbox else API_SERVER
    api_url = str(raw.get("API_URL") or default_api).rstrip("/")
    realms_raw = raw.get("REALMS", {"individu": {}})
    if not isinstance(realms_raw, Mapping):
        raise ConfigurationError("FTAUTH['REALMS'] must be a dict of realm name to options")
    if sandbox:
        api_url = _on_site(api_url, origin)
        realms_raw = _sandbox_realms(realms_raw, origin)
    simple = {
        key.lower(): raw[key]
        for key in KNOWN_KEYS - {"CLIENT_ID", "CLIENT_SECRET", "REALMS", "API_URL"}
        if key in raw
    }
    for key in ("token_keys", "application_scopes"):
        if key in simple:
            simple[key] = _as_tuple(simple[key])
    try:
        return FTAuthSettings(
            client_id=str(raw.get("CLIENT_ID") or ""),
            client_secret=str(raw.get("CLIENT_SECRET") or ""),
            realms=build_realms(realms_raw, api_url),
            api_url=api_url,
            **simple,
        )
    except TypeError as exc:  # pragma: no cover - guarded by KNOWN_KEYS
        raise ConfigurationError(str(exc)) from None


# The origin of the request being served (one per thread or task).
_origin: contextvars.ContextVar[str] = contextvars.ContextVar("ftauth_origin", default="")


@contextlib.contextmanager
def serving_origin(origin: str) -> Iterator[None]:
    """Complete site-relative server URLs with ``origin`` inside the block."""
    token = _origin.set(origin.rstrip("/"))
    try:
        yield
    finally:
        _origin.reset(token)


def serving(request: Any) -> contextlib.AbstractContextManager[None]:
    """:func:`serving_origin` with the origin ``request`` came to, when it matters.

    ``get_host()`` checks the host against ``ALLOWED_HOSTS``: a forged ``Host``
    header cannot send the sign-in elsewhere.
    """
    try:
        relative = _uses_site_origin()
    except ConfigurationError:
        relative = False  # reported by manage.py check; pages must still render
    if not relative:
        return contextlib.nullcontext()
    return serving_origin(f"{request.scheme}://{request.get_host()}")


@functools.lru_cache(maxsize=32)
def _settings_at(origin: str) -> FTAuthSettings:
    return load_settings(getattr(django_settings, "FTAUTH", {}), origin)


def get_settings() -> FTAuthSettings:
    """The settings, as seen from the request being served (if any)."""
    origin = _origin.get()
    if origin and not _uses_site_origin():
        origin = ""  # every URL is absolute: one settings object for all hosts
    return _settings_at(origin)


@functools.cache
def _uses_site_origin() -> bool:
    return _settings_at("") != _settings_at("http://o.invalid")


@functools.cache
def get_http() -> HttpClient:
    """The shared HTTP client, built from the settings."""
    return HttpClient(get_settings().http_config)


@receiver(setting_changed)
def _reset(setting: str, **kwargs: Any) -> None:
    if setting in {"FTAUTH", "CACHES"}:
        _settings_at.cache_clear()
        _uses_site_origin.cache_clear()
        get_http.cache_clear()
