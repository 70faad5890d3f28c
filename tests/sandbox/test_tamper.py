"""Each tamper mode (``tests.tamper``) makes the sandbox misbehave exactly as promised."""

from __future__ import annotations

import time

import pytest
import requests
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet, OctKey

from ..tamper import OTHER_CLIENT, Tamper
from .conftest import CLIENT_ID, CLIENT_SECRET, PERSONAS, issuer, jwks_url, verify


def _id_token(flow, realm: str = "individu") -> tuple[object, dict]:
    f = flow(realm)
    return f, f.tokens()


def _header(token: str) -> dict:
    return jws.extract_compact(token.encode()).protected


def test_iss_param_wrong_names_another_realm(flow, sandbox, tamper):
    tamper("iss_param_wrong")
    params = flow("individu").sign_in()
    assert params["iss"] != issuer(sandbox, "individu")
    assert params["iss"] == issuer(sandbox, "employeur").replace(
        "/entreprise/", "/authentification-candidat/"
    )
    assert params["code"]


def test_iss_param_missing(flow, tamper):
    tamper("iss_param_missing")
    params = flow("individu").sign_in()
    assert "iss" not in params
    assert params["code"] and params["client_id"] == CLIENT_ID


def test_client_id_param_wrong(flow, sandbox, tamper):
    tamper("client_id_param_wrong")
    params = flow("individu").sign_in()
    assert params["client_id"] == OTHER_CLIENT
    assert params["iss"] == issuer(sandbox, "individu")


def test_id_token_wrong_iss(flow, sandbox, tamper):
    tamper("id_token_wrong_iss")
    _, tokens = _id_token(flow)
    claims = verify(sandbox, "individu", tokens["id_token"])
    assert claims["iss"] == issuer(sandbox, "individu") + "/"


def test_id_token_wrong_aud(flow, sandbox, tamper):
    tamper("id_token_wrong_aud")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert claims["aud"] == OTHER_CLIENT
    assert "azp" not in claims


def test_id_token_multi_aud_no_azp(flow, sandbox, tamper):
    tamper("id_token_multi_aud_no_azp")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert claims["aud"] == [CLIENT_ID, OTHER_CLIENT]
    assert "azp" not in claims


def test_id_token_untrusted_extra_aud(flow, sandbox, tamper):
    tamper("id_token_untrusted_extra_aud")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert claims["aud"] == [CLIENT_ID, OTHER_CLIENT]
    assert claims["azp"] == CLIENT_ID


def test_id_token_wrong_azp(flow, sandbox, tamper):
    tamper("id_token_wrong_azp")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert CLIENT_ID in claims["aud"]
    assert claims["azp"] == OTHER_CLIENT


def test_id_token_expired(flow, sandbox, tamper):
    tamper("id_token_expired")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert claims["exp"] < time.time() - 300
    assert claims["iat"] < claims["exp"]


def test_id_token_iat_future(flow, sandbox, tamper):
    tamper("id_token_iat_future")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert claims["iat"] > time.time() + 300
    assert claims["exp"] > claims["iat"]


def test_id_token_too_old(flow, sandbox, tamper):
    tamper("id_token_too_old")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    now = time.time()
    assert claims["iat"] < now - 9000 - 600
    assert claims["exp"] > now


def test_id_token_wrong_nonce(flow, sandbox, tamper):
    tamper("id_token_wrong_nonce")
    f, tokens = _id_token(flow)
    claims = verify(sandbox, "individu", tokens["id_token"])
    assert claims["nonce"] != f.nonce
    assert tokens["nonce"] == f.nonce


def test_token_response_wrong_nonce(flow, sandbox, tamper):
    tamper("token_response_wrong_nonce")
    f, tokens = _id_token(flow)
    assert tokens["nonce"] != f.nonce
    assert verify(sandbox, "individu", tokens["id_token"])["nonce"] == f.nonce


def test_id_token_no_sub(flow, sandbox, tamper):
    tamper("id_token_no_sub")
    claims = verify(sandbox, "individu", _id_token(flow)[1]["id_token"])
    assert "sub" not in claims
    assert claims["iss"] == issuer(sandbox, "individu")


def test_id_token_bad_signature_claims_a_published_kid(flow, sandbox, tamper):
    tamper("id_token_bad_signature")
    token = _id_token(flow)[1]["id_token"]
    jwks = requests.get(jwks_url(sandbox, "individu"), timeout=5).json()
    assert _header(token)["kid"] in {k["kid"] for k in jwks["keys"]}
    with pytest.raises(BadSignatureError):
        jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])


def test_id_token_alg_none(flow, tamper):
    tamper("id_token_alg_none")
    token = _id_token(flow)[1]["id_token"]
    assert _header(token)["alg"] == "none"
    assert token.endswith(".")


def test_id_token_hs256_keyed_by_the_client_secret(flow, tamper):
    tamper("id_token_hs256")
    token = _id_token(flow)[1]["id_token"]
    assert _header(token)["alg"] == "HS256"
    claims = jwt.decode(token, OctKey.import_key(CLIENT_SECRET), algorithms=["HS256"]).claims
    assert claims["sub"] == PERSONAS["individu"]


def test_id_token_unknown_kid(flow, sandbox, tamper):
    tamper("id_token_unknown_kid")
    token = _id_token(flow)[1]["id_token"]
    jwks = requests.get(jwks_url(sandbox, "individu"), timeout=5).json()
    assert _header(token)["alg"] == "RS256"
    assert _header(token)["kid"] not in {k["kid"] for k in jwks["keys"]}
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])


def test_userinfo_wrong_sub(flow, sandbox, tamper):
    tamper("userinfo_wrong_sub")
    tokens = _id_token(flow)[1]
    assert verify(sandbox, "individu", tokens["id_token"])["sub"] == PERSONAS["individu"]
    info = requests.get(
        f"{sandbox}/sandbox/api/partenaire/peconnect-individu/v1/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert info.status_code == 200
    assert info.json()["sub"] != PERSONAS["individu"]


def test_token_endpoint_500(flow, tamper):
    f = flow("individu")
    code = f.sign_in()["code"]
    tamper("token_endpoint_500")
    assert f.exchange(code).status_code == 500


def test_token_endpoint_429_says_retry_after_seven(flow, tamper):
    f = flow("individu")
    code = f.sign_in()["code"]
    tamper("token_endpoint_429")
    response = f.exchange(code)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_token_endpoint_slow_outlasts_a_short_read_timeout(flow, tamper, sandbox):
    f = flow("individu")
    code = f.sign_in()["code"]
    hooks = tamper("token_endpoint_slow")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{sandbox}/sandbox/authentification-candidat/connexion/oauth2/access_token"
            "?realm=%2Findividu",
            data={"grant_type": "authorization_code", "code": code},
            timeout=(10, 0.5),
        )
    hooks.release()


def test_token_endpoint_slow_holds_until_released_or_its_cap():
    hooks = Tamper("token_endpoint_slow", slow_seconds=30)
    assert hooks.slow_seconds == 30 and not hooks.released.is_set()
    hooks.release()
    assert hooks.released.is_set()


def test_token_endpoint_not_json(flow, tamper):
    f = flow("individu")
    code = f.sign_in()["code"]
    tamper("token_endpoint_not_json")
    response = f.exchange(code)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_without_tamper_the_id_token_is_valid(flow, sandbox):
    f, tokens = _id_token(flow)
    claims = verify(sandbox, "individu", tokens["id_token"])
    assert claims["iss"] == issuer(sandbox, "individu")
    assert claims["aud"] == CLIENT_ID == claims["azp"]
    assert claims["nonce"] == f.nonce == tokens["nonce"]
    assert claims["iat"] <= time.time() < claims["exp"]
