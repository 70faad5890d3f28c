"""System checks of the consent lifecycle: token keys, stored tokens, middleware order."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core import checks

from ftauth.checks import check_middleware_order, check_stored_tokens, check_token_keys
from tests.lifecycle import make_account, store_tokens


def with_keys(settings, keys):
    settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": keys}


def test_configured_keys_pass():
    assert check_token_keys() == []


def test_missing_keys_are_an_error(settings):
    with_keys(settings, [])
    [error] = check_token_keys()
    assert error.id == "ftauth.E020" and error.level == checks.ERROR
    assert "Fernet.generate_key" in error.hint


def test_malformed_key_is_an_error_that_does_not_show_it(settings):
    bad = "this-is-not-a-fernet-key-at-all"
    with_keys(settings, [Fernet.generate_key().decode(), bad])
    [error] = check_token_keys()
    assert error.id == "ftauth.E021"
    assert "[1]" in error.msg and bad not in error.msg and bad not in error.hint


@pytest.mark.django_db
def test_tokens_unreadable_with_the_keys_are_an_error(settings):
    store_tokens(make_account())
    assert check_stored_tokens(databases=["default"]) == []
    with_keys(settings, [Fernet.generate_key().decode()])
    [error] = check_stored_tokens(databases=["default"])
    assert error.id == "ftauth.E022"
    assert "ftauth_rotate_keys" in error.hint


@pytest.mark.django_db
def test_stored_tokens_are_checked_only_when_databases_are(settings):
    store_tokens(make_account())
    with_keys(settings, [Fernet.generate_key().decode()])
    assert check_stored_tokens(databases=None) == []


def test_middleware_before_authentication_is_a_warning(settings):
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "ftauth.middleware.ConsentMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    [warning] = check_middleware_order()
    assert warning.id == "ftauth.W023"


def test_middleware_order_of_the_test_settings_passes():
    assert check_middleware_order() == []
