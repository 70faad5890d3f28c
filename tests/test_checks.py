"""System checks turn misconfiguration into messages at ``manage.py check``."""

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import Warning

from ftauth.checks import check_middleware_order, check_settings


def ids(settings_obj=None):
    return {e.id for e in check_settings()}


def test_default_test_settings_pass():
    assert not {i for i in ids() if i.startswith("ftauth.E00")}


def test_missing_client_id_and_secret_reported_unless_sandbox(settings):
    settings.FTAUTH = {**settings.FTAUTH, "CLIENT_ID": "", "CLIENT_SECRET": "", "SANDBOX": False}
    assert {"ftauth.E002", "ftauth.E003"} <= ids()
    settings.FTAUTH = {**settings.FTAUTH, "SANDBOX": True}
    assert not {"ftauth.E002", "ftauth.E003"} & ids()


def test_plain_http_server_off_loopback_is_reported(settings):
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {"individu": {"server": "http://idp.example"}}}
    assert "ftauth.E004" in ids()


def test_plain_http_on_loopback_is_accepted(settings):
    settings.FTAUTH = {
        **settings.FTAUTH,
        "REALMS": {"individu": {"server": "http://127.0.0.1:8000/x"}},
    }
    assert "ftauth.E004" not in ids()


def test_unknown_realm_is_reported(settings):
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {"candidat": {}}}
    errors = check_settings()
    assert errors[0].id == "ftauth.E008" and "candidat" in errors[0].msg


def test_missing_backend_is_reported(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert "ftauth.E005" in ids()


def test_insecure_server_is_reported_once_naming_the_setting(settings):
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {"individu": {"server": "http://idp.example"}}}
    errors = [e for e in check_settings() if e.id == "ftauth.E004"]
    assert len(errors) == 1
    assert "FTAUTH['REALMS']['individu']['server']" in errors[0].msg


def test_insecure_api_url_is_reported(settings):
    settings.FTAUTH = {**settings.FTAUTH, "API_URL": "http://api.example"}
    assert any("FTAUTH['API_URL']" in e.msg for e in check_settings() if e.id == "ftauth.E004")


def test_insecure_overridden_endpoint_is_reported(settings):
    realms = {"individu": {"server": "http://127.0.0.1:8000", "token_url": "http://idp.example/t"}}
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": realms}
    errors = [e.msg for e in check_settings() if e.id == "ftauth.E004"]
    assert errors == [
        "FTAUTH['REALMS']['individu']['token_url'] 'http://idp.example/t' is not HTTPS."
    ]


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x/1"}


def test_per_process_cache_is_reported_when_debug_is_off(settings):
    from ftauth.checks import check_shared_cache

    settings.CACHES = LOCMEM
    settings.DEBUG = False
    assert [w.id for w in check_shared_cache()] == ["ftauth.W040"]
    settings.DEBUG = True  # one developer, one process: fine
    assert check_shared_cache() == []


def test_shared_cache_passes_and_the_alias_is_the_one_checked(settings):
    from ftauth.checks import check_shared_cache

    settings.DEBUG = False
    settings.CACHES = {**LOCMEM, "shared": REDIS}
    settings.FTAUTH = {**settings.FTAUTH, "CACHE_ALIAS": "shared"}
    assert check_shared_cache() == []
    settings.CACHES = {"default": REDIS, "shared": LOCMEM["default"]}
    assert [w.id for w in check_shared_cache()] == ["ftauth.W040"]


class SiteLocMemCache(LocMemCache):
    """A site's own flavour of the per-process cache: still per process."""


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
        "tests.test_checks.SiteLocMemCache",
    ],
)
def test_the_check_and_the_doctor_call_the_same_caches_per_process(settings, backend):
    from ftauth.checks import check_shared_cache
    from ftauth.conf import get_http, get_settings
    from ftauth.management.commands.ftauth_doctor import WARNING, Doctor

    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": backend}}
    assert [w.id for w in check_shared_cache()] == ["ftauth.W040"]
    doctor = Doctor(get_settings(), get_http(), "https://emploi.example.fr")
    doctor.cache()
    if backend.endswith("DummyCache"):
        return  # the doctor says worse first: it keeps nothing
    assert [(f.level, f.check) for f in doctor.findings] == [(WARNING, "cache")]


def test_shared_and_unknown_backends_are_not_per_process():
    from ftauth.internal.cache import is_per_process

    assert not is_per_process("django.core.cache.backends.redis.RedisCache")
    assert not is_per_process("django.core.cache.backends.db.DatabaseCache")
    assert not is_per_process("no.such.Backend")  # Django reports it


# --- one id per rule -------------------------------------------------------------------------


def errors_for(settings, **values):
    settings.FTAUTH = {**settings.FTAUTH, **values}
    return {e.id: e.msg for e in check_settings()}


@pytest.mark.parametrize(
    ("values", "check_id", "words"),
    [
        ({"COLOR": "blue"}, "ftauth.E001", ["unknown keys", "COLOR"]),
        ({"REALMS": {"individu": {"colour": 1}}}, "ftauth.E001", ["['individu']", "colour"]),
        ({"LINK_BY_EMAIL": "maybe"}, "ftauth.E006", ["LINK_BY_EMAIL", "boolean", "str"]),
        ({"CONSENT_CHECK_INTERVAL": "soon"}, "ftauth.E006", ["CONSENT_CHECK_INTERVAL", "integer"]),
        ({"PENDING_LOGIN_MAX": 2.5}, "ftauth.E006", ["PENDING_LOGIN_MAX", "whole"]),
        ({"HTTP_READ_TIMEOUT": [1]}, "ftauth.E006", ["HTTP_READ_TIMEOUT", "number", "list"]),
        ({"API_RATE_LIMITS": [4]}, "ftauth.E006", ["API_RATE_LIMITS", "dict", "list"]),
        ({"API_RATE_LIMITS": {"offres": "fast"}}, "ftauth.E006", ["['offres']", "number"]),
        ({"REALMS": {"individu": {"enabled": "oui"}}}, "ftauth.E006", ["['enabled']", "boolean"]),
        ({"REALMS": ["individu"]}, "ftauth.E006", ["REALMS", "dict", "list"]),
        ({"PENDING_LOGIN_TTL": -5}, "ftauth.E007", ["PENDING_LOGIN_TTL", "at least 1"]),
        ({"API_DEFAULT_RATE": 0}, "ftauth.E007", ["API_DEFAULT_RATE", "greater than 0"]),
        ({"API_RATE_LIMITS": {"offres": -4}}, "ftauth.E007", ["['offres']", "greater than 0"]),
        ({"HTTP_CONNECT_TIMEOUT": "inf"}, "ftauth.E007", ["HTTP_CONNECT_TIMEOUT", "finite"]),
        ({"REALMS": {"candidat": {}}}, "ftauth.E008", ["candidat"]),
        (
            {"REALMS": {"individu": {"id_token_algorithms": ["none"]}}},
            "ftauth.E009",
            ["id_token_algorithms", "none"],
        ),
        ({"REALMS": {"partenaire": {"fetch_userinfo": True}}}, "ftauth.E010", ["userinfo_url"]),
        ({"CACHE_ALIAS": "elsewhere"}, "ftauth.E011", ["CACHE_ALIAS", "elsewhere"]),
        ({"ACCOUNT_ADAPTER": "no.such.Adapter"}, "ftauth.E012", ["ACCOUNT_ADAPTER"]),
        ({"LOGOUT_REDIRECT_URL": "nowhere"}, "ftauth.E013", ["LOGOUT_REDIRECT_URL"]),
        ({"HTTP_CA_FILE": "/no/such/bundle.pem"}, "ftauth.E014", ["HTTP_CA_FILE"]),
    ],
)
def test_each_rule_has_its_own_id_and_names_the_key(settings, values, check_id, words):
    found = errors_for(settings, **values)
    assert check_id in found, found
    for word in words:
        assert word in found[check_id]


def test_every_wrong_value_is_reported_at_once(settings):
    settings.FTAUTH = {**settings.FTAUTH, "LINK_BY_EMAIL": "maybe", "PENDING_LOGIN_TTL": -1}
    found = [e.id for e in check_settings()]
    assert sorted(found) == ["ftauth.E006", "ftauth.E007"]


def test_a_wrong_secret_is_reported_without_its_value(settings):
    settings.FTAUTH = {**settings.FTAUTH, "CLIENT_SECRET": 987654321, "TOKEN_KEYS": 123456789}
    found = [e.msg for e in check_settings()]
    assert "FTAUTH['CLIENT_SECRET'] must be a str, not int" in found
    assert "FTAUTH['TOKEN_KEYS'] must be a list of str, not int" in found
    assert "987654321" not in str(found) and "123456789" not in str(found)


def test_ftauth_that_is_not_a_dict_is_reported(settings):
    settings.FTAUTH = "CLIENT_ID=x"
    assert [(e.id, e.msg) for e in check_settings()] == [
        ("ftauth.E006", "settings.FTAUTH must be a dict, not str")
    ]


def test_missing_consent_middleware_is_a_warning(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("ftauth.")]
    warnings = check_middleware_order()
    assert [w.id for w in warnings] == ["ftauth.W015"]
    assert isinstance(warnings[0], Warning)
