"""The authorization-code flow of each realm, end to end over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from .conftest import CLIENT_ID, PERSONAS, issuer, verify

USERINFO = {
    "individu": "partenaire/peconnect-individu/v1/userinfo?schema=openid",
    "employeur": "partenaire/peconnect-entreprise/v1/userinfo",
}


@pytest.mark.parametrize("realm", ["individu", "employeur", "partenaire"])
def test_code_flow_signs_a_persona_in(flow, sandbox, realm):
    f = flow(realm)
    params = f.sign_in()
    assert set(params) == {"code", "state", "iss", "client_id"}
    assert params["state"] == f.state
    assert params["iss"] == issuer(sandbox, realm)
    assert params["client_id"] == CLIENT_ID

    response = f.exchange(params["code"])
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1499
    assert body["scope"] == f.scope
    assert body["refresh_token"]
    assert body["nonce"] == f.nonce

    claims = verify(sandbox, realm, body["id_token"])
    assert claims["iss"] == issuer(sandbox, realm)
    assert claims["sub"] == PERSONAS[realm]
    assert claims["aud"] == CLIENT_ID
    assert claims["azp"] == CLIENT_ID
    assert claims["nonce"] == f.nonce
    assert claims["exp"] - claims["iat"] == 9000
    assert abs(claims["iat"] - time.time()) < 30
    assert claims["auth_time"] <= claims["iat"]
    assert claims["sid"]

    if realm in USERINFO:
        info = requests.get(
            f"{sandbox}/sandbox/api/{USERINFO[realm]}",
            headers={"Authorization": f"Bearer {body['access_token']}"},
            timeout=5,
        )
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == PERSONAS[realm]
