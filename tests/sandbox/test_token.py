"""The token endpoint: France Travail's quirks and RFC 6749's rules."""

from __future__ import annotations

import requests

from .conftest import CLIENT_ID, CLIENT_SECRET, PERSONAS, issuer, server, token_url, verify


def _post(live: str, realm: str, data: dict, url: str | None = None) -> requests.Response:
    return requests.post(url or token_url(live, realm), data=data, timeout=10)


def _userinfo(live: str, access_token: str) -> requests.Response:
    return requests.get(
        f"{live}/sandbox/api/partenaire/peconnect-individu/v1/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )


def test_code_is_single_use_and_its_replay_revokes_the_tokens(flow, sandbox):
    f = flow("individu")
    code = f.sign_in()["code"]
    first = f.exchange(code)
    assert first.status_code == 200
    tokens = first.json()
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 200

    second = f.exchange(code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    # RFC 6749 10.5: what the code gave is revoked when it is replayed.
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 401
    refreshed = _post(
        sandbox,
        "individu",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_code_expires_after_code_lifetime(flow, settings):
    settings.FTAUTH_SANDBOX = {"CODE_LIFETIME": 0}
    f = flow("individu")
    response = f.exchange(f.sign_in()["code"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_lifetime_defaults_to_sixty_seconds(flow):
    from ftauth.sandbox.conf import get_sandbox_settings

    assert get_sandbox_settings().code_lifetime == 60
    f = flow("individu")
    assert f.exchange(f.sign_in()["code"]).status_code == 200


def test_realm_in_the_body_only_is_refused(flow, sandbox):
    f = flow("individu")
    code = f.sign_in()["code"]
    url = f"{server(sandbox, 'individu')}/connexion/oauth2/access_token"
    response = requests.post(
        url,
        data={
            "realm": "/individu",
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f.redirect_uri,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": f.verifier,
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "query" in response.json()["error_description"]
    # The code was not spent by the refused request.
    assert f.exchange(code).status_code == 200


def test_realm_of_another_host_is_refused(sandbox):
    url = f"{server(sandbox, 'individu')}/connexion/oauth2/access_token?realm=%2Femployeur"
    response = requests.post(url, data={"grant_type": "client_credentials"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_wrong_pkce_verifier_is_refused(flow):
    f = flow("individu")
    response = f.exchange(f.sign_in()["code"], code_verifier="w" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_pkce_verifier_is_refused(flow):
    f = flow("individu")
    response = f.exchange(f.sign_in()["code"], code_verifier="")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_redirect_uri_must_match_the_authorization_request(flow, sandbox):
    f = flow("individu")
    response = f.exchange(
        f.sign_in()["code"], redirect_uri="http://127.0.0.1:1/ftauth/callback/individu/"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(flow):
    f = flow("individu")
    response = f.exchange(f.sign_in()["code"], client_secret="not-the-secret")
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_client_secret_basic_is_not_accepted(flow, sandbox):
    f = flow("individu")
    code = f.sign_in()["code"]
    response = requests.post(
        token_url(sandbox, "individu"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f.redirect_uri,
            "code_verifier": f.verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.json()["error"] == "invalid_client"


def test_token_parameters_in_the_query_are_ignored(flow, sandbox):
    f = flow("individu")
    code = f.sign_in()["code"]
    url = token_url(sandbox, "individu") + f"&client_secret={CLIENT_SECRET}"
    response = requests.post(
        url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f.redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": f.verifier,
        },
        timeout=10,
    )
    assert response.json()["error"] == "invalid_client"


def test_code_of_another_realm_is_refused(flow, sandbox):
    f = flow("individu")
    code = f.sign_in()["code"]
    response = _post(
        sandbox,
        "employeur",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f.redirect_uri,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": f.verifier,
        },
    )
    assert response.json()["error"] == "invalid_grant"


def test_unsupported_grant_type(sandbox):
    response = _post(
        sandbox,
        "individu",
        {
            "grant_type": "password",
            "username": "u",
            "password": "p",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_get_is_not_a_token_request(sandbox):
    assert requests.get(token_url(sandbox, "individu"), timeout=5).status_code == 405


def test_refresh_rotates_the_refresh_token_and_gives_a_matching_id_token(flow, sandbox):
    f = flow("individu")
    tokens = f.tokens()
    first_claims = verify(sandbox, "individu", tokens["id_token"])
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    response = _post(sandbox, "individu", refresh)
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["expires_in"] == 1499
    assert new["scope"] == f.scope
    claims = verify(sandbox, "individu", new["id_token"])
    # OpenID Connect Core 12.2: same iss, sub, aud, azp and auth_time.
    for claim in ("iss", "sub", "aud", "azp", "auth_time", "sid"):
        assert claims[claim] == first_claims[claim]
    assert "nonce" not in claims and "nonce" not in new
    assert _userinfo(sandbox, new["access_token"]).status_code == 200
    # The old refresh token was good for one use.
    assert _post(sandbox, "individu", refresh).json()["error"] == "invalid_grant"


def test_refresh_without_rotation_keeps_the_refresh_token(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {"ROTATE_REFRESH_TOKENS": False}
    f = flow("individu")
    tokens = f.tokens()
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert "refresh_token" not in _post(sandbox, "individu", refresh).json()
    assert _post(sandbox, "individu", refresh).status_code == 200


def test_refresh_cannot_widen_the_scope(flow, sandbox):
    f = flow("individu")
    tokens = f.tokens()
    response = _post(
        sandbox,
        "individu",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": f.scope + " api_peconnect-statutv1",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.json()["error"] == "invalid_scope"


def test_refresh_token_of_another_client_is_refused(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {
        "CLIENTS": [
            {"client_id": "autre", "client_secret": "s2", "redirect_uris": ["https://a.example/cb"]}
        ]
    }
    tokens = flow("individu").tokens()
    response = _post(
        sandbox,
        "individu",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "autre",
            "client_secret": "s2",
        },
    )
    assert response.json()["error"] == "invalid_grant"


def test_client_credentials_on_partenaire(sandbox):
    response = _post(
        sandbox,
        "partenaire",
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "api_offresdemploiv2 o2dsoffre",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1499
    assert body["scope"] == "api_offresdemploiv2 o2dsoffre"
    assert "refresh_token" not in body and "id_token" not in body


def test_client_credentials_is_for_partenaire_only(sandbox):
    response = _post(
        sandbox,
        "individu",
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "api_offresdemploiv2",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_client_credentials_unknown_or_missing_scope(sandbox):
    base = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    unknown = _post(sandbox, "partenaire", {**base, "scope": "api_offresdemploiv2 api_secret"})
    assert unknown.json()["error"] == "invalid_scope"
    assert _post(sandbox, "partenaire", base).json()["error"] == "invalid_scope"


def test_client_credentials_needs_the_secret(sandbox):
    response = _post(
        sandbox,
        "partenaire",
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": "wrong",
            "scope": "api_offresdemploiv2",
        },
    )
    assert response.json()["error"] == "invalid_client"


def test_id_token_carries_the_persona_claims_of_the_scopes(flow, sandbox):
    claims = verify(sandbox, "employeur", flow("employeur").tokens()["id_token"])
    assert claims["sub"] == PERSONAS["employeur"]
    assert claims["email_verified"] == "true"
    assert claims["habilitation"] == "recruteurcertifie"
    assert claims["iss"] == issuer(sandbox, "employeur")
    narrow = flow("individu", scope="openid").tokens()
    only_sub = verify(sandbox, "individu", narrow["id_token"])
    assert "email" not in only_sub and "given_name" not in only_sub


def test_the_debug_page_of_a_crash_at_the_token_endpoint_lists_no_secret(flow, sandbox, settings):
    """The demo runs with DEBUG on: a bug at the sandbox's token endpoint must not
    show the client secret, the code or the verifier the request carried."""
    from ftauth.sandbox.hooks import SandboxHooks

    class Broken(SandboxHooks):
        def token_endpoint(self, request, answer):
            raise RuntimeError("a bug at the token endpoint")

    f = flow("individu")
    code = f.sign_in()["code"]
    settings.DEBUG = True
    settings.FTAUTH_SANDBOX = {**getattr(settings, "FTAUTH_SANDBOX", {}), "HOOKS": Broken()}
    response = f.exchange(code)
    assert response.status_code == 500
    assert "a bug at the token endpoint" in response.text  # Django's page for the developer
    shown = [s for s in (CLIENT_SECRET, code, f.verifier) if s in response.text]
    assert not shown
