"""ftauth.views.errors: failures logged with their message (never a secret), and
requests no view can read answered 400, not 500."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test import Client

from ftauth.models import AuditEvent, LinkedAccount
from tests.idp import authorize, callback, sign_in, start

pytestmark = pytest.mark.django_db


def test_a_database_error_is_logged_with_its_message(client, idp, caplog):
    with connection.cursor() as cursor:  # a real fault: the table is gone
        cursor.execute(f"DROP TABLE {AuditEvent._meta.db_table}")
    with caplog.at_level(logging.WARNING, logger="ftauth.signin"):
        _params, response = sign_in(client, idp)
    assert response.status_code == 503
    assert "_auth_user_id" not in client.session
    line = next(r.getMessage() for r in caplog.records if "failed" in r.getMessage())
    assert "OperationalError" in line or "ProgrammingError" in line
    assert "ftauth_auditevent" in line, "the operator must see which table"
    assert not LinkedAccount.objects.exists(), "nothing half-written"


def test_an_echoed_code_or_token_never_reaches_the_log(client, idp, caplog):
    params = start(client)
    code = authorize(idp, params)
    token = idp.id_token()
    echo = f"code {code} already used; last id_token {token}; secret tests-client-secret"
    idp.token_script = (400, {}, {"error": "invalid_grant", "error_description": echo})
    with caplog.at_level(logging.DEBUG):
        response = callback(client, idp, params, code=code)
    assert response.status_code == 400
    assert "invalid_grant" in caplog.text and "already used" in caplog.text
    assert code not in caplog.text and token not in caplog.text
    assert params["state"] not in caplog.text
    assert "tests-client-secret" not in caplog.text


class BrokenStream:
    """The client went away in the middle of its body."""

    def read(self, *args):
        raise OSError("connection reset by peer")

    readline = read


@pytest.mark.parametrize(
    "path",
    ["/ftauth/backchannel-logout/individu/", "/ftauth/logout/", "/ftauth/account/unlink/individu/"],
)
def test_a_body_cut_short_is_a_400(idp, path):
    response = Client().generic(
        "POST",
        path,
        b"",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        CONTENT_LENGTH="500",
        **{"wsgi.input": BrokenStream()},
    )
    assert response.status_code in (400, 302)  # unlink: anonymous users go to the login page
    if response.status_code == 400:
        assert response["Cache-Control"] == "no-store"


def test_a_body_cut_short_on_backchannel_logout_is_a_400_page(idp):
    response = Client().generic(
        "POST",
        "/ftauth/backchannel-logout/individu/",
        b"",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        CONTENT_LENGTH="500",
        **{"wsgi.input": BrokenStream()},
    )
    assert response.status_code == 400
    assert "illisible" in response.content.decode()


@pytest.mark.parametrize("realm", ["candidat", "individu\x00", "x" * 5000])
def test_an_unknown_realm_in_the_path_is_a_404_everywhere(idp, client, realm):
    from urllib.parse import quote

    sign_in(client, idp)
    segment = quote(realm, safe="")
    assert client.get(f"/ftauth/login/{segment}/").status_code == 404
    assert client.get(f"/ftauth/callback/{segment}/").status_code == 404
    assert client.post(f"/ftauth/backchannel-logout/{segment}/").status_code == 404
    assert client.post(f"/ftauth/account/unlink/{segment}/").status_code == 404


def test_settings_that_cannot_load_are_a_503_not_a_500(client, settings, caplog):
    settings.FTAUTH = {**settings.FTAUTH, "PENDING_LOGIN_TTL": "ten minutes"}
    response = client.get("/ftauth/login/individu/")
    assert response.status_code == 503
    assert "PENDING_LOGIN_TTL" in caplog.text and "manage.py check" in caplog.text


def test_settings_that_cannot_load_leave_the_sites_pages_up(client, fakeop, settings, caplog):
    """A signed-in session due for a check, on a page that is not ftauth's."""
    from tests.lifecycle import age_session, sign_in

    sign_in(client, fakeop, "sub-bad-settings")
    age_session(client)
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": "every so often"}
    response = client.get("/admin/login/")  # a page of the site that needs no FTAUTH value
    assert response.status_code == 200
    assert "CONSENT_CHECK_INTERVAL" in caplog.text


# --- failed sign-ins in the audit trail ----------------------------------------------------


def failures():
    return list(AuditEvent.objects.filter(kind=AuditEvent.Kind.SIGN_IN_FAILED))


def test_a_refused_consent_is_recorded_with_realm_and_reason(client, idp):
    params = start(client)
    response = callback(client, idp, params, code=None, error="access_denied")
    assert response.status_code == 200
    [event] = failures()
    assert (event.realm, event.account, event.user, event.sub) == ("individu", None, None, "")
    assert event.detail == {"reason": "ConsentRefused"}


def test_a_refused_id_token_is_recorded_with_its_rule_and_nothing_sent(client, idp):
    idp.claim_overrides = {"aud": "another-client"}
    params = start(client)
    code = authorize(idp, params)
    response = callback(client, idp, params, code=code)
    assert response.status_code == 400
    [event] = failures()
    assert event.detail == {"reason": "TokenValidationError", "rule": "aud"}
    text = repr(event.detail) + str(event)
    for sent in (code, params["state"], *idp.issued):
        assert sent not in text


def test_the_signed_in_user_is_named_when_linking_fails(client, idp):
    from django.contrib.auth import get_user_model

    me = get_user_model().objects.create_user("me")
    client.force_login(me)
    params = start(client)
    callback(client, idp, params, code=None, error="server_error")
    [event] = failures()
    assert event.user == me and event.detail == {"reason": "AuthorizeUnavailable"}


def test_a_callback_with_an_unknown_or_used_state_records_nothing(client, idp):
    """Anyone can send callbacks: only one that used up a pending sign-in is recorded."""
    assert callback(client, idp, {"state": "made-up"}).status_code == 400
    params = start(client)
    callback(client, idp, params, code=None, error="access_denied")
    for _replay in range(3):
        assert callback(client, idp, params, code=None, error="access_denied").status_code == 400
    assert len(failures()) == 1


def test_a_failure_to_start_a_sign_in_records_nothing(client, idp, monkeypatch):
    from ftauth.core.errors import TransportError
    from ftauth.internal import signin

    def unreachable(*args, **kwargs):
        raise TransportError("France Travail unreachable")

    monkeypatch.setattr(signin, "start", unreachable)
    assert client.get("/ftauth/login/individu/").status_code == 503
    assert failures() == []


def test_a_successful_sign_in_records_no_failure(client, idp):
    _params, response = sign_in(client, idp)
    assert response.status_code == 302
    assert failures() == []
