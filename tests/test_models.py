"""Storage rules written once in the models: which grant is an account's latest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ftauth import vault
from ftauth.models import Grant
from tests.lifecycle import make_account, store_tokens

pytestmark = pytest.mark.django_db


def grants_at(account, *moments):
    """One grant per (obtained, refreshed) pair, in minutes before now (None: never refreshed)."""
    now = timezone.now()
    grants = []
    for obtained, refreshed in moments:
        grant = store_tokens(account)
        Grant.objects.filter(pk=grant.pk).update(
            obtained_at=now - timedelta(minutes=obtained),
            refreshed_at=None if refreshed is None else now - timedelta(minutes=refreshed),
        )
        grants.append(grant.pk)
    return grants


def test_latest_first_puts_a_new_sign_in_before_an_older_refresh():
    account = make_account()
    refreshed_an_hour_ago, signed_in_a_minute_ago = grants_at(account, (600, 60), (1, None))
    order = list(Grant.objects.filter(account=account).latest_first().values_list("pk", flat=True))
    assert order == [signed_in_a_minute_ago, refreshed_an_hour_ago]


def test_latest_first_puts_a_recent_refresh_before_a_newer_sign_in():
    account = make_account()
    signed_in_an_hour_ago, refreshed_a_minute_ago = grants_at(account, (60, None), (600, 1))
    order = list(Grant.objects.filter(account=account).latest_first().values_list("pk", flat=True))
    assert order == [refreshed_a_minute_ago, signed_in_an_hour_ago]


def test_latest_first_breaks_ties_by_the_newest_row():
    account = make_account()
    _older, newer = grants_at(account, (5, None), (5, None))
    assert Grant.objects.filter(account=account).latest_first().first().pk == newer


def test_the_vault_latest_grant_is_the_models_latest():
    account = make_account()
    _refreshed_an_hour_ago, signed_in_a_minute_ago = grants_at(account, (600, 60), (1, None))
    assert vault.latest_grant(account).pk == signed_in_a_minute_ago
