import pytest

from ftauth.core.errors import ConfigurationError
from ftauth.core.realms import build_realm, build_realms, default_issuer


def test_individu_defaults_use_france_travail_paths():
    realm = build_realm("individu", {}, "https://api.francetravail.io")
    assert realm.path == "/individu"
    assert realm.authorize_url == (
        "https://authentification-candidat.francetravail.fr/connexion/oauth2/authorize"
    )
    assert realm.token_url.endswith("/connexion/oauth2/access_token?realm=%2Findividu")
    assert realm.issuer == (
        "https://authentification-candidat.francetravail.fr:443"
        "/connexion/oauth2/realms/root/realms/individu"
    )
    assert realm.userinfo_url.startswith(
        "https://api.francetravail.io/partenaire/peconnect-individu/v1/userinfo"
    )
    assert "api_peconnect-individuv1" in realm.scopes


def test_employeur_and_partenaire_share_the_entreprise_server():
    realms = build_realms({"employeur": {}, "partenaire": {}})
    assert realms["employeur"].server == realms["partenaire"].server
    assert realms["partenaire"].token_url.endswith("realm=%2Fpartenaire")
    assert not realms["individu"].enabled


def test_every_endpoint_can_be_overridden():
    realm = build_realm(
        "individu", {"token_url": "https://idp.example/token", "scopes": "openid email"}, ""
    )
    assert realm.token_url == "https://idp.example/token"
    assert realm.scopes == ("openid", "email")


def test_unknown_realm_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown realm 'candidat'"):
        build_realms({"candidat": {}})


def test_algorithm_none_is_refused():
    with pytest.raises(ConfigurationError, match="none"):
        build_realm("individu", {"id_token_algorithms": ["RS256", "none"]}, "")


def test_default_issuer_keeps_explicit_port_of_loopback_server():
    assert default_issuer("http://127.0.0.1:8000/sandbox/x", "individu") == (
        "http://127.0.0.1:8000/sandbox/x/connexion/oauth2/realms/root/realms/individu"
    )
