"""FTAUTH values are converted to their type at load time (settings from the environment
are strings), or refused; nothing wrong survives until a request."""

import pytest

from ftauth.conf import SettingsErrors, get_settings, load_settings

pytestmark = pytest.mark.django_db


def load(**values):
    return load_settings({"CLIENT_ID": "c", "CLIENT_SECRET": "s", **values})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("false", False), ("False", False), ("0", False), ("", False), ("no", False)],
        *[("true", True), ("TRUE", True), ("1", True), ("yes", True), (True, True)],
    ],
)
def test_booleans_from_strings_mean_what_they_say(value, expected):
    assert load(LINK_BY_EMAIL=value).link_by_email is expected


def test_realm_enabled_from_a_string_is_a_boolean():
    conf = load(REALMS={"individu": {}, "employeur": {"enabled": "false"}})
    assert "employeur" not in conf.enabled_realms and "individu" in conf.enabled_realms


def test_numbers_from_strings_are_numbers():
    conf = load(
        CONSENT_CHECK_INTERVAL="300",
        HTTP_READ_TIMEOUT=" 2.5 ",
        API_DEFAULT_RATE="4",
        API_RATE_LIMITS={"offresdemploi": "2"},
        PENDING_LOGIN_MAX=3.0,
    )
    assert conf.consent_check_interval == 300 and isinstance(conf.consent_check_interval, int)
    assert conf.http_read_timeout == 2.5
    assert conf.api_default_rate == 4.0
    assert conf.api_rate_limits == {"offresdemploi": 2.0}
    assert conf.pending_login_max == 3 and isinstance(conf.pending_login_max, int)


def test_lists_from_strings_are_tuples():
    conf = load(
        TOKEN_KEYS="k1, k2", APPLICATION_SCOPES="a b", REALMS={"individu": {"scopes": "x y"}}
    )
    assert conf.token_keys == ("k1", "k2")
    assert conf.application_scopes == ("a", "b")
    assert conf.realm("individu").scopes == ("x", "y")


def test_a_boolean_is_no_number():
    with pytest.raises(SettingsErrors) as excinfo:
        load(PENDING_LOGIN_TTL=True)
    assert "PENDING_LOGIN_TTL" in str(excinfo.value) and "bool" in str(excinfo.value)


def test_none_means_the_default():
    assert load(CONSENT_CHECK_INTERVAL=None).consent_check_interval == 300


def test_string_interval_works_on_every_page(client, idp, settings):
    """The issue's case: CONSENT_CHECK_INTERVAL="300" answered 500 on login and account."""
    from tests.idp import sign_in

    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": "300", "LINK_BY_EMAIL": "false"}
    assert get_settings().link_by_email is False
    _params, response = sign_in(client, idp)
    assert response.status_code == 302
    assert client.get("/ftauth/account/").status_code == 200
    assert client.get("/profile/").status_code == 200
