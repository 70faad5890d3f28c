"""The per-grant migration: each account's single token set becomes its one grant."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("ftauth", "0001_initial")]
AFTER = [("ftauth", "0002_grants")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


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

    # And back: the migration is reversible.
    migrate(BEFORE)
    migrate(AFTER)
