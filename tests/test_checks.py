"""System checks turn misconfiguration into messages at ``manage.py check``."""

from ftauth.checks import check_settings


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
    assert errors[0].id == "ftauth.E001" and "candidat" in errors[0].msg


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
