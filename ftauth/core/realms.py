"""The three France Travail realms, as data.

A realm is a population of users served by one identity server under one
``realm`` query parameter. Every URL below is derived from the server base URL
with the France Travail paths (see docs/realms.md), and each can be overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

from . import typed
from .typed import SettingError

INDIVIDU = "individu"
EMPLOYEUR = "employeur"
PARTENAIRE = "partenaire"

INDIVIDU_SERVER = "https://authentification-candidat.francetravail.fr"
ENTREPRISE_SERVER = "https://entreprise.francetravail.fr"
API_SERVER = "https://api.francetravail.io"

# The servers' names from before Pôle emploi became France Travail (2024). Older
# deployments, documents and integrations still use them: they name the same
# servers, so ftauth recognises them, and ``manage.py check`` suggests the new name.
FORMER_SERVERS = {
    "https://authentification-candidat.pole-emploi.fr": INDIVIDU_SERVER,
    "https://entreprise.pole-emploi.fr": ENTREPRISE_SERVER,
}

# RFC 6749 2.3.1 / OIDC Core 9: how the client authenticates at the token endpoint.
# France Travail takes the secret in the form body only (HTTP Basic is refused);
# Basic is there for other servers and conformance profiles.
CLIENT_SECRET_POST = "client_secret_post"
CLIENT_SECRET_BASIC = "client_secret_basic"
CLIENT_AUTH_METHODS = (CLIENT_SECRET_POST, CLIENT_SECRET_BASIC)

# Lifetimes announced by France Travail (seed page): used as defaults and bounds.
AUTHORIZATION_CODE_LIFETIME = 60
ACCESS_TOKEN_LIFETIME = 25 * 60
ID_TOKEN_LIFETIME = 150 * 60


@dataclass(frozen=True)
class Realm:
    """One realm, fully resolved: every endpoint is an absolute URL."""

    name: str
    server: str
    scopes: tuple[str, ...]
    enabled: bool = True
    authorize_url: str = ""
    token_url: str = ""
    jwks_url: str = ""
    discovery_url: str = ""
    end_session_url: str = ""
    userinfo_url: str = ""
    issuer: str = ""
    # True when the settings name the issuer: it then wins over discovery.
    issuer_is_configured: bool = False
    id_token_algorithms: tuple[str, ...] = ("RS256",)
    fetch_userinfo: bool = True
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_endpoint_auth_method: str = CLIENT_SECRET_POST
    # Older France Travail integrations ask for ``application_<client_id>`` too.
    application_scope: bool = False

    @property
    def path(self) -> str:
        """The value of the ``realm`` parameter: ``/individu``."""
        return f"/{self.name}"

    @property
    def current_server(self) -> str | None:
        """The France Travail name of a former ``pole-emploi.fr`` server, else ``None``."""
        return FORMER_SERVERS.get(self.server.lower())

    def scopes_for(self, client_id: str) -> tuple[str, ...]:
        """The scopes of an authorization request made by ``client_id``."""
        if self.application_scope:
            extra = f"application_{client_id}"
            if extra not in self.scopes:
                return (*self.scopes, extra)
        return self.scopes

    def __post_init__(self) -> None:
        if self.token_endpoint_auth_method not in CLIENT_AUTH_METHODS:
            raise SettingError(
                f"FTAUTH['REALMS']['{self.name}']['token_endpoint_auth_method'] must be one "
                f"of {', '.join(CLIENT_AUTH_METHODS)}, not {self.token_endpoint_auth_method!r}",
                check_id=typed.OUT_OF_RANGE,
            )
        if "none" in {a.lower() for a in self.id_token_algorithms}:
            raise SettingError(
                f"FTAUTH['REALMS']['{self.name}']['id_token_algorithms'] must not contain 'none'",
                check_id=typed.BAD_ALGORITHMS,
            )
        if not self.id_token_algorithms:
            raise SettingError(
                f"FTAUTH['REALMS']['{self.name}']['id_token_algorithms'] is empty",
                check_id=typed.BAD_ALGORITHMS,
            )


# What differs between realms; everything else follows from the server base URL.
DEFAULTS: dict[str, dict[str, Any]] = {
    INDIVIDU: {
        "server": INDIVIDU_SERVER,
        "scopes": ("api_peconnect-individuv1", "openid", "profile", "email"),
        "userinfo_path": "/partenaire/peconnect-individu/v1/userinfo?schema=openid",
    },
    EMPLOYEUR: {
        "server": ENTREPRISE_SERVER,
        "scopes": ("api_peconnect-entreprisev1", "openid", "profile", "email", "habilitation"),
        "userinfo_path": "/partenaire/peconnect-entreprise/v1/userinfo",
    },
    PARTENAIRE: {
        "server": ENTREPRISE_SERVER,
        "scopes": ("openid", "profile", "email"),
        "userinfo_path": "",
    },
}

REALM_NAMES: tuple[str, ...] = tuple(DEFAULTS)

# Each option a realm may set, with the conversion of its value.
_OPTIONS = {
    "enabled": typed.as_bool,
    "server": typed.as_str,
    "scopes": typed.as_str_tuple,
    "authorize_url": typed.as_str,
    "token_url": typed.as_str,
    "jwks_url": typed.as_str,
    "discovery_url": typed.as_str,
    "end_session_url": typed.as_str,
    "userinfo_url": typed.as_str,
    "issuer": typed.as_str,
    "id_token_algorithms": typed.as_str_tuple,
    "fetch_userinfo": typed.as_bool,
    "extra_authorize_params": typed.as_str_map,
    "token_endpoint_auth_method": typed.as_str,
    "application_scope": typed.as_bool,
}
_OVERRIDABLE = set(_OPTIONS)


def is_france_travail_server(server: str) -> bool:
    """A France Travail identity server, under its current or its former name."""
    server = server.rstrip("/").lower()
    return server in FORMER_SERVERS or server in FORMER_SERVERS.values()


def default_issuer(server: str, name: str) -> str:
    """The issuer France Travail puts in its tokens: explicit port, realm path.

    Only a fallback: the discovery document's ``issuer`` wins when it can be had.
    """
    parts = urlsplit(server)
    netloc = parts.netloc
    if parts.port is None:
        netloc = f"{netloc}:{443 if parts.scheme == 'https' else 80}"
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    return f"{base}/connexion/oauth2/realms/root/realms/{name}"


def build_realm(name: str, options: Mapping[str, Any], api_url: str) -> Realm:
    """Resolve one realm from its defaults and the user's options."""
    if name not in DEFAULTS:
        raise SettingError(
            f"FTAUTH['REALMS'] names an unknown realm {name!r}; "
            f"known realms: {', '.join(REALM_NAMES)}",
            check_id=typed.UNKNOWN_REALM,
        )
    options = typed.as_mapping(f"FTAUTH['REALMS']['{name}']", options)
    unknown = set(options) - _OVERRIDABLE
    if unknown:
        raise SettingError(
            f"FTAUTH['REALMS']['{name}'] has unknown keys: {', '.join(sorted(unknown))}",
            check_id=typed.UNKNOWN_KEY,
        )
    options = {
        key: _OPTIONS[key](f"FTAUTH['REALMS']['{name}']['{key}']", value)
        for key, value in options.items()
    }
    defaults = DEFAULTS[name]
    server = str(options.get("server") or defaults["server"]).rstrip("/")
    q = quote(f"/{name}", safe="")
    scopes = options.get("scopes", defaults["scopes"])
    userinfo_path = defaults["userinfo_path"]
    realm = Realm(
        name=name,
        server=server,
        scopes=tuple(scopes),
        authorize_url=f"{server}/connexion/oauth2/authorize",
        # France Travail wants the realm in the token URL's query, not in the body.
        token_url=f"{server}/connexion/oauth2/access_token?realm={q}",
        jwks_url=f"{server}/connexion/oauth2/connect/jwk_uri?realm={q}",
        discovery_url=(
            f"{server}/connexion/oauth2/realms/root/realms/{name}/.well-known/openid-configuration"
        ),
        end_session_url=f"{server}/compte/deconnexion",
        userinfo_url=f"{api_url.rstrip('/')}{userinfo_path}" if userinfo_path else "",
        issuer=default_issuer(server, name),
        fetch_userinfo=bool(userinfo_path),
    )
    overrides = {k: v for k, v in options.items() if k != "server"}
    realm = replace(realm, issuer_is_configured="issuer" in overrides, **overrides)
    if realm.fetch_userinfo and not realm.userinfo_url:
        raise SettingError(
            f"FTAUTH['REALMS']['{name}'] fetches userinfo but has no 'userinfo_url'",
            check_id=typed.NO_USERINFO_URL,
        )
    return realm


def build_realms(
    configured: Mapping[str, Mapping[str, Any]], api_url: str = API_SERVER
) -> dict[str, Realm]:
    """All three realms; those not named in ``configured`` are known but disabled."""
    configured = typed.as_mapping("FTAUTH['REALMS']", configured)
    for name in configured:
        if name not in DEFAULTS:
            build_realm(name, {}, api_url)  # raises the clear error
    realms = {}
    for name in REALM_NAMES:
        if name in configured:
            options = dict(typed.as_mapping(f"FTAUTH['REALMS']['{name}']", configured[name]))
            options.setdefault("enabled", True)
        else:
            options = {"enabled": False}
        realms[name] = build_realm(name, options, api_url)
    return realms
