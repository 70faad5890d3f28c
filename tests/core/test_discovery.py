"""Discovery and JWKS caching against a real loopback server."""

import pytest
from django.core.cache import caches

from ftauth.core import discovery
from ftauth.core.http import HttpClient, HttpConfig
from ftauth.core.realms import build_realm


@pytest.fixture
def idp(fakeop_server):
    fakeop_server.reset()
    return fakeop_server


@pytest.fixture
def cache():
    c = caches["default"]
    c.clear()
    yield c
    c.clear()


def realm_of(idp, **options):
    return build_realm("individu", {"server": idp.server_url, **options}, idp.api_url)


HTTP = HttpClient(HttpConfig(retries=0, read_timeout=2))


def paths(idp, fragment):
    return [r for r in idp.requests if fragment in r["path"]]


def test_issuer_and_jwks_uri_come_from_discovery_and_are_cached(idp, cache):
    realm = realm_of(idp)
    first = discovery.get_metadata(realm, HTTP, cache, ttl=60)
    second = discovery.get_metadata(realm, HTTP, cache, ttl=60)
    assert first == second
    assert first.issuer == idp.issuer() and first.from_discovery
    assert first.iss_parameter_supported
    assert len(paths(idp, "openid-configuration")) == 1


def test_known_defaults_serve_when_discovery_fails(idp, cache):
    realm = build_realm("individu", {"server": "http://127.0.0.1:9/ft"}, idp.api_url)
    metadata = discovery.get_metadata(realm, HTTP, cache, ttl=60)
    assert metadata.issuer == realm.issuer and metadata.jwks_uri == realm.jwks_url
    assert not metadata.from_discovery


def test_discovery_naming_an_issuer_on_another_server_is_ignored(idp, cache, monkeypatch):
    realm = realm_of(idp)
    monkeypatch.setattr(idp, "issuer", lambda realm="individu": "https://evil.example/x")
    metadata = discovery.get_metadata(realm, HTTP, cache, ttl=60)
    assert metadata.issuer == realm.issuer


def test_configured_issuer_wins_over_discovery(idp, cache):
    realm = realm_of(idp, issuer=f"{idp.server_url}/custom")
    metadata = discovery.get_metadata(realm, HTTP, cache, ttl=60, explicit_issuer=True)
    assert metadata.issuer == f"{idp.server_url}/custom"


def test_jwks_is_cached_and_refetch_is_rate_limited(idp, cache):
    uri = f"{idp.server_url}/connexion/oauth2/connect/jwk_uri?realm=/individu"
    for _ in range(3):
        discovery.get_jwks(uri, HTTP, cache, ttl=60, refetch_interval=60)
    assert len(paths(idp, "jwk_uri")) == 1
    # A flood of unknown kids right after a fetch triggers no new request.
    for _ in range(5):
        discovery.get_jwks(uri, HTTP, cache, ttl=60, refetch_interval=60, refresh=True)
    assert len(paths(idp, "jwk_uri")) == 1


def test_jwks_refetch_happens_once_the_interval_has_passed(idp, cache):
    uri = f"{idp.server_url}/connexion/oauth2/connect/jwk_uri?realm=/individu"
    discovery.get_jwks(uri, HTTP, cache, ttl=60, refetch_interval=60)
    cache.delete(discovery._key("jwks-refetch", uri))  # the interval has passed
    discovery.get_jwks(uri, HTTP, cache, ttl=60, refetch_interval=60, refresh=True)
    assert len(paths(idp, "jwk_uri")) == 2
