"""The sandbox's URLs: three hosts as prefixes, France Travail's paths beneath.

``authentification-candidat/`` serves realm individu, ``entreprise/`` the
realms employeur and partenaire, ``api/`` stands for api.francetravail.io;
``proconnect/`` stands for ProConnect (its paths under ``/api/v2``).
"""

from django.urls import path, re_path

from ..internal.debug import secret_free_errors
from ..middleware import consent_exempt
from .views import account, api, authorize, identity, proconnect

app_name = "ftauth_sandbox"

IDP = r"(?P<host>authentification-candidat|entreprise)"

urlpatterns = [
    path("", identity.index, name="index"),
    re_path(
        r"^(?P<host>authentification-candidat|entreprise|api)/$",
        identity.host_home,
        name="host_home",
    ),
    re_path(
        rf"^{IDP}/connexion/oauth2/realms/root/realms/(?P<realm>[a-z]+)/\.well-known/openid-configuration$",
        identity.discovery,
        name="discovery",
    ),
    re_path(
        rf"^{IDP}/connexion/oauth2/\.well-known/openid-configuration$",
        identity.discovery_by_query,
        name="discovery_by_query",
    ),
    re_path(rf"^{IDP}/connexion/oauth2/authorize$", authorize.authorize, name="authorize"),
    re_path(rf"^{IDP}/connexion/oauth2/access_token$", identity.token, name="token"),
    re_path(rf"^{IDP}/connexion/oauth2/connect/jwk_uri$", identity.jwks, name="jwks"),
    re_path(rf"^{IDP}/compte/deconnexion$", identity.end_session, name="end_session"),
    re_path(rf"^{IDP}/compte/consentements$", account.consents, name="consents"),
    path(
        "api/partenaire/peconnect-individu/v1/userinfo",
        api.userinfo_individu,
        name="userinfo_individu",
    ),
    path(
        "api/partenaire/peconnect-entreprise/v1/userinfo",
        api.userinfo_entreprise,
        name="userinfo_entreprise",
    ),
    path("api/partenaire/peconnect-statut/v1/statut", api.statut, name="statut"),
    path("api/partenaire/offresdemploi/v2/offres/search", api.offres_search, name="offres_search"),
    path(
        "api/partenaire/offresdemploi/v2/offres/<str:offre_id>",
        api.offre_detail,
        name="offre_detail",
    ),
    path("api/<path:rest>", api.unknown_api, name="unknown_api"),
    # ProConnect, the State's federation for professionals (views/proconnect.py).
    path("proconnect/api/v2/", proconnect.root, name="proconnect_root"),
    path(
        "proconnect/api/v2/.well-known/openid-configuration",
        proconnect.discovery,
        name="proconnect_discovery",
    ),
    path("proconnect/api/v2/jwks", proconnect.jwks, name="proconnect_jwks"),
    path("proconnect/api/v2/authorize", proconnect.authorize, name="proconnect_authorize"),
    path("proconnect/api/v2/token", proconnect.token, name="proconnect_token"),
    path("proconnect/api/v2/userinfo", proconnect.userinfo, name="proconnect_userinfo"),
    path("proconnect/api/v2/session/end", proconnect.end_session, name="proconnect_end_session"),
]

# The sandbox stands in for France Travail's own site: the consent checks of the
# site it is mounted in must not act on its pages (it shares their session cookie).
# Its error reports (the DEBUG page the demo shows) mask secrets as ftauth's do.
for _pattern in urlpatterns:
    _pattern.callback = consent_exempt(secret_free_errors(_pattern.callback))
