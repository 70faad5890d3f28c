"""Discovery documents and JWKS, at France Travail's paths."""

from __future__ import annotations

import pytest
import requests

from .conftest import issuer, jwks_url, server

REALMS = ["individu", "employeur", "partenaire"]


def _discovery(live: str, realm: str) -> requests.Response:
    url = (
        f"{server(live, realm)}/connexion/oauth2/realms/root/realms/{realm}"
        "/.well-known/openid-configuration"
    )
    return requests.get(url, timeout=5)


@pytest.mark.parametrize("realm", REALMS)
def test_discovery_announces_france_travail_endpoints(sandbox, realm):
    response = _discovery(sandbox, realm)
    assert response.status_code == 200
    doc = response.json()
    base = server(sandbox, realm)
    assert doc["issuer"] == issuer(sandbox, realm)
    assert doc["authorization_endpoint"] == f"{base}/connexion/oauth2/authorize"
    assert doc["token_endpoint"] == f"{base}/connexion/oauth2/access_token?realm=%2F{realm}"
    assert doc["jwks_uri"] == jwks_url(sandbox, realm)
    assert doc["end_session_endpoint"] == f"{base}/compte/deconnexion"
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["backchannel_logout_supported"] is True
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    assert doc["response_types_supported"] == ["code"]


def test_userinfo_endpoint_is_on_the_api_host(sandbox):
    individu = _discovery(sandbox, "individu").json()
    employeur = _discovery(sandbox, "employeur").json()
    api = f"{sandbox}/sandbox/api/partenaire"
    assert (
        individu["userinfo_endpoint"] == f"{api}/peconnect-individu/v1/userinfo?schema=openid"
    )  # as integrators call it
    assert employeur["userinfo_endpoint"] == f"{api}/peconnect-entreprise/v1/userinfo"
    assert "client_credentials" in _discovery(sandbox, "partenaire").json()["grant_types_supported"]
    assert "client_credentials" not in individu["grant_types_supported"]


@pytest.mark.parametrize("realm", REALMS)
def test_discovery_by_realm_query_is_the_same_document(sandbox, realm):
    url = f"{server(sandbox, realm)}/connexion/oauth2/.well-known/openid-configuration"
    by_query = requests.get(url, params={"realm": f"/{realm}"}, timeout=5)
    assert by_query.status_code == 200
    assert by_query.json() == _discovery(sandbox, realm).json()


def test_issuer_carries_an_explicit_port_like_france_travail(sandbox):
    doc = _discovery(sandbox, "individu").json()
    port = sandbox.rsplit(":", 1)[1]
    assert (
        f":{port}/sandbox/authentification-candidat/connexion/oauth2/realms/root/realms/"
        in (doc["issuer"])
    )


@pytest.mark.parametrize(
    ("host", "realm"),
    [
        ("entreprise", "individu"),
        ("authentification-candidat", "employeur"),
        ("authentification-candidat", "partenaire"),
        ("entreprise", "inconnu"),
    ],
)
def test_realm_on_the_wrong_host_does_not_exist(sandbox, host, realm):
    base = f"{sandbox}/sandbox/{host}/connexion/oauth2"
    assert (
        requests.get(
            f"{base}/realms/root/realms/{realm}/.well-known/openid-configuration", timeout=5
        ).status_code
        == 404
    )
    assert (
        requests.get(
            f"{base}/.well-known/openid-configuration", params={"realm": f"/{realm}"}, timeout=5
        ).status_code
        == 404
    )
    assert (
        requests.get(
            f"{base}/connect/jwk_uri", params={"realm": f"/{realm}"}, timeout=5
        ).status_code
        == 404
    )


@pytest.mark.parametrize("realm", REALMS)
def test_jwks_publishes_rs256_public_keys_with_kid(sandbox, realm):
    response = requests.get(jwks_url(sandbox, realm), timeout=5)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"]
    assert {"n", "e"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private parts leaked"


def test_each_realm_has_its_own_key(sandbox):
    kids = {
        requests.get(jwks_url(sandbox, realm), timeout=5).json()["keys"][0]["kid"]
        for realm in REALMS
    }
    assert len(kids) == 3
