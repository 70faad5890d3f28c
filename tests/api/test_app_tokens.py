"""Application tokens: one per scope set for every process, renewed once, encrypted."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import override_settings

from ftauth import crypto
from ftauth.api.app_tokens import ApplicationTokenTimeout, scope_set
from ftauth.core.errors import ConfigurationError, TransportError

from .conftest import make_app_client, make_tokens

SCOPES = ("api_offresdemploiv2", "o2dsoffre")


def test_a_hundred_calls_cost_one_token_request(shared_cache, clock, fake_ft):
    client = make_app_client(fake_ft, shared_cache, clock)
    for _ in range(100):
        assert client.get("offresdemploi/v2/offres/search")["resultats"]
    assert len(fake_ft.api_requests) == 100
    assert len(fake_ft.token_requests) == 1


def test_token_request_uses_the_partenaire_realm_and_client_secret_post(
    shared_cache, clock, fake_ft
):
    make_tokens(fake_ft, shared_cache, clock).get(SCOPES)
    (request,) = fake_ft.token_requests
    assert request.method == "POST"
    assert request.query == {"realm": ["/partenaire"]}
    form = request.form()
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["api_offresdemploiv2 o2dsoffre"]
    assert form["client_secret"] == [fake_ft.client_secret]


def test_processes_share_the_token_through_the_cache(shared_cache, clock, fake_ft):
    """Two ApplicationTokens on one cache stand for two processes."""
    first = make_tokens(fake_ft, shared_cache, clock).get(SCOPES)
    second = make_tokens(fake_ft, shared_cache, clock).get(SCOPES)
    assert first == second
    assert len(fake_ft.token_requests) == 1


def test_expired_token_is_renewed_once_by_concurrent_callers(shared_cache, clock, fake_ft):
    old = make_tokens(fake_ft, shared_cache, clock).get(SCOPES)
    clock.advance(1500)  # past expires_in=1499
    fake_ft.token_delay = 0.3  # every caller arrives while the renewal is on its way
    start = threading.Barrier(16)
    results: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        # One ApplicationTokens per thread, as in separate processes; real sleeps.
        tokens = make_tokens(fake_ft, shared_cache, clock, sleep=time.sleep)
        start.wait()
        try:
            results.append(tokens.get(SCOPES))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake_ft.token_requests) == 2
    assert set(results) == {fake_ft.issued[1]} and old not in results


def test_renewal_shortly_before_expiry_keeps_serving_the_current_token(
    shared_cache, clock, fake_ft
):
    old = make_tokens(fake_ft, shared_cache, clock).get(SCOPES)
    clock.advance(1499 - 30)  # inside the 60 s refresh margin, still valid
    fake_ft.token_delay = 0.5
    renewed: list[str] = []
    renewer = threading.Thread(
        target=lambda: renewed.append(make_tokens(fake_ft, shared_cache, clock).get(SCOPES))
    )
    renewer.start()
    while len(fake_ft.token_requests) < 2:
        time.sleep(0.01)
    started = time.monotonic()
    # While the renewal is on its way, another caller gets the current token at once.
    assert make_tokens(fake_ft, shared_cache, clock).get(SCOPES) == old
    assert time.monotonic() - started < 0.4
    renewer.join()
    assert renewed == [fake_ft.issued[1]]
    assert make_tokens(fake_ft, shared_cache, clock).get(SCOPES) == fake_ft.issued[1]
    assert len(fake_ft.token_requests) == 2


def test_one_token_per_scope_set(shared_cache, clock, fake_ft):
    tokens = make_tokens(fake_ft, shared_cache, clock)
    first = tokens.get(["o2dsoffre", "api_offresdemploiv2"])
    assert tokens.get(["api_offresdemploiv2", "o2dsoffre", "o2dsoffre"]) == first
    assert tokens.get(["api_other"]) != first
    assert len(fake_ft.token_requests) == 2


def test_token_is_encrypted_in_the_cache(shared_cache, clock, fake_ft):
    tokens = make_tokens(fake_ft, shared_cache, clock)
    token = tokens.get(SCOPES)
    stored = shared_cache.get(tokens._key(scope_set(SCOPES)))
    assert isinstance(stored, str) and token not in stored
    assert token in crypto.decrypt(stored)


def test_token_encrypted_with_a_removed_key_is_replaced(shared_cache, clock, fake_ft, settings):
    tokens = make_tokens(fake_ft, shared_cache, clock)
    old = tokens.get(SCOPES)
    new_key = "o0bvP3TQ0y8Vht9tyJjX-4dbnBgfeiDjpeExZqeS7r4="
    with override_settings(FTAUTH={**settings.FTAUTH, "TOKEN_KEYS": [new_key]}):
        assert tokens.get(SCOPES) != old
    assert len(fake_ft.token_requests) == 2


def test_invalid_client_names_the_settings_to_fix(shared_cache, clock, fake_ft):
    tokens = make_tokens(fake_ft, shared_cache, clock, client_secret="wrong-s3cret")
    with pytest.raises(ConfigurationError) as caught:
        tokens.get(SCOPES)
    message = str(caught.value)
    assert "FTAUTH['CLIENT_ID']" in message and "FTAUTH['CLIENT_SECRET']" in message
    assert "wrong-s3cret" not in message
    # Remembered for a moment: a page view does not hammer the identity server.
    with pytest.raises(ConfigurationError, match="CLIENT_SECRET"):
        make_tokens(fake_ft, shared_cache, clock, client_secret="wrong-s3cret").get(SCOPES)
    assert len(fake_ft.token_requests) == 1


def test_invalid_scope_names_the_setting_to_fix(shared_cache, clock, fake_ft):
    with pytest.raises(ConfigurationError, match=r"FTAUTH\['APPLICATION_SCOPES'\]") as caught:
        make_tokens(fake_ft, shared_cache, clock).get(["api_notgranted"])
    assert "api_notgranted" in str(caught.value)


def test_waiting_for_another_process_is_bounded(shared_cache, clock, fake_ft):
    tokens = make_tokens(fake_ft, shared_cache, clock, lock_timeout=1.0)
    # Another process holds the renewal lock and never finishes.
    shared_cache.add(f"{tokens._key(scope_set(SCOPES))}:lock", "someone-else", 60)
    with pytest.raises(ApplicationTokenTimeout):
        tokens.get(SCOPES)
    assert sum(clock.sleeps) == pytest.approx(1.0)
    assert fake_ft.token_requests == []


def test_failed_renewal_releases_the_lock(shared_cache, clock, fake_ft):
    tokens = make_tokens(fake_ft, shared_cache, clock)
    key = tokens._key(scope_set(SCOPES))
    fake_ft.__exit__(None, None, None)  # the identity server goes away
    with pytest.raises(TransportError):
        tokens.get(SCOPES)
    assert shared_cache.get(f"{key}:lock") is None


def test_repr_hides_the_secret(shared_cache, clock, fake_ft):
    tokens = make_tokens(fake_ft, shared_cache, clock)
    assert fake_ft.client_secret not in repr(tokens)
    assert fake_ft.client_secret not in repr(tokens.__dict__.get("realm"))


def test_unreachable_cache_gets_a_token_directly_and_keeps_it_in_the_process(clock, fake_ft):
    from .test_quota import unreachable_redis

    client = make_app_client(fake_ft, unreachable_redis(), clock)
    for _ in range(3):
        assert client.get("offresdemploi/v2/offres/search")["resultats"]
    assert len(fake_ft.api_requests) == 3
    assert len(fake_ft.token_requests) == 1
