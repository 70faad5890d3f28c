"""Calls on behalf of a user: the consented token from the vault, 401 handling."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from ftauth import api, vault
from ftauth.core.errors import ConsentWithdrawn
from ftauth.core.tokens import TokenResponse
from ftauth.models import Grant, LinkedAccount

from .stub import json_reply

USERINFO = "peconnect-individu/v1/userinfo"

pytestmark = pytest.mark.django_db


@pytest.fixture
def camille(fake_ft, settings):
    """A user signed in with France Travail (realm individu), tokens in the vault."""
    settings.FTAUTH = {
        **settings.FTAUTH,
        "CLIENT_ID": fake_ft.client_id,
        "CLIENT_SECRET": fake_ft.client_secret,
        "API_URL": fake_ft.url,
        "REALMS": {"individu": {"server": fake_ft.url}},
        "API_DEFAULT_RATE": 1000,
    }
    user = get_user_model().objects.create(username="camille")
    account = LinkedAccount.objects.create(user=user, realm="individu", sub="sub-camille")
    access, refresh = fake_ft.user_tokens()
    vault.new_grant(
        account,
        TokenResponse(
            access_token=access,
            token_type="Bearer",
            expires_in=1499,
            scope=("api_peconnect-individuv1", "openid"),
            refresh_token=refresh,
        ),
        {"sub": "sub-camille"},
    )
    fake_ft.api_handler = lambda request: json_reply({"sub": "sub-camille"})
    return user


def refresh_requests(fake_ft):
    return [r for r in fake_ft.token_requests if r.form()["grant_type"] == ["refresh_token"]]


def test_calls_with_the_users_token(camille, fake_ft):
    assert api.for_user(camille).get(USERINFO) == {"sub": "sub-camille"}
    (request,) = fake_ft.api_requests
    assert request.path == "/partenaire/peconnect-individu/v1/userinfo"
    assert request.headers["authorization"] == f"Bearer {fake_ft.issued[0]}"


def test_401_refreshes_once_and_retries(camille, fake_ft):
    fake_ft.revoke(fake_ft.issued[0])  # the access token stopped working early
    assert api.for_user(camille).get(USERINFO) == {"sub": "sub-camille"}
    assert len(refresh_requests(fake_ft)) == 1
    assert fake_ft.api_requests[-1].headers["authorization"] == f"Bearer {fake_ft.issued[1]}"
    assert (
        vault.access_token(vault.latest_grant(LinkedAccount.objects.get(user=camille)))
        == (fake_ft.issued[1])
    )


def test_401_then_invalid_grant_is_a_withdrawal(camille, fake_ft):
    fake_ft.revoke(fake_ft.issued[0])
    fake_ft.refresh_tokens.clear()  # consent withdrawn at France Travail
    with pytest.raises(ConsentWithdrawn):
        api.for_user(camille).get(USERINFO)
    account = LinkedAccount.objects.get(user=camille)
    assert account.consent_withdrawn_at is not None
    assert not Grant.objects.filter(account=account).exists()
    assert len(fake_ft.api_requests) == 1


def test_401_with_a_fresh_token_is_a_withdrawal(camille, fake_ft):
    fake_ft.api_script = [json_reply({}, 401), json_reply({}, 401)]
    with pytest.raises(ConsentWithdrawn):
        api.for_user(camille).get(USERINFO)
    assert len(fake_ft.api_requests) == 2
    assert len(refresh_requests(fake_ft)) == 1
    account = LinkedAccount.objects.get(user=camille)
    assert account.consent_withdrawn_at is not None
    assert not Grant.objects.filter(account=account).exists()
    # Withdrawn: no further call goes out.
    with pytest.raises(ConsentWithdrawn):
        api.for_user(camille).get(USERINFO)
    assert len(fake_ft.api_requests) == 2


def test_user_without_identity_in_the_realm(camille):
    with pytest.raises(vault.TokensUnavailable):
        api.for_user(camille, realm="employeur")
    with pytest.raises(vault.TokensUnavailable):
        api.for_user(AnonymousUser())


def test_unknown_realm_is_a_programming_error(camille):
    with pytest.raises(ValueError, match="unknown realm"):
        api.for_user(camille, realm="partenaires")
