"""ConsentMiddleware: session data only between checks, one check per interval."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from ftauth.core.errors import ApiError
from ftauth.internal import lifecycle
from ftauth.internal.sessions import SESSION_KEY
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from tests.lifecycle import age_account_check, age_session, give_password, server_side, sign_in

pytestmark = pytest.mark.django_db

PAGE = "/ftauth/consent-withdrawn/"
# A view that never touches the database (Django's set_language, answering a GET with a redirect):
# the queries of a request to it are the middleware's.
QUERYLESS = "/i18n/setlang/"
PROTECTED = "/ftauth/account/"


@pytest.fixture(
    params=[
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.signed_cookies",
    ],
    ids=["cache", "signed_cookies"],
)
def queryless_sessions(request, settings):
    """Engines whose session load needs no query, so a request's queries are the middleware's."""
    settings.SESSION_ENGINE = request.param


def test_no_database_query_between_checks(queryless_sessions, fakeop, django_assert_num_queries):
    client = Client()
    sign_in(client, fakeop, "sub-between")
    requests_before = len(fakeop.requests)
    with django_assert_num_queries(0):
        for _ in range(3):
            assert client.get(QUERYLESS).status_code == 302
    assert len(fakeop.requests) == requests_before


def test_due_session_is_checked_once_then_waits_an_interval(
    queryless_sessions, fakeop, django_assert_max_num_queries
):
    client = Client()
    account = sign_in(client, fakeop, "sub-due")
    age_session(client)
    age_account_check(account)
    # The session's row with its grant and account, then the grant's checked_at,
    # and the session's seen_at.
    with django_assert_max_num_queries(3):
        assert client.get(QUERYLESS).status_code == 302
    assert len(fakeop.requests_to("userinfo")) == 2  # sign-in, then this check
    with django_assert_max_num_queries(0):
        assert client.get(QUERYLESS).status_code == 302
    assert len(fakeop.requests_to("userinfo")) == 2


def test_one_witness_call_per_account_per_interval(fakeop):
    """France Travail's quota grows with accounts, not devices: once one device's
    check confirmed a grant of the account, the account's other devices are not
    asked about again in the interval."""
    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-share")
    laptop_grant = fakeop.grant_of("sub-share")
    sign_in(phone, fakeop, "sub-share")
    calls = len(fakeop.requests_to("userinfo"))
    for _ in range(2):
        age_account_check(account)
        age_session(laptop)
        age_session(phone)
        assert laptop.get(PROTECTED).status_code == 200
        assert phone.get(PROTECTED).status_code == 200
    tokens = [r["headers"]["Authorization"] for r in fakeop.requests_to("userinfo")[calls:]]
    # One call per interval for the account, with the token of the device that asked.
    assert len(tokens) == 2 and len(set(tokens)) == 1
    assert fakeop.grant_with_token(tokens[0].removeprefix("Bearer ")) is laptop_grant


def test_a_refresh_confirms_the_account_for_its_other_devices(fakeop):
    """A refresh is France Travail vouching for the grant: the account's other
    devices are not asked about in the interval either."""
    from ftauth import api

    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-refreshed")
    sign_in(phone, fakeop, "sub-refreshed")
    age_account_check(account)
    laptop_row = AccountSession.objects.get(sid=laptop.session["_ftauth"]["sid"])
    Grant.objects.filter(pk=laptop_row.grant_id).update(expires_at=timezone.now())
    request = RequestFactory().get("/")
    request.user, request.session = account.user, laptop.session
    with pytest.raises(ApiError):  # another API (fakeop has none): its answer, a 404
        api.for_request(request, "individu").get("peconnect-statut/v1/statut")
    assert len(fakeop.refresh_requests()) == 1
    calls = len(fakeop.requests_to("userinfo"))
    age_session(phone)
    assert phone.get(PROTECTED).status_code == 200
    assert len(fakeop.requests_to("userinfo")) == calls


def test_a_device_whose_grant_alone_is_refused_is_found_at_its_own_next_call(fakeop, revocations):
    """The account's check with the phone's grant says nothing of the laptop's: the
    laptop is found out when its own token is used, and only the laptop ends."""
    from ftauth import api, consent

    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-one-refused")
    laptop_grant = fakeop.grant_of("sub-one-refused")
    sign_in(phone, fakeop, "sub-one-refused")
    fakeop.revoke(laptop_grant)  # e.g. France Travail ended the laptop's session
    age_account_check(account)
    age_session(phone)
    assert phone.get(PROTECTED).status_code == 200  # the account's check, with the phone's
    age_session(laptop)
    assert laptop.get(PROTECTED).status_code == 200  # the account was confirmed just now
    request = RequestFactory().get("/")
    request.user, request.session = account.user, laptop.session
    with pytest.raises(consent.GrantEnded):
        api.for_request(request, "individu").get("peconnect-individu/v1/userinfo")
    assert laptop.get(PROTECTED).status_code == 302
    assert phone.get(PROTECTED).status_code == 200
    assert revocations == []
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None


def test_a_grant_judged_during_the_view_is_not_asked_about_again_after_it(fakeop, revocations):
    """The laptop's page finds its grant refused (its own call): the check due after
    the view has nothing left to ask."""
    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-judged")
    laptop_grant = fakeop.grant_of("sub-judged")
    sign_in(phone, fakeop, "sub-judged")
    fakeop.revoke(laptop_grant)
    age_account_check(account)
    age_session(laptop)
    calls = len(fakeop.requests_to("userinfo"))
    with override_settings(ROOT_URLCONF="tests.evidence_urls"):
        page = laptop.get("/t/call/individu/peconnect-individu/v1/userinfo")
    assert page.json() == {"error": "GrantEnded"}
    # The laptop's call (401), the probe of the phone's grant (200): nothing after.
    assert len(fakeop.requests_to("userinfo")) == calls + 2
    assert revocations == []


def test_interval_setting_is_honoured(fakeop, settings):
    client = Client()
    account = sign_in(client, fakeop, "sub-interval")
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    calls = len(fakeop.requests_to("userinfo"))
    age_account_check(account)
    client.get(PROTECTED)
    age_account_check(account)
    client.get(PROTECTED)
    assert len(fakeop.requests_to("userinfo")) == calls + 2


def test_transient_failure_keeps_the_session(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-transient")
    age_session(client)
    age_account_check(account)
    fakeop.fail_next("userinfo", 503)
    assert client.get(PROTECTED).status_code == 200
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}, {"HTTP_ACCEPT": "application/json"}],
    ids=["x-requested-with", "accept-json"],
)
def test_xhr_gets_a_401_json_after_a_withdrawal(fakeop, headers):
    client = Client()
    account = sign_in(client, fakeop, "sub-xhr")
    fakeop.withdraw("sub-xhr")
    age_session(client)
    age_account_check(account)
    response = client.get(PROTECTED, **headers)
    assert response.status_code == 401
    assert response.json() == {"error": "consent_withdrawn", "redirect": PAGE}
    assert response["Cache-Control"] == "no-store"
    assert client.get(PROTECTED).status_code == 302  # signed out


def test_browser_gets_the_withdrawn_page(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-page")
    fakeop.withdraw("sub-page")
    age_session(client)
    age_account_check(account)
    response = client.get(PROTECTED, follow=True)
    assert response.redirect_chain[0] == (PAGE, 302)
    html = response.content.decode()
    assert "<h1" in html and "Votre consentement a été retiré" in html
    assert 'data-ftauth-page="consent-withdrawn"' in html


def test_sessions_ended_without_withdrawal_go_to_the_logout_page(session_engine, fakeop):
    """E.g. the admin ended the sessions: signed out, sent to LOGOUT_REDIRECT_URL."""
    client = Client()
    account = sign_in(client, fakeop, "sub-ended")
    lifecycle.end_grants(account, None, kind=AuditEvent.Kind.SESSIONS_ENDED)
    if not server_side(session_engine):
        age_session(client)  # a signed cookie is noticed at its next check
    response = client.get(PROTECTED)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get(PROTECTED).status_code == 302
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None


def test_unlinked_account_ends_the_other_sessions(fakeop):
    laptop, phone = Client(), Client()
    sign_in(laptop, fakeop, "sub-unlink")
    sign_in(phone, fakeop, "sub-unlink")
    give_password(laptop, phone)  # another way in: the identity may be unlinked
    assert laptop.post("/ftauth/account/unlink/individu/").status_code == 302
    assert laptop.get(PROTECTED).status_code == 200  # the user stays
    assert phone.get(PROTECTED)["Location"] == "/"


def test_sessions_not_signed_in_through_ftauth_are_left_alone(settings, django_assert_num_queries):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    user = get_user_model().objects.create_user("local", password="pw-local-1")
    client = Client()
    client.force_login(user)
    with django_assert_num_queries(0):
        assert client.get(QUERYLESS).status_code == 302
    assert SESSION_KEY not in client.session


def test_malformed_marker_signs_the_session_out(fakeop):
    client = Client()
    sign_in(client, fakeop, "sub-malformed")
    session = client.session
    session[SESSION_KEY] = {"account": "x", "checked_at": "never"}
    session.save()
    response = client.get(PROTECTED)
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_device_whose_grant_was_ended_is_signed_out_though_the_account_was_confirmed(
    settings, fakeop, revocations
):
    """The account's recent confirmation (the phone's probe) spares the laptop a
    call, never the end of its own refused grant: its next due request signs it
    out. With signed cookies the laptop's session cannot be deleted: the registry
    row forgotten with the grant is all that ends it."""
    from ftauth import api, consent

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-ended-due")
    laptop_grant = fakeop.grant_of("sub-ended-due")
    sign_in(phone, fakeop, "sub-ended-due")
    fakeop.revoke(laptop_grant)
    request = RequestFactory().get("/")
    request.user, request.session = account.user, laptop.session
    with pytest.raises(consent.GrantEnded):  # the laptop refused, the phone's probe fine
        api.for_request(request, "individu").get("peconnect-individu/v1/userinfo")
    assert Grant.objects.filter(account=account).count() == 1  # the phone's, just confirmed
    age_session(laptop)
    assert laptop.get(PROTECTED).status_code == 302
    assert phone.get(PROTECTED).status_code == 200
    assert revocations == []
