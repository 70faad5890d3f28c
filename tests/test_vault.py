"""The token vault: tokens stored encrypted, replaced on sign-in, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection, connections
from django.utils import timezone
from joserfc.jwk import RSAKey

from ftauth import crypto, vault
from ftauth.core.errors import QuotaExceeded
from ftauth.models import AuditEvent, Grant
from ftauth.vault import status_of
from tests.fakeop import CLIENT_ID
from tests.lifecycle import (
    ACCESS,
    IDTOKEN,
    REFRESH,
    grant_of,
    linked_with_tokens,
    make_account,
    store_tokens,
    token_response,
)

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
    token_set = vault.new_grant(account, token_response(suffix="save"), claims)
    text = all_database_text()
    for secret in (ACCESS + "save", REFRESH + "save", IDTOKEN + "save"):
        assert secret not in text
    token_set.refresh_from_db()
    assert crypto.decrypt(token_set.access_token_ciphertext) == ACCESS + "save"
    assert crypto.decrypt(token_set.refresh_token_ciphertext) == REFRESH + "save"
    assert vault.get_id_token(grant_of(account)) == IDTOKEN + "save"


def test_each_sign_in_is_a_grant_of_its_own():
    account = make_account()
    first = store_tokens(account, suffix="first")
    second = store_tokens(account, suffix="second")
    assert Grant.objects.filter(account=account).count() == 2
    # A second device's sign-in never replaces the first device's tokens.
    assert vault.access_token(first) == ACCESS + "first"
    assert vault.access_token(second) == ACCESS + "second"
    assert vault.latest_grant(account).pk == second.pk


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
    token_set = vault.new_grant(account, token_response(), claims)
    assert token_set.id_token_claims == {
        "iss": "https://op",
        "sub": account.sub,
        "aud": "ftauth-tests",
        "sid": "op-session",
    }


def test_save_tokens_computes_expiry_from_expires_in():
    account = make_account()
    response = token_response(expires_in=1500)
    token_set = vault.new_grant(account, response, {})
    expected = response.obtained_at + 1500
    assert abs(token_set.expires_at.timestamp() - expected) < 1


def test_missing_expires_in_assumes_the_documented_25_minutes():
    account = make_account()
    response = token_response(expires_in=None)
    token_set = vault.new_grant(account, response, {})
    assert abs(token_set.expires_at.timestamp() - (response.obtained_at + 25 * 60)) < 1


def test_token_status():
    account = make_account()
    assert vault.account_status(account) is vault.TokenStatus.NONE
    grant = store_tokens(account)
    account.refresh_from_db()
    assert vault.account_status(account) is vault.TokenStatus.VALID
    soon = timezone.now() + timedelta(seconds=30)
    Grant.objects.filter(account=account).update(expires_at=soon)
    account.refresh_from_db()
    assert vault.account_status(account) is vault.TokenStatus.EXPIRING
    past = timezone.now() - timedelta(seconds=1)
    Grant.objects.filter(account=account).update(expires_at=past)
    account.refresh_from_db()
    assert vault.account_status(account) is vault.TokenStatus.EXPIRED
    account.consent_withdrawn_at = timezone.now()
    assert vault.account_status(account) is vault.TokenStatus.WITHDRAWN
    assert vault.status_of(grant) is vault.TokenStatus.VALID


def test_no_token_in_repr():
    account = make_account()
    response = token_response(suffix="repr")
    grant = vault.new_grant(account, response, {})
    for text in (repr(grant), str(grant), repr(response), repr(account)):
        assert "plaintext" not in text


# --- fresh tokens: refresh shortly before expiry, once, validated -----------------------------


def expire_soon(account, seconds: int = 10) -> None:
    """Move the access token into the refresh margin (60 s by default)."""
    Grant.objects.filter(account=account).update(
        expires_at=timezone.now() + timedelta(seconds=seconds)
    )


def test_fresh_token_is_returned_without_a_request(fakeop):
    account = linked_with_tokens(fakeop)
    token = vault.access_token(grant_of(account))
    assert token in fakeop.grant_of(account.sub).access_tokens
    assert not fakeop.refresh_requests()


def test_token_in_the_refresh_margin_is_refreshed(fakeop):
    account = linked_with_tokens(fakeop)
    old_refresh = fakeop.grant_of(account.sub).refresh_token
    expire_soon(account)
    token = vault.access_token(grant_of(account))
    grant = fakeop.grant_of(account.sub)
    assert len(fakeop.refresh_requests()) == 1
    assert fakeop.refresh_requests()[0]["form"]["refresh_token"] == [old_refresh]
    assert token in grant.access_tokens
    token_set = Grant.objects.get(account=account)
    # Refresh token rotation: the new one is kept, the old one is void at the server.
    assert crypto.decrypt(token_set.refresh_token_ciphertext) == grant.refresh_token
    assert token_set.refreshed_at is not None
    assert status_of(token_set) is vault.TokenStatus.VALID
    assert AuditEvent.objects.filter(account=account, kind="tokens_refreshed").count() == 1
    # And the new token is used as is afterwards.
    assert vault.access_token(grant_of(account)) == token
    assert len(fakeop.refresh_requests()) == 1


def test_refreshed_id_token_with_another_sub_is_refused(fakeop):
    account = linked_with_tokens(fakeop)
    before = Grant.objects.get(account=account)
    fakeop.refreshed_claims = {"sub": "someone-else"}
    expire_soon(account)
    with pytest.raises(vault.GrantInvalidated) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.rule == "refresh_sub"
    # The grant is ended: its tokens are forgotten, its sessions sign in again.
    assert not Grant.objects.filter(pk=before.pk).exists()
    event = AuditEvent.objects.get(account=account, kind="grant_ended")
    assert "refresh_sub" in event.detail["why"]


def test_refreshed_id_token_with_another_audience_is_refused(fakeop, settings):
    """OIDC Core 12.2: the same ``aud``, even when the new one is trusted (step 3 passes)."""
    settings.FTAUTH = {**settings.FTAUTH, "TRUSTED_AUDIENCES": ["another-client"]}
    account = linked_with_tokens(fakeop)
    fakeop.refreshed_claims = {"aud": ["ftauth-tests", "another-client"], "azp": "ftauth-tests"}
    expire_soon(account)
    with pytest.raises(vault.GrantInvalidated) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.rule == "refresh_aud"


def holds_tokens_of_the_refresh(account, fakeop) -> bool:
    """Whether ftauth stored the tokens of the refresh fakeop just answered."""
    grant = Grant.objects.filter(account=account).first()
    if grant is None:
        return False
    stored = crypto.decrypt(grant.access_token_ciphertext)
    return stored in fakeop.grant_of(account.sub).access_tokens


def test_refreshed_id_token_with_a_bad_signature_is_refused(fakeop):
    account = linked_with_tokens(fakeop)
    # Signed by a key France Travail does not publish, under its published kid:
    # every claim is right, only the signature is wrong.
    fakeop.refreshed_signing_key = RSAKey.generate_key(
        2048, parameters={"kid": fakeop.key.kid}, private=True
    )
    expire_soon(account)
    with pytest.raises(vault.GrantInvalidated) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.rule == "signature"
    assert len(fakeop.refresh_requests()) == 1
    assert not holds_tokens_of_the_refresh(account, fakeop)


def test_refreshed_id_token_from_another_issuer_is_refused(fakeop):
    account = linked_with_tokens(fakeop)
    fakeop.refreshed_claims = {"iss": "https://elsewhere.example/"}
    expire_soon(account)
    with pytest.raises(vault.GrantInvalidated) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.rule == "iss"
    assert not holds_tokens_of_the_refresh(account, fakeop)


def test_refreshed_id_token_with_another_auth_time_is_refused(fakeop):
    """OIDC Core 12.2: a refresh is not a new authentication."""
    signed_in_at = int(time.time()) - 600
    fakeop.refreshed_claims = {"auth_time": signed_in_at}
    account = linked_with_tokens(fakeop)
    assert grant_of(account).id_token_claims["auth_time"] == signed_in_at
    fakeop.refreshed_claims = {"auth_time": signed_in_at + 300}
    expire_soon(account)
    with pytest.raises(vault.GrantInvalidated) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.rule == "refresh_auth_time"
    assert not holds_tokens_of_the_refresh(account, fakeop)


def test_refreshed_id_token_with_the_same_auth_time_is_accepted(fakeop):
    signed_in_at = int(time.time()) - 600
    fakeop.refreshed_claims = {"auth_time": signed_in_at}
    account = linked_with_tokens(fakeop)
    expire_soon(account)
    vault.access_token(grant_of(account))
    assert holds_tokens_of_the_refresh(account, fakeop)


@pytest.mark.parametrize(
    ("at_sign_in", "refreshed"),
    [
        ({}, {"azp": CLIENT_ID}),  # no azp at sign-in: none may appear
        ({"azp": CLIENT_ID}, {"azp": None}),  # azp at sign-in: it may not vanish
    ],
    ids=["azp_appears", "azp_vanishes"],
)
def test_refreshed_id_token_with_another_azp_is_refused(fakeop, at_sign_in, refreshed):
    """OIDC Core 12.2: the same ``azp`` as the original ID token, present or absent."""
    fakeop.refreshed_claims = at_sign_in
    account = linked_with_tokens(fakeop)
    fakeop.refreshed_claims = refreshed
    expire_soon(account)
    with pytest.raises(vault.GrantInvalidated) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.rule == "refresh_azp"
    assert not holds_tokens_of_the_refresh(account, fakeop)


def test_refreshed_id_token_with_the_same_azp_is_accepted(fakeop):
    fakeop.refreshed_claims = {"azp": CLIENT_ID}
    account = linked_with_tokens(fakeop)
    expire_soon(account)
    vault.access_token(grant_of(account))
    assert holds_tokens_of_the_refresh(account, fakeop)


def test_refreshed_id_token_is_kept_for_the_logout_hint(fakeop):
    account = linked_with_tokens(fakeop)
    expire_soon(account)
    vault.access_token(grant_of(account))
    claims = Grant.objects.get(account=account).id_token_claims
    assert claims["sub"] == account.sub
    assert vault.get_id_token(grant_of(account)).count(".") == 2


def test_transient_failure_in_the_margin_keeps_the_current_token(fakeop):
    account = linked_with_tokens(fakeop)
    current = vault.access_token(grant_of(account))
    expire_soon(account)
    fakeop.fail_next("token", 503)
    assert vault.access_token(grant_of(account)) == current


def test_transient_failure_after_expiry_raises(fakeop):
    account = linked_with_tokens(fakeop)
    expire_soon(account, seconds=-5)
    fakeop.fail_next("token", 429, {"Retry-After": "4"})
    with pytest.raises(QuotaExceeded) as excinfo:
        vault.access_token(grant_of(account))
    assert excinfo.value.retry_after == 4
    assert Grant.objects.filter(account=account).exists()


def test_expired_without_refresh_token_needs_a_new_sign_in(fakeop):
    account = make_account()
    grant = store_tokens(account, refresh=False, expires_in=-5)
    with pytest.raises(vault.TokensUnavailable):
        vault.access_token(grant)


def test_unlinked_realm_has_no_token(fakeop):
    from ftauth import api

    account = linked_with_tokens(fakeop)
    with pytest.raises(vault.TokensUnavailable):
        api.for_user(account.user, "employeur")


def test_wrong_key_gives_a_clear_error_and_keeps_the_tokens(fakeop, settings):
    account = linked_with_tokens(fakeop)
    settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": [Fernet.generate_key().decode()]}
    with pytest.raises(crypto.TokenDecryptionError):
        vault.access_token(grant_of(account))
    assert Grant.objects.filter(account=account).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_cause_exactly_one_refresh(fakeop):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are tested on PostgreSQL (set DATABASE_URL)")
    account = linked_with_tokens(fakeop)
    expire_soon(account)
    # A slow token endpoint keeps the first refresh in flight while the others arrive.
    fakeop.token_delay = 0.5
    callers = 8
    barrier = threading.Barrier(callers)
    tokens, errors = [], []

    def caller():
        try:
            barrier.wait()
            tokens.append(vault.access_token(grant_of(account)))
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(fakeop.refresh_requests()) == 1
    assert len(tokens) == callers and len(set(tokens)) == 1
    assert tokens[0] in fakeop.grant_of(account.sub).access_tokens


def test_concurrent_callers_cause_exactly_one_refresh_on_a_sqlite_file(fakeop, settings, tmp_path):
    """SQLite has no row locks: the first caller takes a lease, the others wait for it."""
    body = fakeop.issue("sub-sqlite")
    claims = {"iss": fakeop.issuer(), "sub": "sub-sqlite", "aud": "ftauth-tests"}
    fakeop.token_delay = 0.5
    job = {
        "ftauth": settings.FTAUTH,
        "sub": "sub-sqlite",
        "token_response": body,
        "claims": claims,
        "callers": 6,
    }
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'refresh.sqlite3'}",
        "CACHE_URL": "locmemcache://sqlite-refresh",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.concurrent_refresh"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["errors"] == []
    assert len(fakeop.refresh_requests()) == 1
    assert len(result["tokens"]) == 6 and len(set(result["tokens"])) == 1
    assert result["tokens"][0] in fakeop.grant_of("sub-sqlite").access_tokens


@pytest.mark.parametrize(
    "times",
    [{"iat": 3600}, {"exp": -3600}],
    ids=["iat-an-hour-ahead", "exp-an-hour-ago"],
)
def test_a_refreshed_id_token_whose_times_are_refused_ends_nothing(fakeop, times):
    """This server's clock an hour off France Travail's is no evidence about the grant:
    the tokens serve, the ID token waits (never accepted), the next refresh replaces it."""
    import time as clock

    account = linked_with_tokens(fakeop)
    kept = Grant.objects.get(account=account).id_token_claims
    fakeop.refreshed_claims = {k: int(clock.time()) + v for k, v in times.items()}
    expire_soon(account)
    assert vault.access_token(grant_of(account)) in fakeop.grant_of(account.sub).access_tokens
    grant = Grant.objects.get(account=account)  # not ended
    assert grant.pending_id_token_ciphertext and grant.id_token_claims == kept
    fakeop.refreshed_claims = {}
    vault.refresh(grant_of(account), force=True)
    grant = Grant.objects.get(account=account)
    assert not grant.pending_id_token_ciphertext
