"""Building API clients from the settings: the quota pacing and the application
tokens shared by every process of this application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ftauth.conf import FTAuthSettings, get_http, get_settings
from ftauth.core.realms import PARTENAIRE
from ftauth.internal.cache import shared

from .app_tokens import ApplicationTokens
from .client import ApiClient
from .quota import RateLimiter, namespace_for

C = TypeVar("C", bound=ApiClient)


def rate_limiter(conf: FTAuthSettings | None = None) -> RateLimiter:
    """The quota pacing shared by every process of this application."""
    conf = conf or get_settings()
    return RateLimiter(
        shared(conf.cache_alias),
        namespace=namespace_for(conf.client_id),
        rates=conf.api_rate_limits,
        default_rate=conf.api_default_rate,
        max_wait=conf.api_max_wait,
        max_waiting=conf.api_max_waiting,
    )


def application_tokens(conf: FTAuthSettings | None = None) -> ApplicationTokens:
    """The cache of client-credentials tokens of the ``/partenaire`` realm."""
    conf = conf or get_settings()
    return ApplicationTokens(
        cache=shared(conf.cache_alias),
        http=get_http(),
        realm=conf.realm(PARTENAIRE),
        client_id=conf.client_id,
        client_secret=conf.client_secret,
        refresh_margin=conf.refresh_margin,
        # The renewing process may take a whole token request, no longer.
        lock_timeout=conf.http_connect_timeout + conf.http_read_timeout + 2,
    )


def build_client(conf: FTAuthSettings, make: Callable[..., C], **overrides: Any) -> C:
    """``make(**options)`` with this application's API URL, transport and quota
    (``overrides``: ``time_budget``, ``background``)."""
    options: dict[str, Any] = {
        "api_url": conf.api_url,
        "http": get_http(),
        "limiter": rate_limiter(conf),
        "max_retries": conf.api_max_retries,
        "retry_after_cap": conf.api_retry_after_cap,
        "time_budget": conf.api_time_budget,
        **overrides,
    }
    return make(**options)
