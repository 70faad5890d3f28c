"""The applications registered with the sandbox, from settings.

The default client is the one ftauth itself uses (``FTAUTH["CLIENT_ID"]`` and
``["CLIENT_SECRET"]``), registered as a France Travail application is: with
ftauth's callback URL of each realm, on any loopback origin. Its paths are
ftauth's URLs where the project mounts them (``reverse("ftauth:callback")``,
``/ftauth/callback/<realm>/`` or ``/auth/callback/<realm>/``), never a fixed
prefix; its back-channel logout URI is ``reverse("ftauth:backchannel_logout")``
on the origin of the redirect URI used at sign-in. ``FTAUTH_SANDBOX["CLIENTS"]``
adds clients with exact URIs.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings as django_settings
from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve, reverse

from ftauth.core.http import is_loopback_host

from .conf import get_sandbox_settings

GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})


@dataclass(frozen=True)
class SandboxClient:
    """An OAuth client; implements what authlib's ``ClientMixin`` asks for."""

    client_id: str
    client_secret: str = field(repr=False)
    name: str = ""
    # Empty: the default client's rule (any loopback origin, ftauth's paths).
    redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str = ""
    post_logout_redirect_uris: tuple[str, ...] = ()
    # France Travail takes client_secret_post only; an extra client may be
    # registered for client_secret_basic, to stand for another server.
    token_endpoint_auth_method: str = "client_secret_post"

    @property
    def is_default(self) -> bool:
        return not self.redirect_uris

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # France Travail wants redirect_uri on every request; no default.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES

    def check_redirect_uri(self, redirect_uri: str, realm: str | None = None) -> bool:
        """Whether ``redirect_uri`` is registered (for ``realm``; authlib also asks
        without one, to know where an unsupported ``response_type`` may be told)."""
        if self.redirect_uris:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or parts.query or parts.fragment:
            return False
        if not _allowed_dev_host(parts.hostname):
            return False
        return _is_ftauth_callback(parts.path, realm)

    def backchannel_logout_uri_for(self, redirect_uri: str, realm: str) -> str:
        """Where to POST logout tokens for a sign-in that used ``redirect_uri``."""
        if not self.is_default:
            return self.backchannel_logout_uri
        parts = urlsplit(redirect_uri)
        path = ftauth_path("ftauth:backchannel_logout", realm)
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        """RP-initiated logout may return to a registered URI or origin."""
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if self.is_default:
            return _allowed_dev_host(parts.hostname)
        if uri in self.post_logout_redirect_uris:
            return True
        origins = {_origin(u) for u in self.redirect_uris}
        return _origin(uri) in origins


def _is_ftauth_callback(path: str, realm: str | None) -> bool:
    """Whether ``path`` is ftauth's callback (of ``realm``) where this project's URLconf
    mounts it. Without ftauth's URLs nothing is registered (``manage.py check`` says
    so: ftauth.E032)."""
    prefix = get_script_prefix()  # reverse() puts it in the URLs ftauth sends
    if not path.startswith(prefix):
        return False
    try:
        match = resolve("/" + path.removeprefix(prefix))
    except Resolver404:
        return False
    return (
        "ftauth" in match.app_names
        and match.url_name == "callback"
        and realm in (None, match.kwargs.get("realm"))
    )


def ftauth_path(name: str, realm: str) -> str:
    """The path of one of ftauth's URLs for ``realm`` in this project's URLconf."""
    try:
        return reverse(name, args=[realm])
    except NoReverseMatch:
        return ""


def _origin(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return (parts.scheme, parts.netloc.lower())


def _allowed_dev_host(host: str | None) -> bool:
    if not host:
        return False
    return is_loopback_host(host) or host.lower() in get_sandbox_settings().redirect_hosts


def _from_mapping(raw: Mapping[str, Any]) -> SandboxClient:
    return SandboxClient(
        client_id=str(raw["client_id"]),
        client_secret=str(raw["client_secret"]),
        name=str(raw.get("name") or raw["client_id"]),
        redirect_uris=tuple(raw.get("redirect_uris") or ()),
        backchannel_logout_uri=str(raw.get("backchannel_logout_uri") or ""),
        post_logout_redirect_uris=tuple(raw.get("post_logout_redirect_uris") or ()),
        token_endpoint_auth_method=str(
            raw.get("token_endpoint_auth_method") or "client_secret_post"
        ),
    )


def registered_clients() -> dict[str, SandboxClient]:
    """Every client, by id: ftauth's own, then those of ``FTAUTH_SANDBOX["CLIENTS"]``."""
    clients: dict[str, SandboxClient] = {}
    ftauth = getattr(django_settings, "FTAUTH", None) or {}
    client_id = str(ftauth.get("CLIENT_ID") or "")
    secret = str(ftauth.get("CLIENT_SECRET") or "")
    if client_id and secret:
        clients[client_id] = SandboxClient(client_id=client_id, client_secret=secret)
    for raw in get_sandbox_settings().clients:
        client = _from_mapping(raw)
        clients[client.client_id] = client
    return clients


def get_client(client_id: str | None) -> SandboxClient | None:
    if not client_id:
        return None
    return registered_clients().get(client_id)
