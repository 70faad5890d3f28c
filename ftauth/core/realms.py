"""The identity providers ftauth knows, as data: France Travail's realms and ProConnect.

A realm is a population of users served by one identity server: France
Travail's ``/individu``, ``/employeur`` and ``/partenaire`` (a ``realm`` query
parameter), its internal ``/agent`` (advisors, reachable only from France
Travail's network), and ProConnect, the State's federation for professionals
(docs/proconnect.md). Every URL is derived from the server base URL with the
provider's paths (see docs/realms.md), and each can be overridden. What differs
between providers is a field of :class:`Realm`, read by one named hook of the
flow (authorize parameters, userinfo as a JWT, acr policy, sign-out), never a
test of the realm's name.
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
AGENT = "agent"
PROCONNECT = "proconnect"

INDIVIDU_SERVER = "https://authentification-candidat.francetravail.fr"
ENTREPRISE_SERVER = "https://entreprise.francetravail.fr"
API_SERVER = "https://api.francetravail.io"
# France Travail's realm for its advisors: its discovery answers only on France
# Travail's internal network; outside sites sign advisors in through ProConnect.
AGENT_SERVER = "https://proxyproconnect.francetravail.net"
# ProConnect's four registrations (PROCONNECT.md, "Environments"): each has its own
# client id, secret and redirect URIs.
PROCONNECT_ENVIRONMENTS = {
    "integration": "https://fca.integ01.dev-agentconnect.fr",
    "production": "https://auth.agentconnect.gouv.fr",
    "integration-rie": "https://fca.integ02.agentconnect.rie.gouv.fr",
    "production-rie": "https://auth.agentconnect.rie.gouv.fr",
}
# The authorize parameters ProConnect knows besides the required ones: it refuses
# any other (error Y000400), so a ProConnect realm may add only these.
PROCONNECT_OPTIONAL_PARAMS = frozenset({"claims", "prompt", "idp_hint", "login_hint", "siret_hint"})

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

# The end-session return parameter: France Travail's, and the standard one (RP-Initiated
# Logout 1.0) that ProConnect uses.
END_SESSION_REDIRECT_PARAMS = ("redirect_uri", "post_logout_redirect_uri")

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
    # --- what differs between providers, each read by one named hook ---
    # France Travail names the realm in the authorize query (``realm=/individu``);
    # ProConnect refuses any parameter it does not know (``authorize.provider_params``).
    realm_parameter: bool = True
    # The only optional authorize parameters the server accepts (None: any).
    allowed_authorize_params: frozenset[str] | None = None
    # Endpoints taken from the discovery document (ProConnect: "use discovery"),
    # the paths above being the fallback (``Provider.endpoints``).
    discovered_endpoints: bool = False
    # Userinfo answers a signed JWT, verified like an ID token (``Provider.userinfo_claims``).
    userinfo_jwt: bool = False
    # This provider's own registration; empty: the site's CLIENT_ID / CLIENT_SECRET.
    # ``own_registration``: the provider registers sites apart from France Travail
    # (ProConnect), so ``manage.py check`` asks for its own client id.
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    own_registration: bool = False
    # The ``acr`` levels the site accepts (empty: not checked), requested through
    # ``claims``; ``essential`` only when the site wants the provider to refuse
    # (PROCONNECT.md: the callback then comes back without a code).
    acr_values: tuple[str, ...] = ()
    acr_essential: bool = False
    # Ask for ``amr`` (recorded, never trusted to be present: seen null or missing).
    request_amr: bool = False
    # ProConnect: send the person straight to one identity provider (France Travail's).
    idp_hint: str = ""
    # The ``idp_id`` values accepted (empty: any; the adapter may refuse more).
    allowed_idps: tuple[str, ...] = ()
    # The end-session return parameter: France Travail's ``redirect_uri``, the
    # standard ``post_logout_redirect_uri`` elsewhere; ``end_session_state``: a
    # ``state`` is sent and checked on return (``views.session.logout``).
    end_session_redirect_param: str = "redirect_uri"
    end_session_state: bool = False
    # Back-channel logout tokens accepted (ProConnect has it disabled: none will come).
    backchannel_logout: bool = True
    # Reachable only from France Travail's internal network (``/agent``): informative,
    # shown by ``manage.py check`` when enabled.
    internal_network: bool = False

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
        if self.end_session_redirect_param not in END_SESSION_REDIRECT_PARAMS:
            raise SettingError(
                f"FTAUTH['REALMS']['{self.name}']['end_session_redirect_param'] must be one "
                f"of {', '.join(END_SESSION_REDIRECT_PARAMS)}, "
                f"not {self.end_session_redirect_param!r}",
                check_id=typed.OUT_OF_RANGE,
            )
        allowed = self.allowed_authorize_params
        if allowed is not None:
            unknown = set(self.extra_authorize_params) - allowed
            if unknown:
                raise SettingError(
                    f"FTAUTH['REALMS']['{self.name}']['extra_authorize_params'] has "
                    f"parameters the server refuses: {', '.join(sorted(unknown))} "
                    f"(it knows {', '.join(sorted(allowed))})",
                    check_id=typed.OUT_OF_RANGE,
                )


# France Travail's paths under a server (FRANCE_TRAVAIL.md); ``{q}`` is the quoted
# realm path, ``{name}`` the realm's name. The issuer comes from ``default_issuer``.
FRANCE_TRAVAIL_PATHS = {
    "authorize_url": "/connexion/oauth2/authorize",
    # France Travail wants the realm in the token URL's query, not in the body.
    "token_url": "/connexion/oauth2/access_token?realm={q}",
    "jwks_url": "/connexion/oauth2/connect/jwk_uri?realm={q}",
    "discovery_url": "/connexion/oauth2/realms/root/realms/{name}/.well-known/openid-configuration",
    "end_session_url": "/compte/deconnexion",
}
# ProConnect's, all under /api/v2 (PROCONNECT.md, "Environments and endpoints"):
# the fallback of its discovery document.
PROCONNECT_PATHS = {
    "authorize_url": "/api/v2/authorize",
    "token_url": "/api/v2/token",
    "jwks_url": "/api/v2/jwks",
    "discovery_url": "/api/v2/.well-known/openid-configuration",
    "end_session_url": "/api/v2/session/end",
    "userinfo_url": "/api/v2/userinfo",
    "issuer": "/api/v2",
}

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
    # France Travail's advisors (PROCONNECT.md, "France Travail advisors"): the realm
    # in the authorize path, not in its query; no userinfo known (the ID token's
    # claims serve); its sign-out is a POST, not a browser redirect ftauth can make,
    # so only the local session ends.
    AGENT: {
        "server": AGENT_SERVER,
        "scopes": ("openid", "profile", "email"),
        "userinfo_path": "",
        "paths": {
            **FRANCE_TRAVAIL_PATHS,
            "authorize_url": "/connexion/oauth2/agent/authorize",
            "end_session_url": "",
        },
        "fields": {"realm_parameter": False, "internal_network": True},
    },
    PROCONNECT: {
        "environments": PROCONNECT_ENVIRONMENTS,
        "server": PROCONNECT_ENVIRONMENTS["production"],
        # les-emplois' production scopes (identity scopes listed one by one), and siret.
        "scopes": ("openid", "email", "given_name", "usual_name", "siret", "idp_id", "custom"),
        "paths": PROCONNECT_PATHS,
        "fields": {
            "realm_parameter": False,
            "allowed_authorize_params": PROCONNECT_OPTIONAL_PARAMS,
            "discovered_endpoints": True,
            "userinfo_jwt": True,
            # Chosen at registration; ES256 is the server's default. HS256 only if set.
            "id_token_algorithms": ("ES256", "RS256"),
            "end_session_redirect_param": "post_logout_redirect_uri",
            "end_session_state": True,
            "backchannel_logout": False,
            "own_registration": True,
        },
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
    "environment": typed.as_str,
    "client_id": typed.as_str,
    "client_secret": typed.as_str,
    "acr_values": typed.as_str_tuple,
    "acr_essential": typed.as_bool,
    "request_amr": typed.as_bool,
    "idp_hint": typed.as_str,
    "allowed_idps": typed.as_str_tuple,
    "userinfo_jwt": typed.as_bool,
    "end_session_redirect_param": typed.as_str,
    "end_session_state": typed.as_bool,
    "discovered_endpoints": typed.as_bool,
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


def _server(name: str, defaults: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """The server base URL: given, or the named environment's, or the default."""
    environments = defaults.get("environments", {})
    environment = options.get("environment")
    if environment is not None and environment not in environments:
        known = ", ".join(environments) or "none"
        raise SettingError(
            f"FTAUTH['REALMS']['{name}']['environment'] must be one of: {known}; "
            f"not {environment!r}",
            check_id=typed.OUT_OF_RANGE,
        )
    server = options.get("server") or environments.get(environment) or defaults["server"]
    return str(server).rstrip("/")


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
    server = _server(name, defaults, options)
    q = quote(f"/{name}", safe="")
    scopes = options.get("scopes", defaults["scopes"])
    paths = {
        key: f"{server}{path.format(q=q, name=name)}" if path else ""
        for key, path in defaults.get("paths", FRANCE_TRAVAIL_PATHS).items()
    }
    userinfo_path = defaults.get("userinfo_path", "")
    if userinfo_path:
        paths["userinfo_url"] = f"{api_url.rstrip('/')}{userinfo_path}"
    paths.setdefault("issuer", default_issuer(server, name))
    realm = Realm(
        name=name,
        server=server,
        scopes=tuple(scopes),
        fetch_userinfo=bool(paths.get("userinfo_url")),
        **paths,
        **defaults.get("fields", {}),
    )
    overrides = {k: v for k, v in options.items() if k not in ("server", "environment")}
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
    """Every known realm; those not named in ``configured`` are known but disabled."""
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
