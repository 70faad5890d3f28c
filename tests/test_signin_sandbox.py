"""End to end over real HTTP: the demo site signs in through the sandbox.

The ``tamper`` fixture (``tests.tamper``, through the sandbox's test hook) makes
it misbehave one way at a time; every tampered answer must end on a clear page,
with no session and nothing stored.
"""

import pytest
from django.contrib.auth import get_user_model

from ftauth.models import LinkedAccount
from ftauth.sandbox.scripted import ScriptedUser

from .tamper import MODES

pytestmark = pytest.mark.django_db(transaction=True)

PERSONAS = {
    "individu": "sandbox-individu-camille",
    "employeur": "sandbox-employeur-sophie",
    "partenaire": "sandbox-partenaire-nadia",
}


def signed_in(user: ScriptedUser) -> bool:
    page = user.get("/profile/", allow_redirects=False)
    return page.status_code == 200


@pytest.mark.parametrize("realm", sorted(PERSONAS))
def test_each_realm_signs_in_and_reaches_the_profile(sandbox, realm):
    user = ScriptedUser(sandbox)
    page = user.sign_in(realm, persona=PERSONAS[realm], next_url="/profile/")
    assert page.status_code == 200, page.text[:500]
    assert page.url.endswith("/profile/")
    assert PERSONAS[realm] in page.text
    account = LinkedAccount.objects.get(realm=realm)
    assert account.sub == PERSONAS[realm]


def test_job_seeker_claims_are_kept(sandbox):
    user = ScriptedUser(sandbox)
    user.sign_in("individu", persona=PERSONAS["individu"])
    claims = LinkedAccount.objects.get().claims
    assert claims["sub"] == PERSONAS["individu"]
    assert {"given_name", "family_name"} <= set(claims)


def test_refusing_consent_gives_a_friendly_page_and_no_session(sandbox):
    user = ScriptedUser(sandbox)
    page = user.sign_in("individu", decision="refuse")
    assert page.status_code == 200
    assert "/ftauth/login/individu/" in page.text
    assert not signed_in(user)


def test_expired_code_says_so_with_a_restart_link(sandbox, settings):
    settings.FTAUTH_SANDBOX = {"CODE_LIFETIME": -1}
    user = ScriptedUser(sandbox)
    page = user.sign_in("individu")
    assert page.status_code == 400
    assert "expiré" in page.text and "/ftauth/login/individu/" in page.text
    assert not signed_in(user)


TAMPERED = {
    # callback parameters
    "iss_param_wrong": 400,
    "iss_param_missing": 400,
    "client_id_param_wrong": 400,
    # ID token, OIDC Core 3.1.3.7
    "id_token_wrong_iss": 400,
    "id_token_wrong_aud": 400,
    "id_token_multi_aud_no_azp": 400,
    "id_token_untrusted_extra_aud": 400,
    "id_token_wrong_azp": 400,
    "id_token_expired": 400,
    "id_token_iat_future": 400,
    "id_token_too_old": 400,
    "id_token_wrong_nonce": 400,
    "token_response_wrong_nonce": 400,
    "id_token_no_sub": 400,
    "id_token_bad_signature": 400,
    "id_token_alg_none": 400,
    "id_token_hs256": 400,
    "id_token_unknown_kid": 400,
    "userinfo_wrong_sub": 400,
    # token endpoint trouble
    "token_endpoint_500": 503,
    "token_endpoint_429": 503,
    "token_endpoint_slow": 503,
    "token_endpoint_not_json": 400,
}


def test_every_tamper_mode_is_tried_end_to_end():
    assert set(TAMPERED) == MODES


@pytest.mark.parametrize(("mode", "status"), sorted(TAMPERED.items()))
def test_tampered_response_is_refused_with_a_clear_page(sandbox, settings, tamper, mode, status):
    hooks = tamper(mode)
    if mode == "token_endpoint_slow":
        # The token request is held until released: the short read timeout always wins.
        settings.FTAUTH = {**settings.FTAUTH, "HTTP_READ_TIMEOUT": 1.0}
    user = ScriptedUser(sandbox)
    page = user.sign_in("individu")
    hooks.release()
    assert page.status_code == status, (mode, page.status_code, page.text[:300])
    assert "/ftauth/login/individu/" in page.text  # a way to try again
    assert not signed_in(user)
    assert not LinkedAccount.objects.exists()
    assert not get_user_model().objects.exists()
    if mode == "token_endpoint_429":
        assert "7" in page.text


def test_an_audience_the_site_trusts_is_accepted(sandbox, settings, tamper):
    """TRUSTED_AUDIENCES is the one way to accept an ID token that names another client."""
    from .tamper import OTHER_CLIENT

    tamper("id_token_untrusted_extra_aud")
    settings.FTAUTH = {**settings.FTAUTH, "TRUSTED_AUDIENCES": [OTHER_CLIENT]}
    user = ScriptedUser(sandbox)
    user.sign_in("individu")
    assert signed_in(user)
