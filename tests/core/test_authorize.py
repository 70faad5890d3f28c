"""PKCE and the authorization request (ftauth.core.authorize)."""

from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ftauth.core.authorize import build_authorization_request, s256_code_challenge
from ftauth.core.realms import build_realm


def test_s256_code_challenge_agrees_with_authlib():
    for verifier in ("a" * 43, "Z" * 128, "0123456789-._~" * 4):
        assert s256_code_challenge(verifier) == create_s256_code_challenge(verifier)


def test_authorization_request_carries_the_challenge_of_its_verifier():
    realm = build_realm("individu", {}, "https://api.francetravail.io")
    auth = build_authorization_request(
        realm, client_id="client", redirect_uri="https://site.example/cb/"
    )
    query = parse_qs(urlsplit(auth.url).query)
    assert query["code_challenge"] == [s256_code_challenge(auth.code_verifier)]
    assert query["code_challenge_method"] == ["S256"]
