"""Calling France Travail APIs, as the application or on behalf of a user.

::

    from ftauth import api

    search = api.application().get("offresdemploi/v2/offres/search", params={"motsCles": "pain"})
    me = api.for_user(request.user, realm="individu").get("peconnect-individu/v1/userinfo")

Paths are relative to ``{FTAUTH['API_URL']}/partenaire/``. Calls are paced to
stay under the per-application quota (``API_RATE_LIMITS``, ``API_DEFAULT_RATE``)
across processes; errors are the typed ones of :mod:`ftauth.core.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.cache import caches

from ftauth.conf import FTAuthSettings, get_http, get_settings
from ftauth.core.realms import PARTENAIRE, REALM_NAMES

from .app_tokens import ApplicationTokens
from .client import ApiClient, ApiResponse, check_path
from .credentials import ApplicationCredentials, UserCredentials
from .quota import RateLimiter, RateLimitHeaders, namespace_for

__all__ = [
    "ApiClient",
    "ApiResponse",
    "RateLimitHeaders",
    "application",
    "application_tokens",
    "check_path",
    "for_user",
    "rate_limiter",
]


def rate_limiter(conf: FTAuthSettings | None = None) -> RateLimiter:
    """The quota pacing shared by every process of this application."""
    conf = conf or get_settings()
    return RateLimiter(
        caches[conf.cache_alias],
        namespace=namespace_for(conf.client_id),
        rates=conf.api_rate_limits,
        default_rate=conf.api_default_rate,
        max_wait=conf.api_max_wait,
    )


def application_tokens(conf: FTAuthSettings | None = None) -> ApplicationTokens:
    """The cache of client-credentials tokens of the ``/partenaire`` realm."""
    conf = conf or get_settings()
    return ApplicationTokens(
        cache=caches[conf.cache_alias],
        http=get_http(),
        realm=conf.realm(PARTENAIRE),
        client_id=conf.client_id,
        client_secret=conf.client_secret,
        refresh_margin=conf.refresh_margin,
        # The renewing process may take a whole token request, no longer.
        lock_timeout=conf.http_connect_timeout + conf.http_read_timeout + 2,
    )


def _client(credentials: Any, conf: FTAuthSettings) -> ApiClient:
    return ApiClient(
        credentials,
        api_url=conf.api_url,
        http=get_http(),
        limiter=rate_limiter(conf),
        max_retries=conf.api_max_retries,
        retry_after_cap=conf.api_retry_after_cap,
        time_budget=conf.api_time_budget,
    )


def application(scopes: Iterable[str] | None = None) -> ApiClient:
    """A client calling with the application's token (no user involved).

    ``scopes`` defaults to ``FTAUTH['APPLICATION_SCOPES']``.
    """
    conf = get_settings()
    if isinstance(scopes, str):  # "api_offresdemploiv2 o2dsoffre", as in the docs
        scopes = scopes.split()
    chosen = conf.application_scopes if scopes is None else tuple(scopes)
    return _client(ApplicationCredentials(application_tokens(conf), chosen), conf)


def for_user(user: Any, realm: str = "individu") -> ApiClient:
    """A client calling with ``user``'s consented token for ``realm``.

    Raises ``ftauth.vault.TokensUnavailable`` when the user has no linked
    identity in that realm (or is anonymous): they must sign in with France Travail.
    """
    from ftauth import vault
    from ftauth.models import LinkedAccount

    if realm not in REALM_NAMES:
        raise ValueError(f"unknown realm {realm!r}; known realms: {', '.join(REALM_NAMES)}")
    account = None
    if getattr(user, "is_authenticated", False):
        account = LinkedAccount.objects.filter(user=user, realm=realm).first()
    if account is None:
        raise vault.TokensUnavailable(f"no {realm} identity linked to this user")
    return _client(UserCredentials(account), get_settings())
