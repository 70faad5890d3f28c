"""The token vault: tokens stored encrypted, replaced on sign-in, status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ftauth import crypto, vault
from ftauth.models import TokenSet
from tests.lifecycle import ACCESS, IDTOKEN, REFRESH, make_account, store_tokens, token_response

pytestmark = pytest.mark.django_db


def all_database_text() -> str:
    """Every value of every ftauth table, as the database holds it."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith("ftauth_"):
                cursor.execute(f'SELECT * FROM "{table}"')
                chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_save_tokens_stores_only_ciphertext():
    account = make_account()
    claims = {"iss": "https://op", "sub": account.sub, "aud": "ftauth-tests"}
    token_set = vault.save_tokens(account, token_response(suffix="save"), claims)
    text = all_database_text()
    for secret in (ACCESS + "save", REFRESH + "save", IDTOKEN + "save"):
        assert secret not in text
    token_set.refresh_from_db()
    assert crypto.decrypt(token_set.access_token_ciphertext) == ACCESS + "save"
    assert crypto.decrypt(token_set.refresh_token_ciphertext) == REFRESH + "save"
    assert vault.get_id_token(account) == IDTOKEN + "save"


def test_save_tokens_replaces_the_previous_set():
    account = make_account()
    store_tokens(account, suffix="first")
    store_tokens(account, suffix="second")
    assert TokenSet.objects.filter(account=account).count() == 1
    assert vault.get_account_access_token(account) == ACCESS + "second"


def test_save_tokens_keeps_identity_claims_only():
    account = make_account()
    claims = {
        "iss": "https://op",
        "sub": account.sub,
        "aud": "ftauth-tests",
        "sid": "op-session",
        "nonce": "n-0S6_WzA2Mj",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "email": "persona@example.org",
    }
    token_set = vault.save_tokens(account, token_response(), claims)
    assert token_set.id_token_claims == {
        "iss": "https://op",
        "sub": account.sub,
        "aud": "ftauth-tests",
        "sid": "op-session",
    }


def test_save_tokens_computes_expiry_from_expires_in():
    account = make_account()
    response = token_response(expires_in=1500)
    token_set = vault.save_tokens(account, response, {})
    expected = response.obtained_at + 1500
    assert abs(token_set.expires_at.timestamp() - expected) < 1


def test_missing_expires_in_assumes_the_documented_25_minutes():
    account = make_account()
    response = token_response(expires_in=None)
    token_set = vault.save_tokens(account, response, {})
    assert abs(token_set.expires_at.timestamp() - (response.obtained_at + 25 * 60)) < 1


def test_new_tokens_lift_a_previous_withdrawal():
    account = make_account()
    account.consent_withdrawn_at = timezone.now()
    account.save()
    store_tokens(account)
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None
    assert vault.token_status(account) is vault.TokenStatus.VALID


def test_token_status():
    account = make_account()
    assert vault.token_status(account) is vault.TokenStatus.NONE
    store_tokens(account)
    account.refresh_from_db()
    assert vault.token_status(account) is vault.TokenStatus.VALID
    soon = timezone.now() + timedelta(seconds=30)
    TokenSet.objects.filter(account=account).update(expires_at=soon)
    account.refresh_from_db()
    assert vault.token_status(account) is vault.TokenStatus.EXPIRING
    past = timezone.now() - timedelta(seconds=1)
    TokenSet.objects.filter(account=account).update(expires_at=past)
    account.refresh_from_db()
    assert vault.token_status(account) is vault.TokenStatus.EXPIRED
    account.consent_withdrawn_at = timezone.now()
    assert vault.token_status(account) is vault.TokenStatus.WITHDRAWN


def test_forget_tokens():
    account = make_account()
    store_tokens(account)
    assert vault.forget_tokens(account) is True
    assert not TokenSet.objects.filter(account=account).exists()
    assert vault.forget_tokens(account) is False


def test_no_token_in_repr():
    account = make_account()
    response = token_response(suffix="repr")
    token_set = vault.save_tokens(account, response, {})
    for text in (repr(token_set), str(token_set), repr(response), repr(account)):
        assert "plaintext" not in text
