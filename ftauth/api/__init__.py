"""Calling France Travail APIs, as the application or on behalf of a user.

::

    from ftauth import api

    search = api.application().get("offresdemploi/v2/offres/search", params={"motsCles": "pain"})
    me = api.for_request(request, realm="individu").get("peconnect-individu/v1/userinfo")

Paths are relative to ``{FTAUTH['API_URL']}/partenaire/``. Calls are paced to
stay under the per-application quota (``API_RATE_LIMITS``, ``API_DEFAULT_RATE``)
across processes; errors are the typed ones of :mod:`ftauth.core.errors`.

On behalf of a user, each sign-in (device) is its own grant:
:func:`for_request` uses the grant of the current session, :func:`for_user`
(jobs, commands) the account's most recently refreshed grant. A call whose
grant France Travail refuses raises ``ftauth.consent.GrantEnded`` (sign in
again on this device) or ``ConsentWithdrawn`` (the user withdrew consent).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest

from ftauth import consent, vault
from ftauth.conf import get_settings
from ftauth.core.errors import ConsentWithdrawn
from ftauth.core.realms import REALM_NAMES
from ftauth.models import Grant, LinkedAccount

from .client import ApiClient, ApiResponse, check_path
from .clients import application_tokens, build_client, rate_limiter
from .credentials import ApplicationCredentials
from .quota import RateLimitHeaders

__all__ = [
    "ApiClient",
    "ApiResponse",
    "RateLimitHeaders",
    "application",
    "application_tokens",
    "check_path",
    "for_request",
    "for_user",
    "rate_limiter",
]


def application(scopes: Iterable[str] | None = None) -> ApiClient:
    """A client calling with the application's token (no user involved).

    ``scopes`` defaults to ``FTAUTH['APPLICATION_SCOPES']``.
    """
    conf = get_settings()
    if isinstance(scopes, str):  # "api_offresdemploiv2 o2dsoffre", as in the docs
        scopes = scopes.split()
    chosen = conf.application_scopes if scopes is None else tuple(scopes)
    credentials = ApplicationCredentials(application_tokens(conf), chosen)
    return build_client(conf, lambda **kw: ApiClient(credentials, **kw))


def _account(user: Any, realm: str) -> LinkedAccount:
    if realm not in REALM_NAMES:
        raise ValueError(f"unknown realm {realm!r}; known realms: {', '.join(REALM_NAMES)}")
    account = None
    if getattr(user, "is_authenticated", False):
        account = LinkedAccount.objects.filter(user=user, realm=realm).first()
    if account is None:
        raise vault.TokensUnavailable(f"no {realm} identity linked to this user")
    if account.consent_withdrawn_at is not None:
        raise ConsentWithdrawn("consent was withdrawn for this account")
    return account


def _client(account: LinkedAccount, grant: Grant | None) -> ApiClient:
    if grant is None:
        raise vault.TokensUnavailable(f"no tokens stored for this {account.realm} identity")
    grant.account = account
    return consent.client_for(grant)


def for_request(request: HttpRequest, realm: str = "individu") -> ApiClient:
    """A client calling with the token of this session's sign-in (this device's grant).

    Raises ``ftauth.vault.TokensUnavailable`` when the user has no linked
    identity in that realm (or is anonymous): they must sign in with France Travail.
    """
    account = _account(getattr(request, "user", None), realm)
    return _client(account, vault.session_grant(request, account))


def for_user(user: Any, realm: str = "individu") -> ApiClient:
    """A client calling with ``user``'s most recently refreshed grant for ``realm``
    (outside a request: jobs, commands). In a view, prefer :func:`for_request`."""
    account = _account(user, realm)
    return _client(account, vault.latest_grant(account))
