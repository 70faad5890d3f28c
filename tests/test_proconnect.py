"""ProConnect as a provider of ftauth, against the ProConnect stand-in over real HTTP.

Each of ProConnect's rules (docs/proconnect.md) has a test here that fails when
the rule is removed: parameters it knows only, state and nonce of 32 characters
at least, userinfo as a verified JWT about the same ``sub``, the site's ``acr``
levels, sign-out with a ``state`` checked on return and everything local ended
before the redirect.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ftauth import vault
from ftauth.core import realms
from ftauth.core.typed import SettingError
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from tests.idp import pending_for
from tests.proconnect_op import CLIENT_ID, FT_IDP, PERSONAS

pytestmark = pytest.mark.django_db

REQUIRED = {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce"}
PKCE = {"code_challenge", "code_challenge_method"}


def start(client, next_url=None):
    """GET the login view; the authorize URL and its parameters."""
    url = "/ftauth/login/proconnect/" + (f"?next={next_url}" if next_url else "")
    response = client.get(url)
    assert response.status_code == 302, response.content
    location = response["Location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def acr_asked(params):
    claims = json.loads(params.get("claims", "{}"))
    return claims.get("id_token", {}).get("acr", {}).get("values")


def callback(client, op, params, **extra):
    query = {"code": "never-issued", "state": params["state"], "iss": op.issuer}
    query.update(extra)
    return client.get(
        "/ftauth/callback/proconnect/", {k: v for k, v in query.items() if v is not None}
    )


def sign_in(client, op, persona="advisor", next_url=None):
    _url, params = start(client, next_url)
    code = op.authorize(
        persona, nonce=pending_for(params["state"]).nonce, acr_asked=acr_asked(params)
    )
    return params, callback(client, op, params, code=code)


def configure(settings, op, **realm):
    settings.FTAUTH = op.ftauth_settings(settings.FTAUTH, **realm)


# --- the provider as data -------------------------------------------------------------------


def test_proconnect_and_agent_are_known_and_disabled_unless_configured():
    built = realms.build_realms({"individu": {}})
    pc, agent = built["proconnect"], built["agent"]
    assert not pc.enabled and not agent.enabled
    assert pc.discovery_url == (
        "https://auth.agentconnect.gouv.fr/api/v2/.well-known/openid-configuration"
    )
    assert pc.end_session_url == "https://auth.agentconnect.gouv.fr/api/v2/session/end"
    assert not pc.realm_parameter and pc.userinfo_jwt and pc.end_session_state
    assert pc.end_session_redirect_param == "post_logout_redirect_uri"
    assert agent.internal_network and not agent.realm_parameter
    assert agent.authorize_url == (
        "https://proxyproconnect.francetravail.net/connexion/oauth2/agent/authorize"
    )
    assert agent.token_url.endswith("/connexion/oauth2/access_token?realm=%2Fagent")


def test_proconnect_environment_names_its_server():
    pc = realms.build_realms({"proconnect": {"environment": "integration-rie"}})["proconnect"]
    assert pc.server == "https://fca.integ02.agentconnect.rie.gouv.fr"
    with pytest.raises(SettingError, match="environment"):
        realms.build_realms({"proconnect": {"environment": "staging"}})


def test_a_parameter_proconnect_does_not_know_is_refused_at_configuration():
    with pytest.raises(SettingError, match="refuses: acr_values"):
        realms.build_realms({"proconnect": {"extra_authorize_params": {"acr_values": "eidas1"}}})
    ok = realms.build_realms({"proconnect": {"extra_authorize_params": {"siret_hint": "1" * 14}}})
    assert ok["proconnect"].extra_authorize_params == {"siret_hint": "1" * 14}


# --- the authorization request ----------------------------------------------------------------


def test_authorize_goes_to_the_discovered_endpoint_with_only_known_parameters(client, proconnect):
    location, params = start(client)
    assert location.startswith(f"{proconnect.issuer}/authorize?")
    # No France Travail ``realm``: ProConnect refuses parameters it does not know.
    assert set(params) <= REQUIRED | PKCE | realms.PROCONNECT_OPTIONAL_PARAMS
    assert set(params) >= REQUIRED
    assert params["client_id"] == CLIENT_ID
    assert params["code_challenge_method"] == "S256"
    assert "usual_name" in params["scope"].split()


def test_state_and_nonce_have_at_least_32_characters(client, proconnect):
    """ProConnect refuses shorter ones."""
    for _ in range(5):
        _url, params = start(Client())
        assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32


def test_acr_levels_are_requested_through_claims(client, proconnect, settings):
    configure(settings, proconnect, acr_values=["eidas1-mfa"], request_amr=True)
    _url, params = start(client)
    claims = json.loads(params["claims"])["id_token"]
    assert claims["acr"] == {"values": ["eidas1-mfa"]}  # not essential unless asked
    assert claims["amr"] == {"essential": True}


# --- signing professionals in ---------------------------------------------------------------


def test_advisor_signs_in_with_idp_hint_and_the_adapter_sees_the_agency(
    client, proconnect, settings
):
    configure(settings, proconnect, idp_hint=FT_IDP, request_amr=True)
    params, response = sign_in(client, proconnect, "advisor", next_url="/profile/")
    assert params["idp_hint"] == FT_IDP
    assert response.status_code == 302 and response["Location"] == "/profile/"
    account = LinkedAccount.objects.get(realm="proconnect", sub=PERSONAS["advisor"]["sub"])
    assert client.session["_auth_user_id"] == str(account.user_id)
    assert account.claims["custom"] == {"structureTravail": "75011"}
    assert account.claims["idp_id"] == FT_IDP
    assert account.claims["amr"] == ["pwd", "otp", "mfa"]
    assert account.user.last_name == "Conseil"  # usual_name
    grant = Grant.objects.get(account=account)
    assert vault.get_id_token(grant)
    assert AuditEvent.objects.filter(account=account, kind="linked").exists()
    token_request = proconnect.of("token")[0]["form"]
    assert token_request["client_id"] == CLIENT_ID and token_request["code_verifier"]


class AdvisorsOnly:
    """A site's adapter: France Travail advisors of a known agency, nobody else."""

    def __new__(cls):
        from ftauth.adapter import AccountAdapter

        class Adapter(AccountAdapter):
            def can_sign_in(self, request, user, identity):
                return identity.idp_id == FT_IDP and identity.structure_travail == "75011"

        return Adapter()


def test_the_adapter_decides_who_may_sign_in(client, proconnect, settings):
    configure(settings, proconnect)
    settings.FTAUTH = {**settings.FTAUTH, "ACCOUNT_ADAPTER": "tests.test_proconnect.AdvisorsOnly"}
    _params, response = sign_in(client, proconnect, "prescriber")
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    assert not LinkedAccount.objects.exists()
    _params, response = sign_in(Client(), proconnect, "advisor")
    assert response.status_code == 302


@pytest.mark.parametrize("persona", ["agent", "prescriber"])
def test_public_agent_and_prescriber_sign_in_with_their_claims(client, proconnect, persona):
    _params, response = sign_in(client, proconnect, persona)
    assert response.status_code == 302
    account = LinkedAccount.objects.get(realm="proconnect")
    for claim in ("siret", "roles", "idp_id", "usual_name"):
        if claim in PERSONAS[persona]:
            assert account.claims[claim] == PERSONAS[persona][claim]


def test_amr_absent_is_recorded_as_none_not_refused(client, proconnect, settings):
    configure(settings, proconnect, request_amr=True)
    _params, response = sign_in(client, proconnect, "no_mfa")  # eidas1: no amr sent
    assert response.status_code == 302
    assert LinkedAccount.objects.get().claims["amr"] is None


def test_an_identity_provider_the_site_does_not_accept_is_refused(client, proconnect, settings):
    configure(settings, proconnect, allowed_idps=[FT_IDP])
    _params, response = sign_in(client, proconnect, "agent")
    assert response.status_code == 403
    assert not LinkedAccount.objects.exists() and "_auth_user_id" not in client.session


# --- acr ------------------------------------------------------------------------------------


def test_a_level_below_the_sites_is_refused_with_a_clear_page(client, proconnect, settings):
    configure(settings, proconnect, acr_values=["eidas1-mfa"])
    _params, response = sign_in(client, proconnect, "no_mfa")
    assert response.status_code == 403
    assert "Niveau de sécurité insuffisant" in response.content.decode()
    assert not LinkedAccount.objects.exists() and "_auth_user_id" not in client.session
    # The MFA-capable persona reaches the level and signs in.
    assert sign_in(Client(), proconnect, "agent")[1].status_code == 302


def test_a_callback_without_code_under_an_essential_level_says_so_and_never_loops(
    client, proconnect, settings
):
    configure(settings, proconnect, acr_values=["eidas1-mfa"], acr_essential=True)
    _url, params = start(client)
    assert json.loads(params["claims"])["id_token"]["acr"]["essential"] is True
    response = callback(client, proconnect, params, code=None)
    assert response.status_code == 403
    page = response.content.decode()
    assert "Niveau de sécurité insuffisant" in page
    assert "/ftauth/login/proconnect/" not in page  # no retry link, no redirect
    assert not proconnect.of("token")


# --- userinfo as a signed JWT ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "rule"),
    [
        ("forged", "signature"),
        ("other_sub", "userinfo_sub"),
        ("json", "userinfo_signature"),
        ("no_aud", "aud"),
        ("deep", "format"),
        ("other_iss", "iss"),
    ],
)
def test_userinfo_must_be_a_jwt_signed_by_proconnect_about_the_same_sub(
    client, proconnect, mode, rule, caplog
):
    proconnect.userinfo_mode = mode
    _params, response = sign_in(client, proconnect, "agent")
    assert response.status_code in (400, 502, 503)
    assert not LinkedAccount.objects.exists() and "_auth_user_id" not in client.session
    assert rule in caplog.text


# --- refresh --------------------------------------------------------------------------------


def test_a_proconnect_grant_refreshes_at_proconnect(client, proconnect):
    sign_in(client, proconnect, "agent")
    grant = Grant.objects.get()
    before = vault.get_id_token(grant)
    refreshed = vault.refresh(grant, force=True)
    form = proconnect.of("token")[-1]["form"]
    assert form["grant_type"] == "refresh_token" and form["client_id"] == CLIENT_ID
    assert vault.get_id_token(refreshed) != before


# --- sign-out -------------------------------------------------------------------------------


def _sign_out(client):
    return client.post("/ftauth/logout/")


def test_sign_out_ends_everything_here_then_redirects_with_hint_uri_and_state(client, proconnect):
    sign_in(client, proconnect, "agent")
    id_token = vault.get_id_token(Grant.objects.get())
    response = _sign_out(client)
    # Before the person even follows the redirect: session and grant are gone.
    assert "_auth_user_id" not in client.session
    assert not Grant.objects.exists() and not AccountSession.objects.exists()
    location = response["Location"]
    assert location.startswith(f"{proconnect.issuer}/session/end?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["id_token_hint"] == id_token
    assert query["post_logout_redirect_uri"] == "http://testserver/ftauth/logout/done/"
    assert "redirect_uri" not in query
    assert len(query["state"]) >= 32
    # The person comes back with the state: on to the site's page, once.
    back = client.get("/ftauth/logout/done/", {"state": query["state"]})
    assert back.status_code == 302
    again = client.get("/ftauth/logout/done/", {"state": query["state"]})
    assert again.status_code == 400


@pytest.mark.parametrize("state", [None, "", "x" * 43])
def test_a_sign_out_return_with_a_wrong_state_is_refused(client, proconnect, state):
    sign_in(client, proconnect, "agent")
    _sign_out(client)
    query = {"state": state} if state is not None else {}
    response = client.get("/ftauth/logout/done/", query)
    assert response.status_code == 400
    assert "Location" not in response
    assert "_auth_user_id" not in client.session


def test_france_travail_sign_out_keeps_its_own_parameter(client, fakeop):
    """Data, not a branch: the individu realm still says ``redirect_uri``, no state."""
    from tests.idp import sign_in as ft_sign_in

    ft_sign_in(client, fakeop)
    query = parse_qs(urlsplit(_sign_out(client)["Location"]).query)
    assert "redirect_uri" in query and "state" not in query
    assert "post_logout_redirect_uri" not in query


def test_users_of_both_kinds_of_provider_are_distinct(client, proconnect):
    sign_in(client, proconnect, "agent")
    sign_in(Client(), proconnect, "prescriber")
    assert get_user_model().objects.count() == 2
    assert set(LinkedAccount.objects.values_list("realm", flat=True)) == {"proconnect"}


def test_no_back_channel_logout_is_taken_for_proconnect(client, proconnect):
    """ProConnect has back-channel logout disabled: a logout token posted for it is
    refused before anything is decoded, even one signed with ProConnect's key."""
    sign_in(client, proconnect, "agent")
    from ftauth.core.logout_token import BACKCHANNEL_LOGOUT_EVENT

    token = proconnect.sign(
        {
            "iss": proconnect.issuer,
            "aud": CLIENT_ID,
            "sub": "pc-sub-agent",
            "iat": int(time.time()),
            "jti": "pc-jti-1",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
    )
    response = Client().post("/ftauth/backchannel-logout/proconnect/", {"logout_token": token})
    assert response.status_code == 400
    assert response.json()["error_description"] == "unknown realm"
    assert Grant.objects.exists() and "_auth_user_id" in client.session


# --- checks and faces -----------------------------------------------------------------------


def test_check_says_agent_is_internal_and_proconnect_needs_its_own_registration(settings):
    from ftauth.checks import check_professional_realms

    conf = {**settings.FTAUTH, "SANDBOX": False}
    conf["REALMS"] = {"agent": {}, "proconnect": {}}
    settings.FTAUTH = conf
    assert {m.id for m in check_professional_realms()} == {"ftauth.I042", "ftauth.W043"}
    conf["REALMS"] = {"proconnect": {"client_id": "pc", "client_secret": "s"}}
    settings.FTAUTH = {**conf}
    assert check_professional_realms() == []


def test_refusal_page_speaks_english_to_an_english_browser(proconnect, settings):
    configure(settings, proconnect, acr_values=["eidas1-mfa"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    _params, response = sign_in(client, proconnect, "no_mfa")
    assert "Security level too low" in response.content.decode()


def test_the_button_names_proconnect(proconnect):
    from django.template import Context, Template
    from django.utils import translation

    with translation.override("fr"):
        html = Template('{% load ftauth %}{% ftauth_button "proconnect" %}').render(Context({}))
    assert "S’identifier avec ProConnect" in html
    assert 'href="/ftauth/login/proconnect/' in html


# --- a view that needs a level: acr_required ------------------------------------------------


def _secure_view(request):
    from django.http import HttpResponse

    return HttpResponse("secure")


def _urlpatterns():
    from django.urls import include, path

    from ftauth.decorators import acr_required

    return [
        path("ftauth/", include("ftauth.urls")),
        path("secure/", acr_required("eidas1-mfa")(_secure_view)),
        path("unlisted/", acr_required("eidas3")(_secure_view)),
    ]


urlpatterns = _urlpatterns()


@pytest.mark.urls("tests.test_proconnect")
def test_a_view_needing_mfa_sends_a_lower_session_to_sign_in_again_at_that_level(
    client, proconnect, settings
):
    configure(settings, proconnect, acr_values=["eidas1", "eidas1-mfa"])
    assert sign_in(client, proconnect, "no_mfa")[1].status_code == 302  # eidas1 is accepted
    response = client.get("/secure/")
    assert response.status_code == 302
    login = urlsplit(response["Location"])
    assert login.path == "/ftauth/login/proconnect/"
    assert parse_qs(login.query) == {"next": ["/secure/"], "acr": ["eidas1-mfa"]}
    # The sign-in is narrowed to that level: asked for, and checked at the callback.
    location = client.get(response["Location"])["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert acr_asked(params) == ["eidas1-mfa"]
    code = proconnect.authorize("no_mfa", nonce=pending_for(params["state"]).nonce)
    refused = callback(client, proconnect, params, code=code)
    assert refused.status_code == 403  # eidas1 again: refused here, no loop
    # A person whose provider does MFA gets the page.
    other = Client()
    _params, response = sign_in(other, proconnect, "agent", next_url="/secure/")
    assert response["Location"] == "/secure/"
    assert other.get("/secure/").content == b"secure"


@pytest.mark.urls("tests.test_proconnect")
def test_a_level_the_site_does_not_accept_cannot_be_required(client, proconnect, settings):
    configure(settings, proconnect, acr_values=["eidas1"])
    response = client.get("/unlisted/")
    assert response.status_code == 403 and "Location" not in response
    # Nor asked for by hand: the login ignores a level outside the realm's.
    _url, params = start(client, next_url="/x/&acr=eidas3")
    assert acr_asked(params) == ["eidas1"]


# --- docs/proconnect.md ---------------------------------------------------------------------


def test_the_settings_of_docs_proconnect_md_load():
    """The page's settings block, run as a site would, gives a working realm."""
    import re
    from pathlib import Path

    from ftauth.conf import load_settings

    text = (Path(__file__).resolve().parent.parent / "docs/proconnect.md").read_text()
    block = re.search(r"```python\n(FTAUTH = .*?)```", text, re.S)[1]

    class Env:
        values = {"PROCONNECT_CLIENT_ID": "pc-id", "PROCONNECT_CLIENT_SECRET": "pc-secret"}

        def str(self, name, default=None):
            return self.values.get(name, default)

        def list(self, name, default=None):
            return default

    namespace = {"env": Env()}
    exec(block, namespace)  # the documentation's own example
    conf = load_settings({"CLIENT_ID": "ft", "CLIENT_SECRET": "s", **namespace["FTAUTH"]})
    realm = conf.realm("proconnect")
    assert realm.enabled and realm.server == realms.PROCONNECT_ENVIRONMENTS["integration"]
    assert realm.client_id == "pc-id" and realm.acr_values == ("eidas1", "eidas1-mfa")


# --- the consent middleware on a professional's session -------------------------------------


def test_the_periodic_check_of_a_proconnect_session_keeps_it(client, proconnect):
    """ProConnect's userinfo (a JWT) serves as the session's witness like France
    Travail's (JSON): a valid grant stays signed in after its check."""
    from tests.lifecycle import age_account_check, age_session

    sign_in(client, proconnect, "agent")
    calls = len(proconnect.of("userinfo"))
    age_session(client)
    age_account_check(LinkedAccount.objects.get())
    assert client.get("/ftauth/account/").status_code == 200
    assert len(proconnect.of("userinfo")) == calls + 1
    assert LinkedAccount.objects.get().consent_withdrawn_at is None


# --- the ID token algorithm chosen at registration -------------------------------------------


def test_hs256_works_only_where_the_site_configured_it(client, proconnect, settings):
    proconnect.alg = "HS256"
    _params, response = sign_in(client, proconnect, "agent")
    assert response.status_code in (400, 502)  # ES256 or RS256 by default: refused
    assert not LinkedAccount.objects.exists()
    configure(settings, proconnect, id_token_algorithms=["HS256"])
    _params, response = sign_in(Client(), proconnect, "agent")
    assert response.status_code == 302
    assert LinkedAccount.objects.get().claims["idp_id"]


def test_an_end_session_parameter_no_server_knows_is_refused_at_configuration():
    with pytest.raises(SettingError, match="end_session_redirect_param"):
        realms.build_realms({"proconnect": {"end_session_redirect_param": "post_logout_uri"}})


def _stale_claims(account):
    """The account's claims as if read from userinfo long ago, with an old address."""
    LinkedAccount.objects.filter(pk=account.pk).update(
        claims={"sub": account.sub, "email": "old@example.org"}, claims_at=None
    )


def test_the_periodic_check_completes_stale_claims_from_the_verified_jwt(client, proconnect):
    """The witness's answer (a signed JWT) completes stale claims, as France Travail's
    JSON does: the JWT is verified and read, not dropped for not being a dict."""
    from tests.lifecycle import age_account_check, age_session

    sign_in(client, proconnect, "agent")
    account = LinkedAccount.objects.get()
    _stale_claims(account)
    age_session(client)
    age_account_check(account)
    assert client.get("/ftauth/account/").status_code == 200
    account.refresh_from_db()
    assert account.claims["email"] == PERSONAS["agent"]["email"]
    assert account.claims_at is not None


@pytest.mark.parametrize("mode", ["json", "forged", "other_sub", "nan", "nul"])
def test_the_periodic_check_never_stores_claims_proconnect_did_not_sign(client, proconnect, mode):
    """On a realm whose userinfo is a signed JWT, a plain JSON answer (anyone on the
    path could have written it), a forged signature or another ``sub`` is never
    stored as the person's claims by the witness, as the sign-in refuses them."""
    from tests.lifecycle import age_account_check, age_session

    sign_in(client, proconnect, "agent")
    account = LinkedAccount.objects.get()
    _stale_claims(account)
    proconnect.userinfo_mode = mode
    age_session(client)
    age_account_check(account)
    assert client.get("/ftauth/account/").status_code == 200
    account.refresh_from_db()
    assert account.claims == {"sub": account.sub, "email": "old@example.org"}
    assert account.claims_at is None


@pytest.mark.parametrize("mode", ["nan", "nul"])
def test_userinfo_values_json_cannot_store_are_refused_as_the_servers_fault(
    client, proconnect, mode
):
    """A JWT userinfo whose claims hold NaN, an infinity (Python's JSON reads them), NUL
    or a lone surrogate (PostgreSQL refuses them): the sign-in is refused as a bad
    answer (400), not taken for a database failure (503) or a 500."""
    proconnect.userinfo_mode = mode
    _params, response = sign_in(client, proconnect, "agent")
    assert response.status_code == 400
    assert not LinkedAccount.objects.exists() and "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "value", [float("nan"), float("-inf"), "a\x00b", "\ud800", {"k\x00": 1}, [1.0, float("inf")]]
)
def test_claims_no_database_stores_are_not_the_persons(value):
    from ftauth.core.errors import InvalidResponse
    from ftauth.internal.claims import about_the_person

    with pytest.raises(InvalidResponse):
        about_the_person({"sub": "s", "custom": value})
    assert about_the_person({"sub": "s", "custom": [1.5, "é", {"k": None}]})["custom"]


def test_a_sign_out_return_after_its_time_is_refused(client, proconnect):
    """The sign-out's state is good for LOGOUT_STATE_TTL: a return later is refused."""
    from ftauth.views.session import SESSION_LOGOUT_STATE

    sign_in(client, proconnect, "agent")
    query = parse_qs(urlsplit(_sign_out(client)["Location"]).query)
    session = client.session
    session[SESSION_LOGOUT_STATE] = {**session[SESSION_LOGOUT_STATE], "until": time.time() - 1}
    session.save()
    response = client.get("/ftauth/logout/done/", {"state": query["state"][0]})
    assert response.status_code == 400
    assert "Location" not in response
