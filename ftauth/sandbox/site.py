"""Absolute URLs of the sandbox's hosts, built from the request.

The sandbox is mounted wherever the project includes it, on whatever port the
server listens: every URL it announces is derived from the current request.
The issuer carries an explicit port, like France Travail's
(``https://authentification-candidat.francetravail.fr:443/connexion/...``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from ftauth.core.realms import Realm, build_realm, default_issuer

from .directory import API_HOST


def host_base(request: HttpRequest, host: str) -> str:
    """``http://127.0.0.1:8000/sandbox/authentification-candidat``."""
    url = request.build_absolute_uri(reverse("ftauth_sandbox:host_home", args=[host]))
    return url.rstrip("/")


def api_base(request: HttpRequest) -> str:
    return host_base(request, API_HOST)


def issuer_for(base: str, realm: str) -> str:
    return default_issuer(base, realm)


@dataclass(frozen=True)
class RealmSite:
    """One realm as served to the current request.

    Its URLs are France Travail's layout beneath the served host, built by the
    same code that ftauth uses to reach a real server (``ftauth.core.realms``):
    one description of the paths, for both sides.
    """

    realm: str
    host: str
    base: str
    api: str

    @property
    def layout(self) -> Realm:
        return build_realm(self.realm, {"server": self.base}, self.api)

    @property
    def issuer(self) -> str:
        return self.layout.issuer

    @property
    def authorization_endpoint(self) -> str:
        return self.layout.authorize_url

    @property
    def token_endpoint(self) -> str:
        return self.layout.token_url

    @property
    def jwks_uri(self) -> str:
        return self.layout.jwks_url

    @property
    def end_session_endpoint(self) -> str:
        return self.layout.end_session_url

    @property
    def userinfo_endpoint(self) -> str:
        return self.layout.userinfo_url


def realm_site(request: HttpRequest, host: str, realm: str) -> RealmSite:
    return RealmSite(realm=realm, host=host, base=host_base(request, host), api=api_base(request))
