"""A token key removed or changed too early: every place says so, nothing is lost.

operations.md promises that the user is asked to sign in again and that the ciphertext
is kept (putting the key back recovers it); the operator learns it from ``check`` and
``ftauth_doctor``, not from users.
"""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from ftauth import consent, crypto, vault
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from tests.lifecycle import age_session, linked_with_tokens, sign_in

pytestmark = pytest.mark.django_db

ACCOUNT = "/ftauth/account/"


@pytest.fixture
def new_key(settings):
    """The site restarted with another key (the old one lost or not kept)."""
    old = settings.FTAUTH["TOKEN_KEYS"]

    def change():
        settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": [Fernet.generate_key().decode()]}

    def put_back_old_key_last():
        settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": [*settings.FTAUTH["TOKEN_KEYS"], *old]}

    change.put_back_old_key_last = put_back_old_key_last
    return change


def test_an_unreadable_grant_means_sign_in_again_and_keeps_its_ciphertext(fakeop, new_key):
    account = linked_with_tokens(fakeop)
    grant = Grant.objects.get(account=account)
    new_key()
    with pytest.raises(vault.TokensUnreadable) as excinfo:
        vault.access_token(grant)
    # What callers already catch: "no usable token, sign in again", and the key error.
    assert isinstance(excinfo.value, vault.TokensUnavailable)
    assert isinstance(excinfo.value, crypto.TokenDecryptionError)
    assert "TOKEN_KEYS" in str(excinfo.value)
    assert vault.status_of(grant) is vault.TokenStatus.UNREADABLE
    stored = Grant.objects.get(pk=grant.pk)
    assert stored.access_token_ciphertext == grant.access_token_ciphertext
    new_key.put_back_old_key_last()
    assert vault.status_of(stored) is vault.TokenStatus.VALID
    assert vault.access_token(stored).startswith("AT-")


def test_the_account_page_does_not_call_unreadable_tokens_valid(fakeop, new_key):
    client = Client()
    sign_in(client, fakeop, "sub-key-lost")
    new_key()
    html = client.get(ACCOUNT).content.decode()
    assert 'data-status="unreadable"' in html and "illisibles" in html
    assert "valides" not in html
    assert 'data-field="sign-in-again"' in html
    assert 'href="/ftauth/login/individu/?next=%2Fftauth%2Faccount%2F"' in html


def test_the_demo_asks_to_sign_in_again_instead_of_try_later(fakeop, new_key, monkeypatch):
    monkeypatch.setattr("demo_site.views.USER_DATA_TTL", 0)
    client = Client()
    sign_in(client, fakeop, "sub-key-lost-demo")
    new_key()
    html = client.get("/profile/").content.decode()
    assert "reconnectez-vous" in html
    assert "indisponible" not in html and "Réessayez plus tard" not in html
    assert 'data-field="sign-in-again"' in html and 'data-ftauth-realm="individu"' in html
    assert 'data-status="unreadable"' in html


def test_signing_in_again_gives_a_grant_the_keys_read(fakeop, new_key):
    client = Client()
    account = sign_in(client, fakeop, "sub-key-lost-again")
    new_key()
    assert sign_in(client, fakeop, "sub-key-lost-again") == account
    html = client.get(ACCOUNT).content.decode()
    assert 'data-status="valid"' in html
    # The unreadable grant is still there, for the key to come back.
    assert Grant.objects.filter(account=account).count() == 2


def test_a_consent_check_of_an_unreadable_grant_proves_nothing(fakeop, new_key):
    account = linked_with_tokens(fakeop)
    grant = Grant.objects.get(account=account)
    grant.account = account
    new_key()
    assert consent.check_grant(grant) is consent.ConsentCheck.UNKNOWN
    assert Grant.objects.filter(pk=grant.pk).exists()
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None


def test_the_doctor_says_it(fakeop, new_key, settings):
    linked_with_tokens(fakeop)
    new_key()
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("ftauth_doctor", "--site", "http://127.0.0.1:8000", stdout=out)
    errors = [line for line in out.getvalue().splitlines() if line.startswith("error")]
    assert any("settings ftauth.E022" in line and "cannot be decrypted" in line for line in errors)


def test_a_lost_key_forgotten_on_purpose_ends_those_grants_only(fakeop, new_key):
    lost, kept = Client(), Client()
    lost_account = sign_in(lost, fakeop, "sub-key-lost-for-good")
    new_key()
    kept_account = sign_in(kept, fakeop, "sub-signed-in-under-the-new-key")
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("ftauth_rotate_keys", stdout=io.StringIO())
    assert Grant.objects.filter(account=lost_account).exists()  # untouched without the flag
    out = io.StringIO()
    call_command("ftauth_rotate_keys", "--forget-unreadable", stdout=out)
    assert "1 grant(s) no key decrypts ended" in out.getvalue()
    assert not Grant.objects.filter(account=lost_account).exists()
    assert not AccountSession.objects.filter(account=lost_account).exists()
    assert Grant.objects.filter(account=kept_account).exists()
    assert AuditEvent.objects.filter(account=lost_account, kind="grant_ended").exists()
    # That device is signed out at its next check; the other stays.
    age_session(lost)
    age_session(kept)
    assert lost.get(ACCOUNT).status_code == 302
    assert kept.get(ACCOUNT).status_code == 200
