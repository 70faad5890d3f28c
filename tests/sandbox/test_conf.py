"""The sandbox refuses to run with DEBUG off unless allowed; its settings are checked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from ftauth.sandbox.conf import check_debug_allowed, get_sandbox_settings
from ftauth.sandbox.hooks import NO_HOOKS

from ..tamper import MODES, Tamper


def _settings(**values) -> SimpleNamespace:
    return SimpleNamespace(**values)


def allowed(**values) -> bool:
    try:
        check_debug_allowed(_settings(**values))
    except ImproperlyConfigured:
        return False
    return True


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"DEBUG": True}, True),
        ({"DEBUG": False, "FTAUTH": {"CLIENT_ID": "x"}}, False),
        ({"DEBUG": False}, False),
        ({"DEBUG": False, "FTAUTH": {"SANDBOX_ALLOW_WITHOUT_DEBUG": False}}, False),
        ({"DEBUG": False, "FTAUTH": {"SANDBOX_ALLOW_WITHOUT_DEBUG": "false"}}, False),
        ({"DEBUG": False, "FTAUTH_SANDBOX": True}, False),  # the demo's switch allows nothing
        ({"DEBUG": False, "FTAUTH_SANDBOX": {"ALLOW_WITHOUT_DEBUG": "no"}}, False),
        ({"DEBUG": False, "FTAUTH_SANDBOX": {"ALLOW_WITHOUT_DEBUG": "false"}}, False),
        ({"DEBUG": False, "FTAUTH_SANDBOX": {"ALLOW_WITHOUT_DEBUG": "0"}}, False),
        ({"DEBUG": False, "FTAUTH_SANDBOX": {"ALLOW_WITHOUT_DEBUG": False}}, False),
        ({"DEBUG": False, "FTAUTH": {"SANDBOX_ALLOW_WITHOUT_DEBUG": "0"}}, False),
        ({"DEBUG": False, "FTAUTH": {"SANDBOX_ALLOW_WITHOUT_DEBUG": "no"}}, False),
        ({"DEBUG": False, "FTAUTH": {"SANDBOX_ALLOW_WITHOUT_DEBUG": True}}, True),
        ({"DEBUG": False, "FTAUTH": {"SANDBOX_ALLOW_WITHOUT_DEBUG": "true"}}, True),
        ({"DEBUG": False, "FTAUTH_SANDBOX": {"ALLOW_WITHOUT_DEBUG": True}}, True),
    ],
)
def test_runs_with_debug_off_only_when_explicitly_allowed(values, expected):
    assert allowed(**values) is expected


def test_refusal_says_why():
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        check_debug_allowed(_settings(DEBUG=False, FTAUTH={"CLIENT_ID": "x"}))
    with pytest.raises(ImproperlyConfigured, match="boolean"):
        check_debug_allowed(_settings(DEBUG=False, FTAUTH={"SANDBOX_ALLOW_WITHOUT_DEBUG": "oui"}))


def test_app_ready_runs_the_check(settings):
    settings.DEBUG = False
    settings.FTAUTH = {
        k: v for k, v in settings.FTAUTH.items() if k != "SANDBOX_ALLOW_WITHOUT_DEBUG"
    }
    settings.FTAUTH_SANDBOX = {}
    with pytest.raises(ImproperlyConfigured):
        apps.get_app_config("ftauth_sandbox").ready()
    settings.FTAUTH_SANDBOX = {"ALLOW_WITHOUT_DEBUG": True}
    apps.get_app_config("ftauth_sandbox").ready()


def test_defaults(settings):
    settings.FTAUTH_SANDBOX = True  # the demo site's on/off switch is not a dict
    conf = get_sandbox_settings()
    assert conf.quota_per_second == 4
    assert conf.code_lifetime == 60
    assert conf.access_token_lifetime == 1499
    assert conf.id_token_lifetime == 9000
    assert conf.hooks is NO_HOOKS
    assert conf.rotate_refresh_tokens is True
    assert conf.end_session_revokes_grant is False
    # ALLOW_WITHOUT_DEBUG has one reader, check_debug_allowed: no second copy to disagree.
    assert not hasattr(conf, "allow_without_debug")


BOOLEAN_OPTIONS = {
    "ROTATE_REFRESH_TOKENS": "rotate_refresh_tokens",
    "END_SESSION_REVOKES_GRANT": "end_session_revokes_grant",
    "BACKCHANNEL_ON_END_SESSION": "backchannel_on_end_session",
}


@pytest.mark.parametrize("key", list(BOOLEAN_OPTIONS))
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("false", False), ("0", False), ("no", False), (False, False), ("true", True), (True, True)],
)
def test_boolean_options_read_false_as_false(settings, key, raw, expected):
    settings.FTAUTH_SANDBOX = {key: raw}
    assert getattr(get_sandbox_settings(), BOOLEAN_OPTIONS[key]) is expected


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("ROTATE_REFRESH_TOKENS", "peut-être"),
        ("END_SESSION_REVOKES_GRANT", 2),
        ("CODE_LIFETIME", "soixante"),
        ("QUOTA_PER_SECOND", 0),
        ("REDIRECT_HOSTS", 12),
    ],
)
def test_invalid_option_values_are_a_clear_error(settings, key, raw):
    settings.FTAUTH_SANDBOX = {key: raw}
    with pytest.raises(ImproperlyConfigured, match=key):
        get_sandbox_settings()


def test_numbers_and_hosts_from_strings(settings):
    settings.FTAUTH_SANDBOX = {
        "CODE_LIFETIME": "30",
        "QUOTA_PER_SECOND": "2.5",
        "REDIRECT_HOSTS": "emploi.example, demo.example",
    }
    conf = get_sandbox_settings()
    assert conf.code_lifetime == 30 and conf.quota_per_second == 2.5
    settings.FTAUTH_SANDBOX = {"CODE_LIFETIME": -1}  # codes born expired, for expiry tests
    assert get_sandbox_settings().code_lifetime == -1
    assert conf.redirect_hosts == ("emploi.example", "demo.example")


def test_unknown_tamper_mode_or_key_is_a_clear_error(settings):
    with pytest.raises(ValueError, match="id_token_wrong_isss"):
        Tamper("id_token_wrong_isss")
    # The tamper modes are the test suite's: the shipped sandbox has no such option.
    for key in ("TAMPER", "TAMPERS"):
        settings.FTAUTH_SANDBOX = {key: []}
        with pytest.raises(ImproperlyConfigured, match=key):
            get_sandbox_settings()


def test_hooks_accept_an_instance_or_a_dotted_path(settings):
    hooks = Tamper("iss_param_missing", "id_token_no_sub")
    settings.FTAUTH_SANDBOX = {"HOOKS": hooks}
    assert get_sandbox_settings().hooks is hooks
    assert hooks.modes == {"iss_param_missing", "id_token_no_sub"} <= MODES
    settings.FTAUTH_SANDBOX = {"HOOKS": "ftauth.sandbox.hooks.NO_HOOKS"}
    assert get_sandbox_settings().hooks is NO_HOOKS


@pytest.mark.parametrize("value", ["tests.tamper.Tamper", "tests.tamper.nowhere", object()])
def test_hooks_that_are_not_a_sandbox_hooks_instance_are_a_clear_error(settings, value):
    settings.FTAUTH_SANDBOX = {"HOOKS": value}
    with pytest.raises(ImproperlyConfigured, match="HOOKS"):
        get_sandbox_settings()
