"""Sign-in on France Travail's and Redis's worst days, over real HTTP (tests/fakeop.py).

Each fault ends with a clear page and status, or with a completed sign-in when what
failed was only a copy (the cache); never a 500, never a session for anyone when
the sign-in did not complete, and the next sign-in works once the fault ends.
"""

from __future__ import annotations

import email.utils
import logging
import time

import pytest
from django.core.cache import caches
from django.test import Client

from ftauth.core import discovery
from ftauth.core.http import HttpClient, HttpConfig
from ftauth.core.realms import build_realm
from ftauth.models import LinkedAccount
from tests.fakeop import DROP
from tests.idp import authorize, callback, sign_in, start
from tests.lifecycle import give_password

pytestmark = pytest.mark.django_db

BACKCHANNEL = "/ftauth/backchannel-logout/individu/"
# Nothing listens on port 1: connections are refused at once, like a stopped Redis.
DOWN_REDIS = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
}


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def use_cache(settings, alias):
    settings.FTAUTH = {**settings.FTAUTH, "CACHE_ALIAS": alias}


@pytest.fixture
def down_cache(settings):
    """A cache alias ``down`` whose server is unreachable."""
    pytest.importorskip("redis")
    settings.CACHES = {**settings.CACHES, "down": DOWN_REDIS}
    return "down"


def forged_logout_token(idp, kid="forged-kid"):
    """A logout token anyone could post: signed by a key France Travail never published."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
    return jwt.encode({"alg": "RS256", "kid": kid}, idp.logout_claims(), key)


# --- the cache ------------------------------------------------------------------------------


def test_sign_in_completes_with_the_cache_unreachable_from_the_start(
    client, idp, settings, down_cache, caplog
):
    use_cache(settings, down_cache)
    with caplog.at_level(logging.WARNING, logger="ftauth"):
        _params, response = sign_in(client, idp)
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert signed_in(client)
    failures = [r for r in caplog.records if r.name == "ftauth.cache"]
    assert len(failures) == 1, "one line per request, not one per cache call"
    assert "Connection refused" in failures[0].getMessage() or "111" in failures[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def test_sign_in_completes_when_the_cache_dies_between_login_and_callback(
    client, idp, settings, down_cache
):
    params = start(client)  # the cache was fine here (and is not needed to start)
    use_cache(settings, down_cache)
    response = callback(client, idp, params, code=authorize(idp, params))
    assert response.status_code == 302 and signed_in(client)


def test_sign_in_completes_when_the_cache_dies_after_discovery_was_cached(
    client, idp, settings, down_cache
):
    sign_in(Client(), idp)  # discovery and JWKS now cached in "default"
    use_cache(settings, down_cache)  # the cache is gone before this browser logs in
    _params, response = sign_in(client, idp)
    assert response.status_code == 302 and signed_in(client)
    # Without the cache, discovery and keys were fetched again.
    assert len(idp.requests_to("discovery")) == 2 and len(idp.requests_to("jwks")) == 2


def test_sign_in_completes_when_the_cache_is_flushed_between_login_and_callback(client, idp):
    params = start(client)
    caches["default"].clear()
    response = callback(client, idp, params, code=authorize(idp, params))
    assert response.status_code == 302 and signed_in(client)


def test_cache_down_and_identity_server_down_is_a_503(client, idp, settings, down_cache):
    use_cache(settings, down_cache)
    params = start(client)
    code = authorize(idp, params)
    realms = settings.FTAUTH["REALMS"]
    gone = {"server": "http://127.0.0.1:9/ft"}
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {**realms, "individu": gone}}
    issuer = build_realm("individu", gone, idp.api_url).issuer
    response = callback(client, idp, params, code=code, iss=issuer)
    assert response.status_code == 503
    assert "indisponible" in response.content.decode()
    assert not signed_in(client) and not LinkedAccount.objects.exists()


def test_backchannel_logout_with_the_cache_down_is_not_a_500(client, idp, settings, down_cache):
    use_cache(settings, down_cache)
    response = client.post(BACKCHANNEL, {"logout_token": idp.logout_token()})
    assert response.status_code == 200


# --- the identity server --------------------------------------------------------------------


def test_identity_server_down_from_the_start_is_a_503(client, idp, settings):
    gone = {"server": "http://127.0.0.1:9/ft"}
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {"individu": gone}}
    params = start(client)
    issuer = build_realm("individu", gone, idp.api_url).issuer
    response = callback(client, idp, params, code="any", iss=issuer)
    assert response.status_code == 503 and not signed_in(client)
    assert "/ftauth/login/individu/" in response.content.decode()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": "server_error"}),
        (200, b"{not json"),
        (200, ["a", "list"]),
        (DROP, {}),
        # Deeper than Python's JSON reader recurses: a RecursionError, not a ValueError.
        (200, b"[" * 20_000),
    ],
    ids=["5xx", "malformed-json", "not-an-object", "connection-killed", "nested-too-deep"],
)
def test_discovery_trouble_falls_back_to_the_known_endpoints(client, idp, status, body):
    idp.fail_next("discovery", status, body=body)
    _params, response = sign_in(client, idp)
    assert response.status_code == 302 and signed_in(client)


@pytest.mark.parametrize(
    ("status", "body", "page"),
    [
        (503, {"error": "down"}, 503),
        (DROP, {"keys": []}, 503),
        (200, b'{"keys": [{"kty": "RSA", "n": "', 400),
    ],
    ids=["5xx", "connection-killed", "truncated"],
)
def test_jwks_trouble_is_a_clear_page_and_the_next_sign_in_works(client, idp, status, body, page):
    idp.fail_next("jwks", status, body=body)
    _params, response = sign_in(client, idp)
    assert response.status_code == page and not signed_in(client)
    assert not LinkedAccount.objects.exists()
    _params, response = sign_in(client, idp)
    assert response.status_code == 302 and signed_in(client)


@pytest.mark.parametrize(
    "body",
    [{"keys": []}, {"keys": [{"kty": "RSA", "kid": "fakeop-1", "n": "AQAB"}]}],
    ids=["empty", "unusable-key"],
)
def test_a_jwks_without_usable_key_is_refetched_at_once_for_an_id_token(client, idp, body):
    idp.fail_next("jwks", 200, body=body)
    _params, response = sign_in(client, idp)
    assert response.status_code == 302 and signed_in(client)
    assert len(idp.requests_to("jwks")) == 2


def test_token_endpoint_connection_killed_mid_answer_is_a_503(client, idp):
    params = start(client)
    idp.fail_next("token", DROP, body={"access_token": "half"})
    response = callback(client, idp, params, code=authorize(idp, params))
    assert response.status_code == 503 and not signed_in(client)


@pytest.mark.parametrize(
    ("retry_after", "shown"),
    [(lambda: "7", range(7, 8)), (lambda: http_date(120), range(110, 121)), (lambda: "soon", None)],
    ids=["seconds", "http-date", "garbage"],
)
def test_token_endpoint_429_is_a_503_with_retry_after(client, idp, retry_after, shown):
    params = start(client)
    idp.token_script = (429, {"Retry-After": retry_after()}, {"error": "quota"})
    response = callback(client, idp, params)
    assert response.status_code == 503 and not signed_in(client)
    if shown is None:  # no delay to honour: the plain "réessayez" page
        assert "Retry-After" not in response
    else:
        assert int(response["Retry-After"]) in shown
        assert f"{response['Retry-After']} s" in response.content.decode()


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def test_slow_token_endpoint_is_a_503(client, idp):
    params = start(client)
    idp.token_delay = 1.5  # the idp fixture's read timeout is 1 s
    response = callback(client, idp, params, code=authorize(idp, params))
    assert response.status_code == 503 and not signed_in(client)


# --- key rotation ---------------------------------------------------------------------------


def spend_the_refetch_budget(idp, client):
    """Forged logout tokens with unknown kids: anyone can post them."""
    for n in range(3):
        response = client.post(BACKCHANNEL, {"logout_token": forged_logout_token(idp, f"k{n}")})
        assert response.status_code == 400


def test_rotation_between_two_sign_ins(idp):
    first = Client()
    assert sign_in(first, idp)[1].status_code == 302
    idp.rotate_key()  # within the refetch interval of the first sign-in's fetch
    second = Client()
    _params, response = sign_in(second, idp, sub="another-job-seeker")
    assert response.status_code == 302 and signed_in(second)


def test_rotation_just_before_signing_after_forged_kids_spent_the_budget(idp):
    assert sign_in(Client(), idp)[1].status_code == 302
    spend_the_refetch_budget(idp, Client())
    browser = Client()
    params = start(browser)
    code = authorize(idp, params)
    idp.rotate_key()  # France Travail signs this very ID token with a key just published
    response = callback(browser, idp, params, code=code)
    assert response.status_code == 302 and signed_in(browser)


def test_forged_kids_in_logout_tokens_are_rate_limited(idp, client):
    assert sign_in(Client(), idp)[1].status_code == 302
    spend_the_refetch_budget(idp, client)
    assert len(idp.requests_to("jwks")) == 1


# --- what is cached, and for how long -------------------------------------------------------


class Clock:
    """A clock the test moves forward (stands for the ``time`` module)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def cache_clock(monkeypatch):
    """Time moved forward for the local-memory cache and for discovery's refresh dates."""
    from django.core.cache.backends import locmem

    if not isinstance(caches["default"], locmem.LocMemCache):
        pytest.skip("moves the local-memory cache's clock")
    clock = Clock()
    monkeypatch.setattr(locmem, "time", clock)
    monkeypatch.setattr(discovery, "time", clock)
    caches["default"].clear()
    yield clock
    caches["default"].clear()


HTTP = HttpClient(HttpConfig(retries=0, read_timeout=2))


def jwks_uri(idp):
    return f"{idp.server_url}/connexion/oauth2/connect/jwk_uri?realm=/individu"


def test_an_empty_jwks_is_cached_only_for_the_fallback_ttl(idp, cache_clock):
    cache = caches["default"]
    idp.fail_next("jwks", 200, body={"keys": []})
    first = discovery.get_jwks(jwks_uri(idp), HTTP, cache, ttl=3600, refetch_interval=60)
    assert first == {"keys": []}
    cache_clock.offset = discovery.FALLBACK_TTL + 30  # 90 s later, the endpoint is healthy
    healed = discovery.get_jwks(jwks_uri(idp), HTTP, cache, ttl=3600, refetch_interval=60)
    assert healed["keys"] and len(idp.requests_to("jwks")) == 2


def test_a_good_jwks_is_cached_for_its_ttl(idp, cache_clock):
    cache = caches["default"]
    discovery.get_jwks(jwks_uri(idp), HTTP, cache, ttl=3600, refetch_interval=60)
    cache_clock.offset = 600
    discovery.get_jwks(jwks_uri(idp), HTTP, cache, ttl=3600, refetch_interval=60)
    assert len(idp.requests_to("jwks")) == 1


def test_the_iss_promise_survives_a_discovery_outage(idp, cache_clock):
    cache = caches["default"]
    realm = build_realm("individu", {"server": idp.server_url}, idp.api_url)
    assert discovery.get_metadata(realm, HTTP, cache, ttl=60).iss_parameter_supported
    cache_clock.offset = 120  # the document is due for a refresh, and discovery is down
    idp.fail_next("discovery", 503)
    during = discovery.get_metadata(realm, HTTP, cache, ttl=60)
    assert during.iss_parameter_supported and during.issuer == idp.issuer()
    assert len(idp.requests_to("discovery")) == 2


def test_a_missing_iss_is_refused_during_a_discovery_outage(client, idp, cache_clock):
    """End to end: the server once announced RFC 9207; while discovery is down a
    callback without ``iss`` is still refused, before any token request."""
    assert sign_in(Client(), idp)[1].status_code == 302
    cache_clock.offset = 7200  # past the discovery TTL (JWKS_CACHE_TTL, 1 h)
    idp.fail_next("discovery", 500)
    params = start(client)
    tokens_before = len(idp.token_requests())
    response = callback(client, idp, params, iss=None, code=authorize(idp, params))
    assert response.status_code == 400 and not signed_in(client)
    assert len(idp.token_requests()) == tokens_before


def test_a_cache_alias_missing_from_caches_is_no_500(client, idp, settings):
    use_cache(settings, "not-in-caches")  # reported by check ftauth.E011
    _params, response = sign_in(client, idp)
    assert response.status_code == 302 and signed_in(client)


def test_signing_in_again_after_an_unlink_works(idp):
    first = Client()
    assert sign_in(first, idp)[1].status_code == 302
    give_password(first)  # another way in: the identity may be unlinked
    assert first.post("/ftauth/account/unlink/individu/").status_code == 302
    _params, response = sign_in(Client(), idp)
    assert response.status_code == 302
