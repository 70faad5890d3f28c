"""ftauth's settings: read once from ``settings.FTAUTH`` into a typed object.

Nothing is read at import time: :func:`get_settings` builds the object on
first use and caches it, and Django's ``setting_changed`` signal (sent by
``override_settings``) clears the cache, so tests need no module reloads.
Every value is converted to its type or refused here (``ftauth.core.typed``),
so no setting can surprise a view at request time; misconfiguration is reported
by ``ftauth.checks`` at ``manage.py check``, one check id per rule.

Misconfiguration is reported by ``ftauth.checks`` at ``manage.py check``.

With ``SANDBOX`` on, a server URL may be a path (``/sandbox/entreprise``, the
default then): the sandbox is served by the site itself, so such a URL is
completed with the address the server was started on (set by
``ConsentMiddleware`` through :func:`serving`), never with the request's ``Host``
or ``X-Forwarded-Host``: those are the client's to choose, and ``ALLOWED_HOSTS``
does not check the port, so ``Host: 127.0.0.1:<another port>`` would send the
token request, client secret included, wherever the client likes. Only Django's
own server (runserver, the test live server) says where it listens; under any
other server the sandbox's URLs must be absolute in the settings
(``FT_SANDBOX_URL`` for the demo). Outside a request (a management command) a
path stays a path until :func:`serving_origin` names the site.

``SANDBOX`` on with ``DEBUG`` off refuses to serve (:func:`check_sandbox_allowed`):
ftauth's views answer 503 and no outbound call is made, unless
``SANDBOX_ALLOW_WITHOUT_DEBUG`` says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .core import typed
from .core.errors import ConfigurationError
from .core.http import HttpClient, HttpConfig
from .core.realms import API_SERVER, ID_TOKEN_LIFETIME, Realm, build_realms

# Where the embedded sandbox serves France Travail's hosts (ftauth.sandbox.urls
# included at "sandbox/"): the default servers when FTAUTH["SANDBOX"] is on.
SANDBOX_SERVERS = {
    "individu": "/sandbox/authentification-candidat",
    "employeur": "/sandbox/entreprise",
    "partenaire": "/sandbox/entreprise",
    "proconnect": "/sandbox/proconnect",
}
SANDBOX_API_URL = "/sandbox/api"


def _positive(converter: Callable[..., Any], **bounds: Any) -> Callable[[str, Any], Any]:
    return functools.partial(converter, **bounds)


# Each FTAUTH key with the conversion of its value (bounds: docs/settings.md).
CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "CLIENT_ID": typed.as_str,
    "CLIENT_SECRET": typed.as_str,
    "API_URL": typed.as_str,
    "TOKEN_KEYS": typed.as_str_tuple,
    "ACCOUNT_ADAPTER": typed.as_str,
    "LINK_BY_EMAIL": typed.as_bool,
    "CONSENT_CHECK_INTERVAL": typed.as_int,
    "PENDING_LOGIN_TTL": _positive(typed.as_int, minimum=1),
    "PENDING_LOGIN_MAX": _positive(typed.as_int, minimum=1),
    "CLOCK_LEEWAY": typed.as_int,
    "ID_TOKEN_MAX_AGE": _positive(typed.as_int, minimum=1),
    "TRUSTED_AUDIENCES": typed.as_str_tuple,
    "JWKS_CACHE_TTL": _positive(typed.as_int, minimum=1),
    "JWKS_REFETCH_INTERVAL": typed.as_int,
    "HTTP_CONNECT_TIMEOUT": _positive(typed.as_float, strict=True),
    "HTTP_READ_TIMEOUT": _positive(typed.as_float, strict=True),
    "HTTP_RETRIES": typed.as_int,
    "HTTP_DEADLINE": _positive(typed.as_float, strict=True),
    "HTTP_CA_FILE": typed.as_optional_str,
    "LOGIN_REDIRECT_URL": typed.as_str,
    "LOGOUT_REDIRECT_URL": typed.as_str,
    "SANDBOX": typed.as_bool,
    "SANDBOX_ALLOW_WITHOUT_DEBUG": typed.as_bool,
    "CACHE_ALIAS": typed.as_str,
    "API_RATE_LIMITS": typed.as_rate_map,
    "API_DEFAULT_RATE": _positive(typed.as_float, strict=True),
    "API_MAX_WAIT": typed.as_float,
    "API_MAX_RETRIES": typed.as_int,
    "API_RETRY_AFTER_CAP": typed.as_float,
    "API_TIME_BUDGET": _positive(typed.as_float, strict=True),
    "API_MAX_WAITING": typed.as_int,
    "SIGN_IN_TIME_BUDGET": _positive(typed.as_float, strict=True),
    "CLAIMS_MAX_AGE": typed.as_int,
    "REQUEST_START_HEADER": typed.as_str,
    "APPLICATION_SCOPES": typed.as_str_tuple,
    "REFRESH_MARGIN": typed.as_int,
    "AUDIT_RETENTION_DAYS": typed.as_int,
    "METRICS_TOKEN": typed.as_str,
}
KNOWN_KEYS = {*CONVERTERS, "REALMS"}


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
    # Client ids besides ours an ID token or logout token may list in ``aud``.
    trusted_audiences: tuple[str, ...] = ()
    jwks_cache_ttl: int = 3600
    jwks_refetch_interval: int = 60
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 10.0
    http_retries: int = 2
    # Wall-clock seconds one outbound call may take in all (timeouts bound each read).
    http_deadline: float = 20.0
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
    # Seconds one API call may take in all, from the request's arrival: its turn,
    # its retries, its answers.
    api_time_budget: float = 5.0
    # Callers of one host (all its processes and threads) that may wait for a
    # turn under the quota at once; the others are answered at once.
    api_max_waiting: int = 2
    # The sign-in's own budget for its userinfo call, from the callback's arrival;
    # past it the sign-in completes with the ID token's claims.
    sign_in_time_budget: float = 3.0
    # A returning sign-in reads userinfo only when the stored claims are older
    # than this (seconds); 0: at every sign-in.
    claims_max_age: int = 86400
    # The header a proxy sets with the request's arrival time ("" to ignore any).
    request_start_header: str = "X-Request-Start"
    application_scopes: tuple[str, ...] = ("api_offresdemploiv2", "o2dsoffre")
    # Refresh an access token this many seconds before it expires.
    refresh_margin: int = 60
    audit_retention_days: int = 365
    # The bearer token of ftauth.metrics.metrics_view (empty: the view is a 404).
    metrics_token: str = field(default="", repr=False)

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
            deadline=self.http_deadline,
        )


class SettingsErrors(ConfigurationError):
    """Every problem found in ``FTAUTH``, each a :class:`SettingError` with its check id."""

    def __init__(self, errors: list[typed.SettingError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def is_site_relative(url: str) -> bool:
    """A server URL given as a path: the sandbox, on this very site."""
    return url.startswith("/") and not url.startswith("//")


def _on_site(url: str, origin: str) -> str:
    return f"{origin}{url}" if origin and is_site_relative(url) else url


def _sandbox_realms(realms_raw: Any, origin: str) -> Any:
    """Each realm's options, its server defaulting to the sandbox's and made absolute."""
    if not isinstance(realms_raw, Mapping):
        return realms_raw  # refused with its own message by build_realms
    realms = {}
    for name, options in realms_raw.items():
        options = dict(options or {}) if isinstance(options, Mapping) else options
        if isinstance(options, dict):
            server = options.get("server") or SANDBOX_SERVERS.get(name, "")
            if server:
                options["server"] = _on_site(str(server), origin)
        realms[name] = options
    return realms


def load_settings(raw: Any, origin: str = "") -> FTAuthSettings:
    """Build the typed settings from a ``FTAUTH`` dict, every value converted.

    Raises :class:`SettingsErrors` listing each wrong value (all of them, so that
    ``manage.py check`` reports everything at once). ``origin``
    (``http://127.0.0.1:8001``) completes the sandbox's site-relative URLs.
    """
    if not isinstance(raw, Mapping):
        raise SettingsErrors([typed.wrong_type("settings.FTAUTH", "a dict", raw)])
    errors: list[typed.SettingError] = []
    unknown = {str(key) for key in raw} - KNOWN_KEYS
    if unknown:
        errors.append(
            typed.SettingError(
                f"FTAUTH has unknown keys: {', '.join(sorted(unknown))}",
                check_id=typed.UNKNOWN_KEY,
            )
        )
    values: dict[str, Any] = {}
    for key, convert in CONVERTERS.items():
        if key in raw and raw[key] is not None:
            try:
                values[key.lower()] = convert(f"FTAUTH['{key}']", raw[key])
            except typed.SettingError as exc:
                errors.append(exc)
    sandbox = values.get("sandbox", False)
    api_url = (values.pop("api_url", "") or (SANDBOX_API_URL if sandbox else API_SERVER)).rstrip(
        "/"
    )
    realms_raw = raw.get("REALMS", {"individu": {}})
    if sandbox:
        api_url = _on_site(api_url, origin)
        realms_raw = _sandbox_realms(realms_raw, origin)
    try:
        realms = build_realms(realms_raw, api_url)
    except typed.SettingError as exc:
        errors.append(exc)
    if errors:
        raise SettingsErrors(errors)
    return FTAuthSettings(
        client_id=values.pop("client_id", ""),
        client_secret=values.pop("client_secret", ""),
        realms=realms,
        api_url=api_url,
        **values,
    )


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


def server_origin(request: Any) -> str:
    """The address Django's own server (runserver, the live server of tests) was
    started on, from what the server itself puts in the WSGI environment; ``""``
    under any other server.

    wsgiref's ``SERVER_PORT`` comes from the listening socket, not from the request
    (gunicorn's comes from the ``Host`` header, so it is not used; no header reaches
    ``SERVER_SOFTWARE``). Of the request's ``Host`` only the loopback name is kept,
    when it is one of ``localhost``, ``127.0.0.1`` or ``[::1]`` (the browser's cookies
    follow the name it was given); its port never counts.
    """
    meta = request.META
    if not str(meta.get("SERVER_SOFTWARE", "")).startswith("WSGIServer/"):
        return ""
    port = str(meta.get("SERVER_PORT", ""))
    if not port.isdigit():
        return ""
    host = str(meta.get("HTTP_HOST", "")).lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    # The sandbox is plain HTTP: only a loopback address may serve it.
    return f"http://{name if name in LOOPBACK_NAMES else '127.0.0.1'}:{port}"


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def serving(request: Any) -> contextlib.AbstractContextManager[None]:
    """:func:`serving_origin` with the address this server was started on, when it
    matters (never the request's ``Host``: see the module's docstring)."""
    try:
        relative = _uses_site_origin()
    except ConfigurationError:
        relative = False  # reported by manage.py check; pages must still render
    if not relative:
        return contextlib.nullcontext()
    origin = server_origin(request)
    if not origin:
        # The URLs stay paths: every outbound call is refused (no scheme, no host).
        return contextlib.nullcontext()
    return serving_origin(origin)


def check_sandbox_allowed() -> None:
    """:class:`ConfigurationError` when ``SANDBOX`` is on and ``DEBUG`` off, unless
    ``SANDBOX_ALLOW_WITHOUT_DEBUG``: the sandbox signs anyone in as a test persona,
    and a site serving with it by mistake must not serve (E030 in ``manage.py
    check`` is not enough: a site serves anyway)."""
    conf = get_settings()
    if conf.sandbox and not django_settings.DEBUG and not conf.sandbox_allow_without_debug:
        raise ConfigurationError(
            "FTAUTH['SANDBOX'] is on with DEBUG = False: ftauth refuses to serve. Set "
            "FTAUTH['SANDBOX'] = False to use France Travail, or, for a sandbox served on "
            "purpose, FTAUTH['SANDBOX_ALLOW_WITHOUT_DEBUG'] = True."
        )


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


def get_http() -> HttpClient:
    """The shared HTTP client, built from the settings; refused (no outbound call at
    all) when the sandbox is on in production (:func:`check_sandbox_allowed`)."""
    check_sandbox_allowed()
    return _http()


@functools.cache
def _http() -> HttpClient:
    return HttpClient(get_settings().http_config)


@receiver(setting_changed)
def _reset(setting: str, **kwargs: Any) -> None:
    if setting in {"FTAUTH", "CACHES"}:
        _settings_at.cache_clear()
        _uses_site_origin.cache_clear()
        _http.cache_clear()
