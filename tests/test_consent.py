"""Consent withdrawal: detected with the user's token, acted on everywhere.

France Travail here is ``tests.fakeop`` over real HTTP: a withdrawal makes the
persona's tokens fail (401 on userinfo, ``invalid_grant`` on refresh).
"""

from __future__ import annotations

import pytest
from django.test import Client

from ftauth import api, consent
from ftauth.consent import ConsentCheck
from ftauth.core.errors import ConsentWithdrawn
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from ftauth.signals import consent_revoked
from tests.lifecycle import (
    age_account_check,
    age_session,
    grant_of,
    linked_with_tokens,
    make_account,
    server_side,
    sign_in,
    store_tokens,
)

pytestmark = pytest.mark.django_db

WITHDRAWN_PAGE = "/ftauth/consent-withdrawn/"


@pytest.fixture
def revocations():
    received = []

    def receiver(sender, account, reason, **kwargs):
        received.append((account.pk, reason))

    consent_revoked.connect(receiver)
    yield received
    consent_revoked.disconnect(receiver)


def signed_in(client: Client) -> bool:
    return client.get("/ftauth/account/").status_code == 200


# --- the scenario of the issue, on every session engine -------------------------------------


def test_withdrawal_while_signed_in_from_two_clients_ends_both(session_engine, fakeop, revocations):
    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-two-clients")
    assert sign_in(phone, fakeop, "sub-two-clients") == account
    assert signed_in(laptop) and signed_in(phone)
    assert AccountSession.objects.filter(account=account).count() == 2

    fakeop.withdraw("sub-two-clients")
    # Time passes: the laptop's next request is due for a consent check.
    age_session(laptop)
    age_account_check(account)
    response = laptop.get("/ftauth/account/")
    assert response.status_code == 302 and response["Location"] == WITHDRAWN_PAGE
    page = laptop.get(WITHDRAWN_PAGE)
    assert "Votre consentement a été retiré" in page.content.decode()
    assert not signed_in(laptop)

    # Tokens forgotten, sessions unregistered, audit and signal recorded once.
    assert not Grant.objects.filter(account=account).exists()
    assert not AccountSession.objects.filter(account=account).exists()
    kinds = list(AuditEvent.objects.filter(account=account).values_list("kind", flat=True))
    assert kinds.count(AuditEvent.Kind.CONSENT_REVOKED) == 1
    # The laptop's grant was refused at its check, the phone's at the probe made
    # before deciding: every grant refused, the account is withdrawn.
    assert AuditEvent.Kind.GRANT_ENDED not in kinds
    assert revocations == [(account.pk, "every grant refused (invalid_grant on refresh)")]
    account.refresh_from_db()
    assert account.consent_withdrawn_at is not None

    userinfo_calls = len(fakeop.requests_to("userinfo"))
    if server_side(session_engine):
        # Ended on the server at once: the phone's very next request shows the page.
        response = phone.get("/ftauth/account/")
    else:
        # A signed cookie cannot be deleted: the phone still looks signed in until
        # its own next check, which then needs no call to France Travail.
        assert signed_in(phone)
        age_session(phone)
        response = phone.get("/ftauth/account/")
    assert response.status_code == 302 and response["Location"] == WITHDRAWN_PAGE
    assert not signed_in(phone)
    assert len(fakeop.requests_to("userinfo")) == userinfo_calls
    assert revocations == [(account.pk, "every grant refused (invalid_grant on refresh)")]


# --- detection rules --------------------------------------------------------------------------


def test_valid_consent_is_confirmed_with_userinfo(fakeop):
    account = linked_with_tokens(fakeop)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.VALID
    assert len(fakeop.requests_to("userinfo")) == 1
    assert not fakeop.refresh_requests()
    assert Grant.objects.get(account=account).checked_at is not None


def test_a_single_401_is_not_a_withdrawal_when_the_refresh_works(fakeop, revocations):
    account = linked_with_tokens(fakeop)
    fakeop.fail_next("userinfo", 401)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.VALID
    assert len(fakeop.refresh_requests()) == 1
    assert Grant.objects.filter(account=account).exists()
    assert revocations == []


def test_401_then_invalid_grant_is_a_withdrawal(fakeop, revocations):
    account = linked_with_tokens(fakeop)
    fakeop.withdraw(account.sub)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.WITHDRAWN
    assert len(fakeop.refresh_requests()) == 1
    assert not Grant.objects.filter(account=account).exists()
    assert revocations == [(account.pk, "every grant refused (invalid_grant on refresh)")]


def test_a_second_401_with_a_fresh_token_is_a_withdrawal(fakeop, revocations):
    account = linked_with_tokens(fakeop)
    fakeop.fail_next("userinfo", 401)
    fakeop.fail_next("userinfo", 401)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.WITHDRAWN
    assert len(fakeop.refresh_requests()) == 1
    reason = "every grant refused (userinfo 401 on a freshly refreshed access token)"
    assert revocations == [(account.pk, reason)]


@pytest.mark.parametrize(
    ("status", "headers"),
    # A 429 is retried after Retry-After like any API call; one past the cap is not.
    [(500, {}), (502, {}), (503, {}), (429, {"Retry-After": "120"})],
    ids=["500", "502", "503", "429"],
)
def test_transient_userinfo_failures_are_not_withdrawals(fakeop, revocations, status, headers):
    account = linked_with_tokens(fakeop)
    fakeop.fail_next("userinfo", status, headers)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.UNKNOWN
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None
    assert Grant.objects.filter(account=account).exists()
    assert revocations == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_refresh_failures_after_a_401_are_not_withdrawals(fakeop, revocations, status):
    account = linked_with_tokens(fakeop)
    fakeop.fail_next("userinfo", 401)
    fakeop.fail_next("token", status, {"Retry-After": "2"} if status == 429 else {})
    assert consent.check_grant(grant_of(account)) is ConsentCheck.UNKNOWN
    assert Grant.objects.filter(account=account).exists()
    assert revocations == []


def test_a_timeout_is_not_a_withdrawal(fakeop, settings, revocations):
    settings.FTAUTH = {**settings.FTAUTH, "HTTP_READ_TIMEOUT": 0.3}
    account = linked_with_tokens(fakeop)
    fakeop.userinfo_delay = 1.0
    assert consent.check_grant(grant_of(account)) is ConsentCheck.UNKNOWN
    assert Grant.objects.filter(account=account).exists()
    assert revocations == []


def test_realm_without_userinfo_is_checked_with_a_refresh(fakeop, revocations):
    account = linked_with_tokens(fakeop, "partenaire")
    assert consent.check_grant(grant_of(account)) is ConsentCheck.VALID
    assert len(fakeop.refresh_requests()) == 1 and not fakeop.requests_to("userinfo")
    fakeop.withdraw(account.sub)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.WITHDRAWN
    assert revocations == [(account.pk, "every grant refused (invalid_grant on refresh)")]


def test_no_tokens_is_not_a_withdrawal(fakeop, revocations):
    # Expired, and no refresh token (France Travail may issue none): nothing to ask with.
    account = make_account()
    store_tokens(account, refresh=False, expires_in=-5)
    assert consent.check_grant(grant_of(account)) is ConsentCheck.NO_TOKENS
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None


# --- acting on a withdrawal -------------------------------------------------------------------


def test_withdraw_twice_signals_and_audits_once(fakeop, revocations):
    account = linked_with_tokens(fakeop)
    assert consent.withdraw(account, "admin") is True
    assert consent.withdraw(account, "admin") is False
    assert revocations == [(account.pk, "admin")]
    assert (
        AuditEvent.objects.filter(account=account, kind=AuditEvent.Kind.CONSENT_REVOKED).count()
        == 1
    )


def test_a_failing_receiver_does_not_stop_the_withdrawal(fakeop, revocations):
    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    consent_revoked.connect(broken)
    try:
        account = linked_with_tokens(fakeop)
        assert consent.withdraw(account, "admin") is True
    finally:
        consent_revoked.disconnect(broken)
    assert revocations == [(account.pk, "admin")]
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is not None


def test_using_a_withdrawn_token_is_detected_on_use(fakeop, revocations):
    """An API call refreshes an expiring token: invalid_grant there, on the only grant,
    is a withdrawal."""
    account = linked_with_tokens(fakeop)
    Grant.objects.filter(account=account).update(expires_at="2000-01-01T00:00:00Z")
    fakeop.withdraw(account.sub)
    with pytest.raises(ConsentWithdrawn):
        api.for_user(account.user, "individu").get("peconnect-individu/v1/userinfo")
    assert revocations == [(account.pk, "every grant refused (invalid_grant on refresh)")]
    assert not Grant.objects.filter(account=account).exists()
    assert revocations == [(account.pk, "every grant refused (invalid_grant on refresh)")]
