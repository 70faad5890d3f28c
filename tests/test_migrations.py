"""Upgrades: each account's single token set becomes its one grant, and the
sessions signed in before the deploy go on, bound to it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from ftauth import crypto
from ftauth.internal.sessions import SESSION_KEY
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from tests.fakeop import CLIENT_ID

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("ftauth", "0001_initial")]
AFTER = [("ftauth", "0002_grants")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes("ftauth")


@pytest.fixture(autouse=True)
def back_to_the_latest_migration():
    yield
    migrate(latest())


def test_existing_token_sets_become_one_grant_each_with_their_sessions():
    old = migrate(BEFORE)
    User = old.get_model("auth", "User")
    LinkedAccount = old.get_model("ftauth", "LinkedAccount")
    TokenSet = old.get_model("ftauth", "TokenSet")
    AccountSession = old.get_model("ftauth", "AccountSession")
    with_tokens = LinkedAccount.objects.create(
        user=User.objects.create(username="u1"), realm="individu", sub="s1"
    )
    without = LinkedAccount.objects.create(
        user=User.objects.create(username="u2"), realm="individu", sub="s2"
    )
    TokenSet.objects.create(
        account=with_tokens,
        access_token_ciphertext="ct-access",
        refresh_token_ciphertext="ct-refresh",
        id_token_claims={"sub": "s1", "sid": "op-sid-1"},
    )
    for n, account in enumerate([with_tokens, with_tokens, without]):
        AccountSession.objects.create(account=account, sid=f"sid-{n}", op_sid="")

    new = migrate(AFTER)
    Grant = new.get_model("ftauth", "Grant")
    Session = new.get_model("ftauth", "AccountSession")
    (grant,) = Grant.objects.all()
    assert grant.account_id == with_tokens.pk
    assert (grant.access_token_ciphertext, grant.refresh_token_ciphertext) == (
        "ct-access",
        "ct-refresh",
    )
    assert grant.op_sid == "op-sid-1"
    assert sorted(Session.objects.filter(grant=grant).values_list("sid", flat=True)) == [
        "sid-0",
        "sid-1",
    ]
    assert Session.objects.get(sid="sid-2").grant_id is None


def test_0002_reverses_with_several_grants_per_account_keeping_the_latest():
    new = migrate(AFTER)
    User = new.get_model("auth", "User")
    Account = new.get_model("ftauth", "LinkedAccount")
    HistoricalGrant = new.get_model("ftauth", "Grant")
    Session = new.get_model("ftauth", "AccountSession")
    account = Account.objects.create(
        user=User.objects.create(username="u1"), realm="individu", sub="s1"
    )
    now = timezone.now()
    older = HistoricalGrant.objects.create(
        account=account, access_token_ciphertext="ct-old", refreshed_at=now - timedelta(hours=1)
    )
    newer = HistoricalGrant.objects.create(
        account=account, access_token_ciphertext="ct-new", refreshed_at=now
    )
    Session.objects.create(account=account, sid="laptop", grant=older)
    Session.objects.create(account=account, sid="phone", grant=newer)

    old = migrate(BEFORE)
    TokenSet = old.get_model("ftauth", "TokenSet")
    OldSession = old.get_model("ftauth", "AccountSession")
    (kept,) = TokenSet.objects.filter(account_id=account.pk)
    assert kept.access_token_ciphertext == "ct-new"
    # The session of the dropped grant ends (that device signs in again); the other stays.
    assert list(OldSession.objects.values_list("sid", flat=True)) == ["phone"]
    migrate(AFTER)


def _old_session(user, account_pk: int, sid: str) -> str:
    """A Django session as ftauth wrote it before grants existed (no "grant" in its marker)."""
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "ftauth.backends.FranceTravailBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store[SESSION_KEY] = {
        "account": account_pk,
        "realm": "individu",
        "sid": sid,
        "generation": 0,
        "checked_at": time.time(),
        "key": "",
    }
    store.create()
    return store.session_key


def test_sessions_signed_in_before_0002_keep_working_after_the_deploy(
    fakeop, settings, revocations
):
    """Two devices signed in under 0001; the deploy migrates; both go on, nothing is lost."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    tokens = fakeop.issue("camille")
    old = migrate(BEFORE)
    OldUser = old.get_model("auth", "User")
    OldAccount = old.get_model("ftauth", "LinkedAccount")
    TokenSet = old.get_model("ftauth", "TokenSet")
    OldSession = old.get_model("ftauth", "AccountSession")
    user_pk = OldUser.objects.create(username="camille").pk
    account = OldAccount.objects.create(user_id=user_pk, realm="individu", sub="camille")
    TokenSet.objects.create(
        account=account,
        access_token_ciphertext=crypto.encrypt(tokens["access_token"]),
        refresh_token_ciphertext=crypto.encrypt(tokens["refresh_token"]),
        id_token_ciphertext=crypto.encrypt(tokens["id_token"]),
        # Expired: the first page that needs the token refreshes it.
        expires_at=timezone.now() - timedelta(minutes=1),
        id_token_claims={"iss": fakeop.issuer(), "sub": "camille", "aud": CLIENT_ID},
    )
    for sid in ("laptop", "phone"):
        OldSession.objects.create(account=account, sid=sid)

    migrate(latest())  # the deploy
    user = get_user_model().objects.get(pk=user_pk)
    (grant,) = Grant.objects.filter(account_id=account.pk)
    devices = []
    for sid in ("laptop", "phone"):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = _old_session(user, account.pk, sid)
        devices.append(client)

    for client in devices:
        page = client.get("/profile/")
        assert page.status_code == 200, page.status_code
        assert "camille" in page.content.decode()
        # Bound to the migrated grant at its first request.
        assert client.session[SESSION_KEY]["grant"] == grant.pk
        assert client.get("/ftauth/account/").status_code == 200
    assert Grant.objects.filter(pk=grant.pk).exists()
    assert AccountSession.objects.filter(grant=grant).count() == 2
    assert fakeop.refresh_requests(), "the expired token was refreshed with the migrated grant"
    assert not AuditEvent.objects.filter(kind__in=["signed_out", "grant_ended"]).exists()
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None
    assert revocations == []
