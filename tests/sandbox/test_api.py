"""The API host: bearer tokens, userinfo, status, job offers, quota."""

from __future__ import annotations

import pytest
import requests

from .conftest import CLIENT_ID, CLIENT_SECRET, token_url

API = "sandbox/api/partenaire"


def _get(live: str, path: str, token: str | None = None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{live}/{API}/{path}", headers=headers, params=params, timeout=5)


def app_token(live: str, scope: str = "api_offresdemploiv2 o2dsoffre") -> str:
    response = requests.post(
        token_url(live, "partenaire"),
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": scope,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_individu_userinfo_has_france_travail_claims(flow, sandbox):
    token = flow("individu").tokens()["access_token"]
    response = _get(sandbox, "peconnect-individu/v1/userinfo", token, schema="openid")
    assert response.status_code == 200
    assert response.json() == {
        "sub": "sandbox-individu-camille",
        "given_name": "Camille",
        "family_name": "Martin",
        "gender": "female",
        "email": "camille.martin@example.test",
        "idIdentiteExterne": "7b3e8a52-4c1f-4d2a-9a57-0c1d3f6b9e21",
    }
    assert _get(sandbox, "peconnect-individu/v1/userinfo", token).json()["sub"] == (
        "sandbox-individu-camille"
    )


def test_unvalidated_job_seeker_has_no_email(flow, sandbox):
    token = flow("individu").tokens("sandbox-individu-lea")["access_token"]
    claims = _get(sandbox, "peconnect-individu/v1/userinfo", token).json()
    assert claims["gender"] == "female"
    assert "email" not in claims


def test_employeur_userinfo_has_string_email_verified_and_habilitation(flow, sandbox):
    token = flow("employeur").tokens()["access_token"]
    claims = _get(sandbox, "peconnect-entreprise/v1/userinfo", token).json()
    assert claims == {
        "sub": "sandbox-employeur-sophie",
        "given_name": "Sophie",
        "family_name": "Leroy",
        "email": "sophie.leroy@entreprise.example.test",
        "email_verified": "true",
        "habilitation": "recruteurcertifie",
    }


def test_status_api_needs_its_scope(flow, sandbox):
    plain = flow("individu").tokens()["access_token"]
    refused = _get(sandbox, "peconnect-statut/v1/statut", plain)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    scoped = flow("individu", scope="openid api_peconnect-statutv1 statut").tokens()
    response = _get(sandbox, "peconnect-statut/v1/statut", scoped["access_token"])
    assert response.status_code == 200
    assert response.json() == {
        "codeStatutIndividu": "1",
        "libelleStatutIndividu": "Demandeur d'emploi",
    }


def test_token_of_the_wrong_realm_is_refused(flow, sandbox):
    token = flow("individu").tokens()["access_token"]
    assert _get(sandbox, "peconnect-entreprise/v1/userinfo", token).status_code == 403


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_unknown_token_is_401(sandbox, token):
    response = _get(sandbox, "peconnect-individu/v1/userinfo", token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if token:
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_expired_token_is_401_invalid_token(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {"ACCESS_TOKEN_LIFETIME": 0}
    tokens = flow("individu").tokens()
    assert tokens["expires_in"] == 0
    response = _get(sandbox, "peconnect-individu/v1/userinfo", tokens["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_token_in_the_query_string_is_refused(flow, sandbox):
    token = flow("individu").tokens()["access_token"]
    response = requests.get(
        f"{sandbox}/{API}/peconnect-individu/v1/userinfo",
        params={"access_token": token},
        timeout=5,
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    # Even alongside a header.
    both = _get(sandbox, "peconnect-individu/v1/userinfo", token, access_token=token)
    assert both.status_code == 400


def test_user_apis_refuse_application_tokens_and_offers_refuse_user_tokens(flow, sandbox):
    app = app_token(sandbox)
    assert _get(sandbox, "peconnect-individu/v1/userinfo", app).status_code == 403
    user = flow("individu").tokens()["access_token"]
    assert _get(sandbox, "offresdemploi/v2/offres/search", user).status_code == 403


def test_offers_search_shape_keywords_and_range(sandbox, settings):
    settings.FTAUTH_SANDBOX = {"QUOTA_PER_SECOND": 100}
    token = app_token(sandbox)
    response = _get(
        sandbox, "offresdemploi/v2/offres/search", token, motsCles="cuisinier", range="0-4"
    )
    assert response.status_code == 206
    results = response.json()["resultats"]
    assert len(results) == 5
    first = results[0]
    assert {
        "id",
        "intitule",
        "description",
        "lieuTravail",
        "entreprise",
        "typeContrat",
        "dateCreation",
    } <= set(first)
    assert "Cuisinier" in first["intitule"]
    assert first["lieuTravail"]["libelle"]
    assert first["entreprise"]["nom"]
    assert response.headers["Content-Range"] == "offres 0-4/10"

    everything = _get(sandbox, "offresdemploi/v2/offres/search", token, motsCles="cuisinier")
    assert everything.status_code == 200
    assert len(everything.json()["resultats"]) == 10
    several = _get(sandbox, "offresdemploi/v2/offres/search", token, motsCles="cuisinier,lyon")
    assert [o["lieuTravail"]["libelle"] for o in several.json()["resultats"]] == [
        "69 - Lyon 3e Arrondissement"
    ]
    assert (
        _get(sandbox, "offresdemploi/v2/offres/search", token, motsCles="astronaute").status_code
        == 204
    )
    assert _get(sandbox, "offresdemploi/v2/offres/search", token, range="10-5").status_code == 400
    detail = _get(sandbox, f"offresdemploi/v2/offres/{first['id']}", token)
    assert detail.json() == first


def test_offers_need_the_offers_scope(sandbox):
    token = app_token(sandbox, scope="api_romev1")
    assert _get(sandbox, "offresdemploi/v2/offres/search", token).status_code == 403


def test_quota_answers_429_with_retry_after_and_ratelimit_headers(sandbox, settings):
    settings.FTAUTH_SANDBOX = {"QUOTA_PER_SECOND": 3}
    token = app_token(sandbox)
    answers = [
        _get(sandbox, "offresdemploi/v2/offres/search", token, range="0-0") for _ in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [206, 206, 206]
    assert [a.headers["X-Ratelimit-Remaining-Clientidlimiter"] for a in answers[:3]] == [
        "2",
        "1",
        "0",
    ]
    for answer in answers:
        assert answer.headers["X-Ratelimit-Burst-Capacity-Clientidlimiter"] == "3"
    limited = answers[3]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-Ratelimit-Remaining-Clientidlimiter"] == "0"


def test_quota_is_per_api(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {"QUOTA_PER_SECOND": 1}
    app = app_token(sandbox)
    user = flow("individu").tokens()["access_token"]
    assert _get(sandbox, "offresdemploi/v2/offres/search", app, range="0-0").status_code == 206
    assert _get(sandbox, "offresdemploi/v2/offres/search", app, range="0-0").status_code == 429
    assert _get(sandbox, "peconnect-individu/v1/userinfo", user).status_code == 200


def test_unknown_api_is_a_json_404(sandbox):
    response = _get(sandbox, "inconnue/v1/truc", "x")
    assert response.status_code == 404
    assert response.json()["codeHttp"] == 404
