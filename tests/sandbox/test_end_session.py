"""End session: ends the sandbox's own sign-in, returns only to allowed URIs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ..tamper import sign_with_unpublished_key
from .conftest import server
from .scripting import LOGIN_FORM, parse_forms


def _end_session(f, **params):
    url = f"{server(f.live, f.realm)}/compte/deconnexion"
    return f.session.get(url, params=params, allow_redirects=False, timeout=5)


def test_end_session_redirects_to_the_client_and_ends_the_sign_in(flow):
    f = flow("individu")
    tokens = f.tokens()
    back = f"{f.live}/"
    response = _end_session(f, id_token_hint=tokens["id_token"], redirect_uri=back, state="s1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(back)
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"state": ["s1"]}
    # Signed out of the sandbox: the next authorization asks for a persona again.
    page = f.session.get(f.again().authorize_url(), timeout=5)
    assert LOGIN_FORM in parse_forms(page.text)


def test_end_session_accepts_an_expired_id_token_hint(flow, settings, tamper):
    f = flow("individu")
    tamper("id_token_expired")
    tokens = f.tokens()
    settings.FTAUTH_SANDBOX = {}
    response = _end_session(f, id_token_hint=tokens["id_token"], redirect_uri=f"{f.live}/")
    assert response.status_code == 302


@pytest.mark.parametrize("case", ["foreign-uri", "no-hint", "forged-hint", "other-realm-hint"])
def test_end_session_without_a_trustworthy_client_shows_a_page(flow, case):
    f = flow("individu")
    tokens = f.tokens()
    hint = tokens["id_token"]
    uri = f"{f.live}/"
    if case == "foreign-uri":
        uri = "https://evil.example/"
    elif case == "no-hint":
        hint = None
    elif case == "forged-hint":
        hint = sign_with_unpublished_key(
            {"iss": "x", "aud": "ftauth-tests"}, "individu", real_kid=True
        )
    elif case == "other-realm-hint":
        hint = flow("employeur").tokens()["id_token"]
    elif case == "garbage-hint":
        hint = "not.a.jwt"
    params = {"redirect_uri": uri}
    if hint:
        params["id_token_hint"] = hint
    response = _end_session(f, **params)
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert 'id="ftauth-sandbox-logged-out"' in response.text
    assert "SANDBOX" in response.text


def test_end_session_with_client_id_only(flow):
    f = flow("individu")
    f.tokens()
    response = _end_session(f, client_id="ftauth-tests", redirect_uri=f"{f.live}/bye")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{f.live}/bye"
