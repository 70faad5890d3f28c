"""Management commands: key rotation, bulk consent check, purge."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from ftauth import crypto, vault
from ftauth.management.commands import ftauth_check_consent
from ftauth.models import (
    AccountSession,
    AuditEvent,
    ConsumedLogoutToken,
    Grant,
    LinkedAccount,
    PendingAuthorization,
)
from tests.lifecycle import grant_of, linked_with_tokens, make_account, sign_in, store_tokens

pytestmark = pytest.mark.django_db


def with_keys(settings, keys):
    settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": keys}


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


# --- ftauth_rotate_keys -----------------------------------------------------------------------


def test_rotation_with_tokens_in_place(fakeop, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_keys(settings, [old])
    account = linked_with_tokens(fakeop)
    browser = Client()
    sign_in(browser, fakeop, account.sub)  # a registered session key, encrypted too
    access = vault.access_token(grant_of(account))
    id_token = vault.get_id_token(grant_of(account))

    with_keys(settings, [new, old])
    output = run("ftauth_rotate_keys")
    assert "re-encrypted" in output

    with_keys(settings, [new])  # the old key is gone: everything still reads
    assert vault.access_token(grant_of(account)) == access
    assert vault.get_id_token(grant_of(account)) == id_token
    for grant in Grant.objects.filter(account=account):  # both devices' grants
        assert crypto.decrypt(grant.refresh_token_ciphertext)
    for row in AccountSession.objects.all():
        assert crypto.decrypt(row.session_key_ciphertext)
    assert AuditEvent.objects.filter(kind="keys_rotated").count() == 1
    assert browser.get("/ftauth/account/").status_code == 200


def test_rotation_dry_run_changes_nothing(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_keys(settings, [old])
    store_tokens(make_account())
    before = list(Grant.objects.values_list("access_token_ciphertext", flat=True))
    with_keys(settings, [new, old])
    assert "would be re-encrypted" in run("ftauth_rotate_keys", "--dry-run")
    assert list(Grant.objects.values_list("access_token_ciphertext", flat=True)) == before


def test_rotation_leaves_unreadable_rows_untouched_and_fails(settings):
    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    with_keys(settings, [lost])
    orphan = make_account()
    store_tokens(orphan)
    orphan_ciphertext = Grant.objects.get(account=orphan).access_token_ciphertext
    with_keys(settings, [old])
    readable = make_account()
    store_tokens(readable, suffix="readable")
    with_keys(settings, [new, old])  # the "lost" key is missing
    with pytest.raises(CommandError, match="1 row"):
        run("ftauth_rotate_keys")
    assert Grant.objects.get(account=orphan).access_token_ciphertext == orphan_ciphertext
    with_keys(settings, [new])
    assert crypto.decrypt(Grant.objects.get(account=readable).access_token_ciphertext)


def test_rotation_without_keys_is_a_clear_error(settings):
    with_keys(settings, [])
    with pytest.raises(CommandError, match="TOKEN_KEYS"):
        run("ftauth_rotate_keys")


# --- ftauth_check_consent ---------------------------------------------------------------------


@pytest.fixture
def fake_time(monkeypatch):
    """A clock that only moves when the command sleeps: the waits are exact."""
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        now[0] += seconds

    monkeypatch.setattr(ftauth_check_consent.Command, "sleep", staticmethod(sleep))
    monkeypatch.setattr(ftauth_check_consent.Command, "clock", staticmethod(lambda: now[0]))
    return waits


def test_bulk_check_spaces_its_calls_and_acts_on_withdrawals(fakeop, fake_time):
    accounts = [linked_with_tokens(fakeop) for _ in range(3)]
    fakeop.withdraw(accounts[1].sub)
    output = run("ftauth_check_consent", "--rate", "2", "--older-than", "0")
    assert fake_time == [0.5, 0.5]
    assert "3 account(s) checked: valid 2, ended 0, withdrawn 1, unknown 0, no_tokens 0" in output
    assert LinkedAccount.objects.get(pk=accounts[1].pk).consent_withdrawn_at is not None
    assert not Grant.objects.filter(account=accounts[1]).exists()


def test_bulk_check_honours_retry_after(fakeop, monkeypatch):
    """A check is a background call: it does not wait in the API client (a page or a
    sign-in may need the quota), the command waits out Retry-After and tries again."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)  # the shared schedule is paused for real

    monkeypatch.setattr(ftauth_check_consent.Command, "sleep", staticmethod(sleep))
    linked_with_tokens(fakeop)
    fakeop.fail_next("userinfo", 429, {"Retry-After": "1"})
    output = run("ftauth_check_consent", "--older-than", "0")
    assert len(fakeop.requests_to("userinfo")) == 2
    assert waits and waits[0] >= 1.0  # Retry-After, in full
    assert "valid 1" in output


def test_bulk_check_makes_one_call_per_account(fakeop, fake_time):
    """France Travail's quota grows with accounts, not devices: an account signed in
    on two devices is checked once, with its latest grant."""
    from tests.lifecycle import add_grant

    account = linked_with_tokens(fakeop)
    latest = add_grant(fakeop, account)
    output = run("ftauth_check_consent", "--older-than", "0")
    assert "1 account(s) checked: valid 1" in output
    (used,) = fakeop.requests_to("userinfo")
    token = used["headers"]["Authorization"].removeprefix("Bearer ")
    assert fakeop.grant_with_token(token) is fakeop.grant_of(account.sub)
    assert Grant.objects.get(pk=latest.pk).checked_at is not None
    # Checked moments ago: the account is not asked about again.
    assert "0 account(s) checked" in run("ftauth_check_consent")


def test_bulk_check_skips_recently_checked_and_withdrawn_accounts(fakeop, fake_time):
    linked_with_tokens(fakeop)  # checked at sign-in, moments ago
    withdrawn = linked_with_tokens(fakeop)
    LinkedAccount.objects.filter(pk=withdrawn.pk).update(consent_withdrawn_at=timezone.now())
    assert "0 account(s) checked" in run("ftauth_check_consent")
    assert not fakeop.requests_to("userinfo")


def test_bulk_check_transient_failures_are_not_withdrawals(fakeop, fake_time):
    account = linked_with_tokens(fakeop)
    fakeop.fail_next("userinfo", 503)
    assert "unknown 1" in run("ftauth_check_consent", "--older-than", "0")
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None


# --- ftauth_purge -------------------------------------------------------------------------------


def test_purge(fakeop, settings):
    now = timezone.now()
    settings.FTAUTH = {**settings.FTAUTH, "AUDIT_RETENTION_DAYS": 30}

    def pending(expires_at, state):
        return PendingAuthorization.objects.create(
            state_hash=state,
            realm="individu",
            nonce="n",
            code_verifier="v",
            redirect_uri="http://testserver/ftauth/callback/individu/",
            expires_at=expires_at,
        )

    expired_pending, live_pending = (
        pending(now - timedelta(minutes=1), "a"),
        pending(now + timedelta(minutes=5), "b"),
    )
    old_jti = ConsumedLogoutToken.objects.create(
        jti="old", issuer="i", expires_at=now - timedelta(seconds=1)
    )
    live_jti = ConsumedLogoutToken.objects.create(
        jti="live", issuer="i", expires_at=now + timedelta(minutes=5)
    )
    old_event = AuditEvent.objects.create(kind="signed_in", created_at=now - timedelta(days=31))
    recent_event = AuditEvent.objects.create(kind="signed_in", created_at=now - timedelta(days=29))
    alive, gone, stale = Client(), Client(), Client()
    for client, sub in ((alive, "sub-alive"), (gone, "sub-gone"), (stale, "sub-stale")):
        sign_in(client, fakeop, sub)
    gone.session.delete()  # the store forgot it (expired, cleared)
    AccountSession.objects.filter(account__sub="sub-stale").update(
        seen_at=now - timedelta(seconds=settings.SESSION_COOKIE_AGE + 1)
    )

    output = run("ftauth_purge")

    assert "dead sessions: 2" in output
    assert not PendingAuthorization.objects.filter(pk=expired_pending.pk).exists()
    assert PendingAuthorization.objects.filter(pk=live_pending.pk).exists()
    assert not ConsumedLogoutToken.objects.filter(pk=old_jti.pk).exists()
    assert ConsumedLogoutToken.objects.filter(pk=live_jti.pk).exists()
    assert not AuditEvent.objects.filter(pk=old_event.pk).exists()
    assert AuditEvent.objects.filter(pk=recent_event.pk).exists()
    assert set(AccountSession.objects.values_list("account__sub", flat=True)) == {"sub-alive"}


@pytest.mark.parametrize(
    ("first_refreshed", "latest"),
    [(-60, "second"), (30, "first")],
    ids=["signed-in-after-the-refresh", "refreshed-after-the-sign-in"],
)
def test_purge_keeps_the_accounts_latest_grant(settings, first_refreshed, latest):
    """Of an account's grants past any session's age and without sessions, all go but
    the latest (``Grant.objects.latest_first``), which jobs use."""
    account = make_account()
    # An hour before the oldest a session can be: every grant here is stale.
    long_ago = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 3600)
    first, second = store_tokens(account), store_tokens(account)
    Grant.objects.filter(pk=first.pk).update(
        obtained_at=long_ago - timedelta(hours=2),
        refreshed_at=long_ago + timedelta(minutes=first_refreshed),
    )
    Grant.objects.filter(pk=second.pk).update(obtained_at=long_ago)
    kept = {"first": first.pk, "second": second.pk}[latest]
    assert Grant.objects.filter(account=account).latest_first().first().pk == kept
    assert "grants without sessions: 1" in run("ftauth_purge")
    assert list(Grant.objects.filter(account=account).values_list("pk", flat=True)) == [kept]


def test_purge_dry_run_deletes_nothing():
    AuditEvent.objects.create(kind="signed_in", created_at=timezone.now() - timedelta(days=4000))
    assert "audit events: 1" in run("ftauth_purge", "--dry-run")
    assert AuditEvent.objects.count() == 1


def test_rotation_skips_a_token_set_being_refreshed(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_keys(settings, [old])
    account = make_account()
    store_tokens(account)
    Grant.objects.filter(account=account).update(
        refresh_lease_until=timezone.now() + timedelta(seconds=30)
    )
    before = Grant.objects.get(account=account).access_token_ciphertext
    with_keys(settings, [new, old])
    with pytest.raises(CommandError, match="being refreshed"):
        run("ftauth_rotate_keys")
    assert Grant.objects.get(account=account).access_token_ciphertext == before
