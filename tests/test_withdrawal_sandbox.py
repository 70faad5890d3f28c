"""The issue's scenario end to end over real HTTP, against the sandbox, per session engine.

A persona signs in from two browsers (scripted, following redirects and
posting the sandbox's forms), then withdraws consent on the sandbox's
"Mes consentements" side: the sandbox revokes the tokens and, as France
Travail documents, sends nothing; each browser's next check (here due at
once) finds every grant refused and shows the withdrawn page.
Each engine needs its own live server: a WSGI handler keeps the session
engine it started with.
"""

from __future__ import annotations

import pytest
from pytest_django.live_server_helper import LiveServer

from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from ftauth.sandbox.consents import withdraw_consent
from ftauth.sandbox.scripted import ScriptedUser, forms_of
from tests.conftest import sandbox_ftauth_settings

pytestmark = pytest.mark.django_db(transaction=True)

PERSONA = "sandbox-individu-camille"
WITHDRAWN = "/ftauth/consent-withdrawn/"


@pytest.fixture
def engine_sandbox(session_engine, settings):
    """A live server started after the session engine was chosen, with the sandbox on it."""
    server = LiveServer("127.0.0.1:0")
    settings.FTAUTH = sandbox_ftauth_settings(server.url)
    yield server.url
    server.stop()


def account_page(user: ScriptedUser):
    return user.get("/ftauth/account/", allow_redirects=False)


def test_withdrawal_in_the_sandbox_ends_both_sessions(
    session_engine, engine_sandbox, settings, revocations
):
    laptop, phone = ScriptedUser(engine_sandbox), ScriptedUser(engine_sandbox)
    for user in (laptop, phone):
        page = user.sign_in("individu", persona=PERSONA, next_url="/ftauth/account/")
        assert page.status_code == 200 and page.url.endswith("/ftauth/account/"), page.text[:300]
    account = LinkedAccount.objects.get(sub=PERSONA)
    assert AccountSession.objects.filter(account=account).count() == 2

    withdrawal = withdraw_consent(PERSONA, settings.FTAUTH["CLIENT_ID"])
    assert withdrawal.withdrawn and withdrawal.revoked_tokens >= 2
    # Nothing pushed: the grants are still there until a check finds them refused.
    assert Grant.objects.filter(account=account).count() == 2
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    for user in (laptop, phone):
        response = account_page(user)
        assert response.status_code == 302
        assert response.headers["Location"] == WITHDRAWN
        page = user.get(WITHDRAWN)
        assert "Votre consentement a été retiré" in page.text
        assert account_page(user).status_code == 302  # signed out for good
    # The laptop's check found its grant refused, probed the phone's: refused too.
    assert not Grant.objects.filter(account=account).exists()
    assert not AccountSession.objects.filter(account=account).exists()
    assert revocations == ["every grant refused (invalid_grant on refresh)"]
    assert AuditEvent.objects.filter(account=account, kind="consent_revoked").count() == 1
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is not None


def test_sign_out_goes_through_the_sandbox_end_session_and_back(sandbox):
    user = ScriptedUser(sandbox)
    page = user.sign_in("individu", persona=PERSONA, next_url="/ftauth/account/")
    assert page.url.endswith("/ftauth/account/")
    # The sign-out form is on the account page (CSRF token included).
    logout_form = next(f for f in forms_of(page) if f.action.endswith("/ftauth/logout/"))
    response = user.http.post(
        f"{sandbox}/ftauth/logout/",
        data=logout_form.fields,
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    assert "/compte/deconnexion?" in response.headers["Location"]
    assert "id_token_hint=" in response.headers["Location"]
    back = user.get(response.headers["Location"])
    assert back.status_code == 200 and back.url == f"{sandbox}/"
    assert account_page(user).status_code == 302
