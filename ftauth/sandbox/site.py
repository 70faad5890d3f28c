"""Absolute URLs of the sandbox's hosts, built from the request.

The sandbox is mounted wherever the project includes it, on whatever port the
server listens: every URL it announces is derived from the current request.
The issuer carries an explicit port, like France Travail's
(``https://authentification-candidat.francetravail.fr:443/connexion/...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from django.http import HttpRequest
from django.urls import reverse

from .directory import API_HOST


def host_base(request: HttpRequest, host: str) -> str:
    """``http://127.0.0.1:8000/sandbox/authentification-candidat``."""
    url = request.build_absolute_uri(reverse("ftauth_sandbox:host_home", args=[host]))
    return url.rstrip("/")


def api_base(request: HttpRequest) -> str:
    return host_base(request, API_HOST)


def issuer_for(base: str, realm: str) -> str:
    parts = urlsplit(base)
    netloc = parts.netloc
    if parts.port is None:
        netloc = f"{netloc}:{443 if parts.scheme == 'https' else 80}"
    root = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return f"{root}/connexion/oauth2/realms/root/realms/{realm}"


@dataclass(frozen=True)
class RealmSite:
    """One realm as served to the current request."""

    realm: str
    host: str
    base: str
    api: str

    @property
    def issuer(self) -> str:
        return issuer_for(self.base, self.realm)

    @property
    def realm_param(self) -> str:
        return quote(f"/{self.realm}", safe="")

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.base}/connexion/oauth2/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/connexion/oauth2/access_token?realm={self.realm_param}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base}/connexion/oauth2/connect/jwk_uri?realm=/{self.realm}"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.base}/compte/deconnexion"

    @property
    def userinfo_endpoint(self) -> str:
        path = {
            "individu": "partenaire/peconnect-individu/v1/userinfo",
            "employeur": "partenaire/peconnect-entreprise/v1/userinfo",
        }.get(self.realm)
        return f"{self.api}/{path}" if path else ""


def realm_site(request: HttpRequest, host: str, realm: str) -> RealmSite:
    return RealmSite(realm=realm, host=host, base=host_base(request, host), api=api_base(request))
