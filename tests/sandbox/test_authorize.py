"""The authorization endpoint: validation, persona page, consent page, cancel."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .conftest import CLIENT_ID, issuer
from .scripting import CONSENT_FORM, LOGIN_FORM, parse_forms, submit


def _query(response: requests.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def test_login_page_lists_the_realm_personas_and_a_banner(flow):
    f = flow("individu")
    page = f.session.get(f.authorize_url(), timeout=5)
    assert page.status_code == 200
    assert "SANDBOX" in page.text
    form = parse_forms(page.text)[LOGIN_FORM]
    personas = [value for name, value in form.buttons if name == "persona"]
    assert personas == [
        "sandbox-individu-camille",
        "sandbox-individu-karim",
        "sandbox-individu-lea",
    ]
    assert "csrfmiddlewaretoken" in form.fields


@pytest.mark.parametrize(
    ("realm", "expected"),
    [
        ("employeur", ["sandbox-employeur-sophie", "sandbox-employeur-thomas"]),
        ("partenaire", ["sandbox-partenaire-nadia"]),
    ],
)
def test_entreprise_host_lists_the_personas_of_the_asked_realm(flow, realm, expected):
    f = flow(realm)
    form = parse_forms(f.session.get(f.authorize_url(), timeout=5).text)[LOGIN_FORM]
    assert [v for n, v in form.buttons if n == "persona"] == expected


def test_consent_page_lists_the_requested_scopes(flow):
    f = flow("individu")
    page = f.session.get(f.authorize_url(), timeout=5)
    consent = submit(
        f.session, page, parse_forms(page.text)[LOGIN_FORM], persona="sandbox-individu-karim"
    )
    assert consent.status_code == 200
    assert "SANDBOX" in consent.text
    for scope in f.scope.split():
        assert f"<code>{scope}</code>" in consent.text
    form = parse_forms(consent.text)[CONSENT_FORM]
    assert ("decision", "accept") in form.buttons
    assert ("decision", "refuse") in form.buttons


def test_refusing_consent_returns_access_denied_with_state(flow, sandbox):
    f = flow("individu")
    params = f.sign_in(decision="refuse")
    assert params["error"] == "access_denied"
    assert params["state"] == f.state
    assert params["iss"] == issuer(sandbox, "individu")
    assert "code" not in params


def test_cancel_link_returns_with_state_only(flow):
    f = flow("individu")
    page = f.session.get(f.authorize_url(), timeout=5)
    cancel = page.text.split('id="ftauth-sandbox-cancel"')[0].rsplit('href="', 1)[1].split('"')[0]
    cancel = cancel.replace("&amp;", "&")
    assert cancel.startswith(f.redirect_uri)
    assert parse_qs(urlsplit(cancel).query) == {"state": [f.state]}


def test_persona_form_needs_the_csrf_token(flow):
    f = flow("individu")
    f.session.get(f.authorize_url(), timeout=5)
    response = f.session.post(
        f.authorize_url(), data={"persona": "sandbox-individu-camille"}, allow_redirects=False
    )
    assert response.status_code == 403
    # The sandbox's own page, with a fresh form, not Django's CSRF debug page.
    assert "ftauth-sandbox-stale" in response.text and LOGIN_FORM in parse_forms(response.text)
    assert "CSRF" not in response.text


def test_persona_of_another_realm_is_refused(flow):
    f = flow("individu")
    page = f.session.get(f.authorize_url(), timeout=5)
    response = submit(
        f.session, page, parse_forms(page.text)[LOGIN_FORM], persona="sandbox-employeur-sophie"
    )
    assert response.status_code == 400
    assert LOGIN_FORM in parse_forms(response.text)


def test_consent_is_remembered_until_withdrawn_and_prompt_consent_asks_again(flow):
    f = flow("individu")
    f.sign_in()
    # Same browser, signed in on the sandbox and consent given: straight back.
    again = f.session.get(f.again().authorize_url(), allow_redirects=False, timeout=5)
    assert again.status_code == 302
    assert "code" in _query(again)
    asked = f.session.get(f.again().authorize_url(prompt="consent"), timeout=5)
    assert CONSENT_FORM in parse_forms(asked.text)


def test_wider_scopes_ask_for_consent_again(flow):
    f = flow("individu")
    f.sign_in()
    wider = f.session.get(
        f.again().authorize_url(scope=f.scope + " api_peconnect-statutv1 statut"), timeout=5
    )
    assert CONSENT_FORM in parse_forms(wider.text)


def test_prompt_login_shows_the_persona_page_again(flow):
    f = flow("individu")
    f.sign_in()
    page = f.session.get(f.again().authorize_url(prompt="login"), timeout=5)
    assert LOGIN_FORM in parse_forms(page.text)
    # And choosing another persona works (no loop back to the login page).
    params = f.again().sign_in("sandbox-individu-karim", prompt="login")
    assert "code" in params


def test_reused_nonce_is_refused(flow):
    f = flow("individu")
    f.sign_in()
    replay = f.session.get(f.again(nonce=f.nonce).authorize_url(), allow_redirects=False)
    assert _query(replay)["error"] == "invalid_request"


def test_prompt_none_without_sign_in_answers_login_required(flow):
    f = flow("individu")
    response = f.session.get(f.authorize_url(prompt="none"), allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert _query(response)["error"] == "login_required"


def test_sign_in_is_per_host(flow):
    f = flow("individu")
    f.sign_in()
    employeur = flow("employeur", session=f.session)
    page = employeur.session.get(employeur.authorize_url(), timeout=5)
    assert LOGIN_FORM in parse_forms(page.text)


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": None},
        {"scope": "openid profile api_inconnue"},
    ],
    ids=["pkce-plain", "pkce-missing", "pkce-method-missing", "unknown-scope"],
)
def test_invalid_requests_go_back_to_a_valid_redirect_uri_with_an_error(flow, overrides):
    f = flow("individu")
    response = f.session.get(f.authorize_url(**overrides), allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f.redirect_uri)
    params = _query(response)
    assert params["error"] in {"invalid_request", "invalid_scope"}
    assert params["state"] == f.state
    assert "code" not in params


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "unknown-client"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example/ftauth/callback/individu/"},
        {"redirect_uri": "http://127.0.0.1:9/ftauth/callback/employeur/"},
        {"redirect_uri": "http://127.0.0.1:9/ftauth/callback/individu/?next=x"},
        {"redirect_uri": None},
    ],
    ids=["unknown-client", "no-client", "foreign-host", "other-realm-path", "query", "no-uri"],
)
def test_unverifiable_client_or_redirect_uri_shows_an_error_page(flow, overrides):
    f = flow("individu")
    response = f.session.get(f.authorize_url(**overrides), allow_redirects=False, timeout=5)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "SANDBOX" in response.text


def test_unknown_realm_or_realm_of_another_host_is_not_found(flow, sandbox):
    f = flow("individu")
    url = f.authorize_url(realm="/employeur")
    assert requests.get(url, timeout=5).status_code == 404


def test_configured_client_uses_its_exact_redirect_uris(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {
        "CLIENTS": [
            {
                "client_id": "autre-appli",
                "client_secret": "autre-secret",
                "redirect_uris": ["https://appli.example/retour"],
            }
        ]
    }
    f = flow("individu", client_id="autre-appli", redirect_uri="https://appli.example/retour")
    params = f.sign_in()
    assert params["client_id"] == "autre-appli"
    bad = flow("individu", client_id="autre-appli")
    assert bad.session.get(bad.authorize_url(), timeout=5).status_code == 400
    # The default client still works beside it.
    assert flow("individu").sign_in()["client_id"] == CLIENT_ID


def test_pages_are_french_first_with_an_english_translation(flow):
    f = flow("individu")
    french = f.session.get(f.authorize_url(), timeout=5)
    assert "Se connecter avec France Travail" in french.text
    english = f.session.get(f.authorize_url(), headers={"Accept-Language": "en"}, timeout=5)
    assert "Sign in with France Travail" in english.text
    assert "SANDBOX" in english.text


def test_an_unsupported_response_type_goes_back_to_the_redirect_uri_with_an_error(flow):
    """authlib checks the redirect URI there without the realm: never a 500."""
    f = flow("individu")
    response = f.session.get(
        f.authorize_url(response_type="token"), allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f.redirect_uri)
    assert _query(response)["error"] == "unsupported_response_type"


def test_consent_items_all_say_what_the_application_asks_to_do():
    """The consent page reads "L’application … demande à :" then one item per scope: each
    an infinitive, never a noun beside a verb ("Vous identifier", "Votre adresse")."""
    import re

    from django.utils import translation

    from ftauth.sandbox.directory import USER_SCOPES, scope_label

    labels = {str(label) for scopes in USER_SCOPES.values() for label in scopes.values()}
    labels.add(scope_label("individu", "application_x"))
    verb = re.compile(r"(Vous )?(identifier|connaître|lire)\b", re.I)
    assert [label for label in labels if not verb.match(label)] == []
    with translation.override("en"):
        english = {str(label) for scopes in USER_SCOPES.values() for label in scopes.values()}
    assert all(re.match(r"(Identify|Know|Read) ", label) for label in english), english
