"""No token in logs, exception messages or ``repr``, whatever happens to it."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client

from ftauth import consent, crypto, vault
from ftauth.core.errors import FTAuthError
from ftauth.models import AccountSession, Grant, LinkedAccount
from tests.lifecycle import age_account_check, age_session, grant_of, linked_with_tokens, sign_in

pytestmark = pytest.mark.django_db


def test_no_token_in_logs_or_errors_through_the_whole_lifecycle(fakeop, settings, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's request lines included
    errors: list[str] = []
    reprs: list[str] = []

    browser = Client()
    account = sign_in(browser, fakeop, "sub-secrecy")
    token_set = Grant.objects.get(account=account)
    reprs += [repr(token_set), str(token_set), repr(account), repr(AccountSession.objects.first())]

    # A refresh, a 401 then refresh, transient failures.
    vault.refresh(grant_of(account), force=True)
    fakeop.fail_next("userinfo", 401)
    consent.check_grant(grant_of(account))
    for kind, status in (("userinfo", 503), ("token", 500), ("token", 429)):
        fakeop.fail_next(kind, status, {"Retry-After": "1"})
        try:
            vault.refresh(grant_of(account), force=True)
            consent.check_grant(grant_of(account))
        except FTAuthError as exc:
            errors += [str(exc), repr(exc)]

    # A wrong key.
    good = settings.FTAUTH["TOKEN_KEYS"]
    settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": [Fernet.generate_key().decode()]}
    try:
        vault.access_token(grant_of(account))
    except crypto.TokenDecryptionError as exc:
        errors += [str(exc), repr(exc)]
    settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": good}

    # A refused logout token, then a sign-out, another sign-in and a withdrawal.
    Client().post("/ftauth/backchannel-logout/individu/", {"logout_token": fakeop.issued[-1]})
    browser.post("/ftauth/logout/")
    sign_in(browser, fakeop, "sub-secrecy")
    fakeop.withdraw("sub-secrecy")
    age_session(browser)
    age_account_check(account)
    browser.get("/ftauth/account/")
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is not None
    other = linked_with_tokens(fakeop)
    call_command("ftauth_rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    reprs.append(repr(Grant.objects.get(account=other)))

    assert len(fakeop.issued) >= 12
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {record.args!r}"
        for record in caplog.records
    )
    # Something was logged, or this test proves nothing.
    assert "back-channel logout token refused" in logged and "POST /ft/" in logged
    for token in fakeop.issued:
        # A JWT's header is not secret; its claims and signature are.
        for part in token.split(".")[1:] if token.count(".") == 2 else [token]:
            assert part not in logged
        assert token not in "\n".join(errors)
        assert token not in "\n".join(reprs)


class _BrokenAdapter:
    """A project's adapter with a bug, raised after the code was exchanged."""

    def __new__(cls):
        from ftauth.adapter import AccountAdapter

        class Broken(AccountAdapter):
            def create_user(self, request, identity):
                raise RuntimeError("a bug in the project's adapter")

        return Broken()


def test_the_debug_page_of_a_crash_in_the_callback_lists_no_secret(fakeop, settings):
    """With DEBUG on, Django's technical 500 page shows the query string, the POST body,
    the Referer and every frame's variables: none of the sign-in's secrets may be there."""
    from urllib.parse import parse_qs, urlsplit

    from ftauth.internal.signin import derive_secret
    from tests.fakeop import CLIENT_SECRET

    settings.DEBUG = True
    settings.FTAUTH = {**settings.FTAUTH, "ACCOUNT_ADAPTER": f"{__name__}._BrokenAdapter"}
    browser = Client(raise_request_exception=False)
    start = browser.get("/ftauth/login/individu/")
    params = {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}
    state = params["state"]
    code = fakeop.authorize("sub-debug-page", "individu", nonce=params["nonce"])
    page = browser.get(
        "/ftauth/callback/individu/",
        {"code": code, "state": state, "iss": fakeop.issuer("individu")},
        HTTP_REFERER=f"http://testserver/sandbox/consent?nonce={params['nonce']}",
    )
    text = page.content.decode()
    assert page.status_code == 500
    assert "a bug in the project&#x27;s adapter" in text  # the developer's page, still useful
    assert fakeop.issued, "the code was exchanged before the adapter ran"
    secrets = {
        "code": code,
        "state": state,
        "nonce": params["nonce"],
        "verifier": derive_secret(state, "pkce"),
        "client secret": CLIENT_SECRET,
        **{f"token {i}": token for i, token in enumerate(fakeop.issued)},
    }
    shown = [name for name, value in secrets.items() if value in text]
    assert not shown, f"the DEBUG page shows: {shown}"
